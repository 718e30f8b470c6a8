"""The webhook contract: what Vendasta sends, and what it does with the answer.

Every command shares these rules, so they live in one place: the token header and
its constant-time check, the body shape (parsed, bounded, by vwh.body_json), the ids
it carries, secret masking, and Vendasta's reaction to a handler's answer (done,
dropped for good, or resent).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

# The body parser is its own module; these names stay importable from the contract.
from vwh.body_json import MAX_JSON_DEPTH as MAX_JSON_DEPTH
from vwh.body_json import MAX_NUMBER_DIGITS as MAX_NUMBER_DIGITS
from vwh.body_json import InvalidBody as InvalidBody
from vwh.body_json import json_type_name as json_type_name
from vwh.body_json import parse_body as parse_body
from vwh.body_json import parse_json as parse_json

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
_SECRET_PAIRS = ("api-key", "access-key", "private-key", "session", "sessid")
_SECRET_EXACT = SECRET_HEADER_NAMES | {"key", "sig", "sid", "pwd", "session"}

PLACES = ("header", "query", "cookie")


@dataclass(frozen=True)
class TokenPlace:
    """Where a delivery carries its secret: a header (both steps), a query parameter or a
    cookie (the *Send a webhook* step lets the partner put it in either)."""

    kind: str = "header"  # one of PLACES
    name: str = DEFAULT_TOKEN_HEADER

    @property
    def is_header(self) -> bool:
        return self.kind == "header"

    @property
    def secret_names(self) -> frozenset[str]:
        """The names `is_secret_name` must treat as secret for this place."""
        return frozenset({self.name.lower()})

    def describe(self) -> str:
        """'Verifier-Token', 'query parameter sig' or 'cookie vwh_token', for reports."""
        if self.kind == "header":
            return self.name
        return f"{'query parameter' if self.kind == 'query' else 'cookie'} {self.name}"

    def option(self) -> str:
        """The option that puts the token here, as a user would type it."""
        return f"--token-{self.kind} {self.name}"


def token_place(
    header: str | None = None, query: str | None = None, cookie: str | None = None
) -> TokenPlace:
    """The one place given by --token-header/--token-query/--token-cookie (UsageError for two).

    None of them: the Verifier-Token header, as the original step sends it.
    """
    from vwh.errors import UsageError

    given = [(k, v) for k, v in zip(PLACES, (header, query, cookie), strict=True) if v is not None]
    if len(given) > 1:
        options = " and ".join(f"--token-{k}" for k, _ in given)
        raise UsageError(f"{options}: the token has one place, choose one")
    if not given:
        return TokenPlace()
    kind, name = given[0]
    bad = " \t\r\n:" if kind == "header" else " \t\r\n;=,&"
    if not name or any(c in bad for c in name):
        raise UsageError(f"bad --token-{kind} name {name!r}")
    return TokenPlace(kind, name)


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


def mask_cookie(header: str, configured: frozenset[str] = frozenset()) -> str:
    """A Cookie header with the value of every secret cookie masked, the names kept.

    The same rule as for headers and query parameters (`is_secret_name`): the token
    cookie and session-like cookies are masked; other cookies stay readable, so
    `vwh replay --from-history` can send them again.
    """
    parts = header.split(";")
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and is_secret_name(name.strip(), configured):
            lead = name[: len(name) - len(name.lstrip())]
            parts[i] = f"{lead}{name.strip()}={mask_secret(value.strip())}"
    return ";".join(parts)


def cookie_names(header: str) -> list[str]:
    """The names of the cookies in a Cookie header, in order."""
    names = (part.partition("=")[0].strip() for part in header.split(";") if "=" in part)
    return [name for name in names if name]


def find_cookie(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The raw value of cookie `name` in the Cookie headers (first one), or None."""
    for header, value in headers:
        if header != b"cookie":
            continue
        for part in value.split(b";"):
            key, eq, raw = part.partition(b"=")
            if eq and key.strip() == name:
                return raw.strip()
    return None


def find_query_value(query: bytes, name: str) -> bytes | None:
    """The decoded bytes of query parameter `name` (first one), or None when absent."""
    from urllib.parse import unquote_plus, unquote_to_bytes

    for part in query.split(b"&"):
        key, eq, raw = part.partition(b"=")
        if unquote_plus(key.decode("latin-1")) == name:
            return unquote_to_bytes(raw.replace(b"+", b" ")) if eq else b""
    return None


def is_masked(value: str) -> bool:
    """True for a value `mask_secret` wrote: it stands for a secret the store never kept."""
    return value.startswith("••••")


def unmasked_query(query: str) -> str:
    """A kept query string without the parameters the store masked: those values stand
    for secrets it never kept, so they are never sent again. The rest stays as it came."""
    from urllib.parse import unquote_plus

    parts = query.split("&")
    kept = [p for p in parts if not is_masked(unquote_plus(p.partition("=")[2]))]
    return query if len(kept) == len(parts) else "&".join(p for p in kept if p)


def mask_headers(
    headers: Iterable[tuple[str, str]], secret_names: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Headers as a list of pairs, with every secret value masked."""
    names = frozenset(n.lower() for n in secret_names)
    return [(k, mask_header_value(k, v, names)) for k, v in headers]


def mask_header_value(name: str, value: str, configured: frozenset[str] = frozenset()) -> str:
    """One header's value as it may be kept or shown: Cookie per cookie, a secret masked."""
    if name.lower() == "cookie":
        return mask_cookie(value, configured)
    return mask_secret(value) if is_secret_name(name, configured) else value


def body_ids(body: Mapping[str, Any]) -> dict[str, str]:
    """The id fields a body carries, in ID_FIELDS order, as strings."""
    return {
        k: v if type(v) is str else str(v)
        for k in ID_FIELDS
        if (v := body.get(k)) is not None and v != ""
    }


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
