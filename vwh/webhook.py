"""The webhook contract: what Vendasta sends, and what it does with the answer.

Every command shares these rules, so they live in one place: the token header and
its constant-time check, the body shape, the ids it carries, secret masking, and
Vendasta's reaction to a handler's answer (done, dropped for good, or resent).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from functools import lru_cache
from typing import Any

DEFAULT_TOKEN_HEADER = "Verifier-Token"
VENDASTA_TIMEOUT = 60.0  # seconds Vendasta waits for an answer before resending

# The ids a webhook body can carry, in the order a person wants to read them.
ID_FIELDS = (
    "orderId",
    "entityId",
    "accountId",
    "automationId",
    "userId",
    "partnerId",
    "marketId",
)

# Names whose values are secrets wherever they appear: headers and query parameters
# alike, compared lower-case with "_" read as "-" (see is_secret_name).
SECRET_HEADER_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        DEFAULT_TOKEN_HEADER.lower(),
    }
)
# A name with one of these words as a part ("x-auth-token", "client_secret",
# "x-hub-signature-256") is secret; so is one of the exact names below.
_SECRET_WORDS = frozenset(
    {
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "password",
        "passwd",
        "secret",
        "signature",
        "token",
        "apikey",
    }
)
_SECRET_PAIRS = ("api-key", "access-key", "private-key", "session-id")
_SECRET_EXACT = SECRET_HEADER_NAMES | {"key", "sig", "pwd", "session"}

# Bounds on what the body parser accepts, so no body can exhaust the stack or the
# CPU: webhook bodies are flat objects of ids, far inside both.
MAX_JSON_DEPTH = 128
MAX_NUMBER_DIGITS = 640  # the lowest limit Python's int() can be set to: ours comes first
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * (MAX_NUMBER_DIGITS + 1)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


class TokenVerdict(str, Enum):
    OK = "ok"
    WRONG = "wrong"
    MISSING = "missing"
    NOT_CHECKED = "not checked"


class Reaction(str, Enum):
    """What Vendasta does after a handler's answer."""

    DONE = "done"  # 2xx
    DROPPED = "dropped"  # 3xx/4xx: a permanent failure, never resent
    RESEND = "resend"  # 5xx, no answer in time, or a broken connection


class InvalidBody(ValueError):
    """A body that is not a JSON object; the message is short enough for a table."""


def token_bytes(token: str) -> bytes:
    """A token as the bytes it was given as: UTF-8, and argv's undecodable bytes as they were.

    Python hands argv and the environment over as str, with bytes that are not UTF-8
    escaped as lone surrogates; os.fsencode undoes exactly that.
    """
    return os.fsencode(token)


def tokens_match(expected: bytes, received: bytes | None) -> bool:
    """Compare bytes to bytes in constant time, so the check leaks nothing about the token."""
    if received is None:
        return False
    return hmac.compare_digest(expected, received)


def verify_token(expected: bytes | None, received: bytes | None) -> TokenVerdict:
    """The verdict on a header's raw bytes against the token's bytes (None: not checking)."""
    if expected is None:
        return TokenVerdict.NOT_CHECKED
    if received is None:
        return TokenVerdict.MISSING
    return TokenVerdict.OK if tokens_match(expected, received) else TokenVerdict.WRONG


def mask_secret(value: str | None) -> str:
    """Show enough of a secret to tell two apart, never enough to reuse it."""
    if value is None:
        return ""
    tail = value[-2:]
    if len(value) >= 12 and tail.isascii() and tail.isprintable():
        return f"••••{tail} ({len(value)} chars)"
    return f"•••• ({len(value)} chars)"


@lru_cache(maxsize=4096)
def is_secret_name(name: str, configured: frozenset[str] = frozenset()) -> bool:
    """The one rule for secret names, headers and query parameters alike.

    Secret: a name in `configured` (the token header; later a token query parameter or
    cookie), a well-known one (Authorization, Cookie, X-Api-Key), or one with a secret
    word as a part (X-Auth-Token, client_secret, X-Hub-Signature-256). Compared
    lower-case with "_" read as "-". Cached: the same few names arrive again and again.
    """
    lname = name.lower()
    if lname in configured:
        return True
    lname = lname.replace("_", "-")
    if lname in _SECRET_EXACT or lname in configured:
        return True
    return any(part in _SECRET_WORDS for part in lname.split("-")) or any(
        pair in lname for pair in _SECRET_PAIRS
    )


def mask_query(query: str, configured: frozenset[str] = frozenset()) -> str:
    """The query string with the value of every secret parameter masked, the rest as it came.

    Only the values change: separators, names, order and other values stay byte for byte.
    """
    if "=" not in query:
        return query
    from urllib.parse import unquote_plus

    parts = query.split("&")
    changed = False
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and value and is_secret_name(unquote_plus(name), configured):
            parts[i] = f"{name}={mask_secret(unquote_plus(value))}"
            changed = True
    return "&".join(parts) if changed else query


def mask_headers(
    headers: Iterable[tuple[str, str]], secret_names: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Headers as a list of pairs, with every secret value masked."""
    names = frozenset(n.lower() for n in secret_names)
    return [(k, mask_secret(v) if is_secret_name(k, names) else v) for k, v in headers]


def parse_json(raw: bytes) -> Any:
    """Parse any JSON value, bounded: InvalidBody for whatever is not JSON or is too big.

    Nested deeper than MAX_JSON_DEPTH, or a number with a run of more than
    MAX_NUMBER_DIGITS digits, is refused before the parser sees it; nothing else it
    can raise gets past here either. Normal bodies pay two byte counts: the depth
    scan runs only when there are more brackets than the limit, the digit scan only
    when the body is longer than a number may be.
    """
    if not raw.strip():
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
        return json.loads(text)
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


def body_ids(body: Mapping[str, Any]) -> dict[str, str]:
    """The id fields a body carries, in ID_FIELDS order, as strings."""
    return {k: str(body[k]) for k in ID_FIELDS if body.get(k) not in (None, "")}


def kept_ids(raw: bytes | None) -> dict[str, str]:
    """The ids a kept body carries, whatever it was answered; {} when it is no JSON object.

    The one rule for a request's ids, live and read back from the store alike, so a
    request cut short or refused shows the same ids in `listen` as in `history`.
    """
    if not raw:
        return {}
    try:
        return body_ids(parse_body(raw))
    except InvalidBody:
        return {}


def fingerprint(raw: bytes) -> int:
    """Identify a delivery by its exact bytes (Vendasta resends the same body).

    64 bits of SHA-256: a small integer is cheap to index, and a collision among
    a developer's webhooks is out of reach (about 1 in 10^10 at a million bodies).
    """
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big", signed=True)


def vendasta_reaction(status: int | None) -> Reaction:
    """What Vendasta does with an answer; None means no answer (timeout or broken)."""
    if status is None or status >= 500:
        return Reaction.RESEND
    if 200 <= status < 300:
        return Reaction.DONE
    return Reaction.DROPPED


def id_kind(identifier: str) -> str | None:
    """Guess the record kind behind an id from its shape, or None when it cannot tell."""
    if ":ORD-" in identifier:
        return "order"
    if identifier.startswith("U-"):
        return "user"
    if identifier.startswith("Automation-"):
        return "automation"
    if identifier.startswith("AG-"):
        return "account"
    return None
