"""Read a curl command line, as Vendasta's "Copy example request as curl" gives it.

The copied request is what a partner configured in the *Send a webhook* step: the
URL with its query, headers, cookies and a JSON body. `parse_curl` turns the
command into that request, exactly; an option vwh does not understand is an error
naming it, never silently dropped, since a dropped header could be the secret.

Words are split as a POSIX shell would: single, double and `$'...'` quotes,
backslash escapes, line continuations, and `$NAME` from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from vwh.errors import InputError

# Options that take a value, by every spelling curl accepts.
_VALUE_OPTIONS = {
    "-X": "method",
    "--request": "method",
    "-H": "header",
    "--header": "header",
    "-d": "data",
    "--data": "data",
    "--data-ascii": "data",
    "--data-raw": "data-raw",
    "--data-binary": "data-binary",
    "--json": "json",
    "-b": "cookie",
    "--cookie": "cookie",
    "--url": "url",
    "-A": "user-agent",
    "--user-agent": "user-agent",
    "-e": "referer",
    "--referer": "referer",
    "-u": "user",
    "--user": "user",
    # Options that change nothing in the request itself.
    "-m": "ignored",
    "--max-time": "ignored",
    "--connect-timeout": "ignored",
    "-o": "ignored",
    "--output": "ignored",
    "-w": "ignored",
    "--write-out": "ignored",
    "--retry": "ignored",
}
# Flags that change nothing in the request itself (how curl prints, TLS checks, retries).
_IGNORED_FLAGS = {
    "-s", "--silent", "-S", "--show-error", "-i", "--include", "-v", "--verbose",
    "-k", "--insecure", "--compressed", "-L", "--location", "-f", "--fail", "-g",
    "--globoff", "--http1.1", "-N", "--no-buffer", "-#", "--progress-bar",
}  # fmt: skip
# What curl options that vwh refuses would do, so the error can say why.
_REFUSED = {
    "-F": "sends a multipart form, not a JSON body",
    "--form": "sends a multipart form, not a JSON body",
    "--data-urlencode": "sends a form-encoded body, not a JSON body",
    "-G": "moves the body into the query string of a GET",
    "--get": "moves the body into the query string of a GET",
    "-T": "uploads a file with PUT",
    "--upload-file": "uploads a file with PUT",
    "-I": "sends a HEAD request",
    "--head": "sends a HEAD request",
}
_SHELL_SYNTAX = set("|;&<>()`")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_ANSI_C = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a",
           "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "v": "\v", "?": "?"}  # fmt: skip


class CurlError(InputError):
    """A curl command that vwh cannot send as the request it describes."""


@dataclass(frozen=True)
class CurlRequest:
    """The request a curl command describes; headers in order, cookies as one header."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def parse_curl(
    text: str, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> CurlRequest:
    """The request in a curl command; CurlError names what is wrong or not understood."""
    words = shell_words(text, os.environ if env is None else env)
    if not words or Path(words[0]).name != "curl":
        raise CurlError("not a curl command: it should start with `curl`")
    method: str | None = None
    url: str | None = None
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    data: list[bytes] = []
    is_json = False
    for option, value in _options(words[1:]):
        kind = _VALUE_OPTIONS.get(option, "url" if option == "" else "")
        if kind == "method":
            method = value.upper()
        elif kind == "header":
            headers.append(_header(value))
        elif kind in ("data", "data-binary", "data-raw", "json"):
            data.append(_data(kind, value, cwd or Path.cwd()))
            is_json = is_json or kind == "json"
        elif kind == "cookie":
            if "=" not in value:
                raise CurlError(
                    f"-b {value!r} reads cookies from a file: give them as 'name=value'"
                )
            cookies.append(value.strip().rstrip(";"))
        elif kind == "url":
            if url is not None:
                raise CurlError(f"two URLs ({url!r} and {value!r}): copy one request at a time")
            url = value
        elif kind == "user-agent":
            headers.append(("User-Agent", value))
        elif kind == "referer":
            headers.append(("Referer", value))
        elif kind == "user":
            import base64

            headers.append(("Authorization", "Basic " + base64.b64encode(value.encode()).decode()))
    if url is None:
        raise CurlError("the curl command has no URL")
    if not re.match(r"^https?://", url):
        url = "http://" + url  # as curl does for a bare host
    names = {name.lower() for name, _ in headers}
    if is_json:
        for name in ("Content-Type", "Accept"):
            if name.lower() not in names:
                headers.append((name, "application/json"))
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    # Several data options are joined with '&', as curl does: never one JSON object.
    body = b"&".join(data)
    return CurlRequest(method or ("POST" if data else "GET"), url, tuple(headers), body)


def _options(words: list[str]) -> Iterator[tuple[str, str]]:
    """(option, value) pairs; a URL comes as ('', url), a flag with an empty value."""
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word.startswith("--"):
            if word in _VALUE_OPTIONS:
                if i >= len(words):
                    raise CurlError(f"curl option {word} needs a value")
                yield word, words[i]
                i += 1
            elif word in _IGNORED_FLAGS:
                yield word, ""
            else:
                raise _unknown(word)
        elif word.startswith("-") and len(word) > 1:
            # Short options may be grouped (-sS) and take their value attached (-XPOST).
            for at in range(1, len(word)):
                short = "-" + word[at]
                if short in _VALUE_OPTIONS:
                    value = word[at + 1 :]
                    if not value:
                        if i >= len(words):
                            raise CurlError(f"curl option {short} needs a value")
                        value = words[i]
                        i += 1
                    yield short, value
                    break
                if short not in _IGNORED_FLAGS:
                    raise _unknown(short)
                yield short, ""
        else:
            yield "", word


def _unknown(option: str) -> CurlError:
    why = _REFUSED.get(option)
    if why is not None:
        return CurlError(f"curl option {option} {why}: vwh sends Vendasta's JSON POST only")
    return CurlError(
        f"curl option {option} is not understood by vwh; remove it if it does not change"
        " the request"
    )


def _header(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition(":")
    if not sep:
        if value.endswith(";"):  # curl's way to send a header with an empty value
            return value[:-1].strip(), ""
        raise CurlError(f"bad header {value!r}: expected 'Name: value'")
    if not name.strip() or any(c in name for c in " \t\r\n"):
        raise CurlError(f"bad header {value!r}: expected 'Name: value'")
    if any(c in rest for c in "\r\n\0"):
        raise CurlError(f"bad header {name!r}: a value cannot hold line breaks")
    return name.strip(), rest.strip()


def _data(kind: str, value: str, cwd: Path) -> bytes:
    if kind == "data-raw" or not value.startswith("@"):
        return value.encode("utf-8", "surrogateescape")
    name = value[1:]
    if name == "-":
        raise CurlError(f"{value!r} reads the body from stdin: put the body in the command")
    try:
        content = (cwd / name).read_bytes()
    except OSError as exc:
        raise CurlError(f"cannot read the body file {name}: {exc.strerror or exc}") from None
    # -d @file drops line breaks, as curl does; --data-binary and --json keep every byte.
    return content.replace(b"\r", b"").replace(b"\n", b"") if kind == "data" else content


def shell_words(text: str, env: Mapping[str, str]) -> list[str]:
    """Split a command as a POSIX shell would, for the quoting a copied command uses."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in " \t\r\n":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            i += 1
        elif char == "\\":
            if text.startswith("\n", i + 1) or text.startswith("\r\n", i + 1):
                i += 2 if text[i + 1] == "\n" else 3  # a line continuation
                continue
            if i + 1 >= n:
                raise CurlError("the command ends with a lone backslash")
            current.append(text[i + 1])
            in_word, i = True, i + 2
        elif char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise CurlError("a single quote is never closed")
            current.append(text[i + 1 : end])
            in_word, i = True, end + 1
        elif char == "$" and text.startswith("'", i + 1):
            value, i = _ansi_c(text, i + 2)
            current.append(value)
            in_word = True
        elif char == '"':
            value, i = _double_quoted(text, i + 1, env)
            current.append(value)
            in_word = True
        elif char == "$":
            value, i = _variable(text, i, env)
            current.append(value)
            in_word = True
        elif char == "#" and not in_word:
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif char in _SHELL_SYNTAX:
            raise CurlError(f"shell syntax {char!r} is not part of one curl command")
        else:
            current.append(char)
            in_word, i = True, i + 1
    if in_word:
        words.append("".join(current))
    return words


def _ansi_c(text: str, i: int) -> tuple[str, int]:
    """A $'...' word (bash's ANSI-C quoting, which browsers use for odd bytes)."""
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if char == "'":
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(text):
            code = text[i + 1]
            if code in _ANSI_C:
                out.append(_ANSI_C[code])
                i += 2
                continue
            match = re.match(r"x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{1,4})|([0-7]{1,3})", text[i + 1 :])
            if match:
                digits = match.group(1) or match.group(2)
                out.append(chr(int(digits, 16)) if digits else chr(int(match.group(3), 8)))
                i += 1 + len(match.group(0))
                continue
        out.append(char)
        i += 1
    raise CurlError("a $'...' quote is never closed")


def _double_quoted(text: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        elif char == "$":
            value, i = _variable(text, i, env)
            out.append(value)
        elif char == "`":
            raise CurlError("command substitution (`...`) is not part of one curl command")
        else:
            out.append(char)
            i += 1
    raise CurlError("a double quote is never closed")


def _variable(text: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
    """$NAME or ${NAME} from the environment, as the shell would expand it."""
    match = _VARIABLE.match(text, i)
    if match is None:
        if text.startswith("$(", i):
            raise CurlError("command substitution $(...) is not part of one curl command")
        return "$", i + 1
    name = match.group(1) or match.group(2)
    if name not in env:
        raise CurlError(f"the command uses ${name}, which is not set: set it or write the value")
    return env[name], match.end()
