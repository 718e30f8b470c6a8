"""The one sanitiser for text from outside: bodies, headers, paths, answers, API data.

Everything that reaches a terminal, a log line or a JSON line from the outside world
passes through here first, as every template calls MarkupSafe's `escape`. Control
characters (C0, DEL, C1), lone surrogates, line and paragraph separators and the
bidirectional overrides that reorder what a reader sees are shown as visible escapes
(`\\x1b`, `\\u202e`, `\\ud800`), never emitted; everything else, accents and emoji
included, passes unchanged. The result is always encodable as UTF-8.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 and DEL and C1; lone surrogates; U+2028/2029 (line breaks to some viewers);
# bidi marks, embeddings, overrides and isolates (they reorder text, "Trojan Source").
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """`text` with every unsafe character shown as an escape; one line, always printable."""
    if text.isascii() and text.isprintable():  # the common case, checked in C
        return text
    return _UNSAFE.sub(_escape, text)


_NEWLINE = re.compile("\r?\n")


def inert_lines(text: str) -> list[str]:
    """Multi-line text (a body) as inert lines: split on LF and CRLF, then each made inert.

    Only those break lines: a bare CR, VT, FF, NEL or U+2028 (which `str.splitlines`
    would also split on) is shown as its escape, so nothing is lost from view.
    """
    lines = _NEWLINE.split(text)
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the newline that ends the last line
    return [inert(line) for line in lines]


def inert_bytes(data: bytes) -> str:
    """Bytes as inert text: UTF-8 where valid, `\\xNN` for every byte that is not."""
    return inert(data.decode("utf-8", "backslashreplace"))


def inert_preview(body: bytes | None, limit: int = 60) -> str:
    """The first part of a body on one line, inert; runs of whitespace become a space.

    Only the first `limit * 4` bytes are decoded, so a large answer costs no more.
    """
    if not body:
        return ""
    text = inert(" ".join(body[: limit * 4].decode("utf-8", "backslashreplace").split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape_in_json(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_line(document: Any) -> str:
    """One JSON document on one line, readable (UTF-8 kept) and inert.

    `ensure_ascii=False` keeps names readable but lets C1, DEL, separators, bidi
    overrides and lone surrogates through raw; they can only sit inside strings,
    where `\\uXXXX` is the same value, so the line stays valid, equal JSON.
    """
    text = json.dumps(document, ensure_ascii=False, separators=(", ", ": "), default=str)
    if text.isascii() and text.isprintable():  # DEL is ASCII, and json.dumps keeps it raw
        return text
    return _UNSAFE.sub(_escape_in_json, text)
