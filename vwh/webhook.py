"""The webhook contract: what Vendasta sends, and what it does with the answer.

Every command shares these rules, so they live in one place: the token header and
its constant-time check, the body shape, the ids it carries, secret masking, and
Vendasta's reaction to a handler's answer (done, dropped for good, or resent).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from enum import Enum
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

# Header names whose values are secrets wherever they appear (compared lower-case).
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


def tokens_match(expected: str, received: str | None) -> bool:
    """Compare in constant time so the check leaks nothing about the token."""
    if received is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8", "replace"))


def verify_token(expected: str | None, received: str | None) -> TokenVerdict:
    if expected is None:
        return TokenVerdict.NOT_CHECKED
    if received is None:
        return TokenVerdict.MISSING
    return TokenVerdict.OK if tokens_match(expected, received) else TokenVerdict.WRONG


def mask_secret(value: str | None) -> str:
    """Show enough of a secret to tell two apart, never enough to reuse it."""
    if value is None:
        return ""
    if len(value) >= 12:
        return f"••••{value[-2:]} ({len(value)} chars)"
    return f"•••• ({len(value)} chars)"


def mask_headers(
    headers: Iterable[tuple[str, str]], secret_names: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Headers as a list of pairs, with every secret value masked."""
    names = SECRET_HEADER_NAMES | {n.lower() for n in secret_names}
    return [(k, mask_secret(v) if k.lower() in names else v) for k, v in headers]


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a webhook body, which must be a JSON object; raise InvalidBody otherwise."""
    if not raw.strip():
        raise InvalidBody("empty body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBody("body is not valid UTF-8") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidBody(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
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
