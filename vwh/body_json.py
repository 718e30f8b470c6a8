"""The one parser of webhook bodies, bounded so that no body can exhaust the stack or
the CPU: every command reads a body through `parse_body` (or `parse_json`)."""

from __future__ import annotations

import json
import re
from typing import Any

# Bounds on what the body parser accepts, so no body can exhaust the stack or the
# CPU: webhook bodies are flat objects of ids, far inside both.
MAX_JSON_DEPTH = 128
MAX_NUMBER_DIGITS = 640  # the lowest limit Python's int() can be set to: ours comes first
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * (MAX_NUMBER_DIGITS + 1)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DECODER = json.JSONDecoder()


class InvalidBody(ValueError):
    """A body that is not a JSON object; the message is short enough for a table."""


def parse_json(raw: bytes) -> Any:
    """Parse any JSON value, bounded: InvalidBody for whatever is not JSON or is too big.

    Nested deeper than MAX_JSON_DEPTH, or a number with a run of more than
    MAX_NUMBER_DIGITS digits, is refused before the parser sees it; nothing else it
    can raise gets past here either. Normal bodies pay two byte counts: the depth
    scan runs only when there are more brackets than the limit, the digit scan only
    when the body is longer than a number may be.
    """
    if not raw or raw.isspace():
        raise InvalidBody("empty body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBody("body is not valid UTF-8") from None
    if len(raw) > MAX_NUMBER_DIGITS and _long_number(raw):
        raise InvalidBody(f"number with more than {MAX_NUMBER_DIGITS} digits")
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _too_deep(raw):
        raise InvalidBody(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        if text[0] == "{" and text[-1] == "}":  # a webhook body: no whitespace to skip
            value, end = _DECODER.raw_decode(text)
            if end == len(text):
                return value
        return json.loads(text)  # anything else, and the exact error message
    except json.JSONDecodeError as exc:
        raise InvalidBody(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:  # only for invalid JSON, which the depth scan leaves to the parser
        raise InvalidBody(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # a number Python itself will not convert
        raise InvalidBody(f"invalid JSON: {str(exc).split(';')[0]}") from None


def _long_number(raw: bytes) -> bool:
    """True when a run of more than MAX_NUMBER_DIGITS digits stands outside strings."""
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        return False  # the usual case: no run that long anywhere
    return _LONG_RUN in _JSON_STRING.sub(b'""', raw).translate(_DIGITS_AS_ZERO)


def _too_deep(raw: bytes) -> bool:
    """True when brackets outside strings nest deeper than MAX_JSON_DEPTH.

    In C-speed passes: drop the strings, keep only the brackets, then peel one level
    of innermost pairs per pass. A pair still there after MAX_JSON_DEPTH passes
    encloses more levels than that. Brackets that never pair up are invalid JSON,
    which the parser reports.
    """
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        peeled = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(peeled) == len(brackets):
            return False
        brackets = peeled
    return b"[]" in brackets or b"{}" in brackets


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a webhook body, which must be a JSON object; raise InvalidBody otherwise.

    The one parser of bodies for every command, bounded as `parse_json` says.
    """
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise InvalidBody(f"JSON {json_type_name(value)}, not an object")
    return value


def json_type_name(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "number"
    return "object"
