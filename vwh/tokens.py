"""Access tokens and how they are minted: the JWT-bearer grant (RFC 7523) and its cache.

The pieces `vwh.auth` composes: the signed assertion, the token request and the reading
of its answer, and the 0600 cache file that lets separate `vwh` runs share a token.
Secrets: the access token and the private key never appear in a message or a repr.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vwh import paths
from vwh.credentials import ServiceAccount
from vwh.errors import GaveUpError, UnauthorizedError, VwhError

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Vendasta refuses assertions living longer than 10 minutes; stay well inside that so
# a clock running a little fast is not refused.
ASSERTION_LIFETIME = 300
REFRESH_MARGIN = 60.0  # stop using a token this long before it expires
DEFAULT_TOKEN_LIFETIME = 300.0  # when the endpoint says nothing, assume little

Clock = Callable[[], float]


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Split on spaces and commas, drop duplicates, keep the order given."""
    seen: dict[str, None] = {}
    for item in scopes:
        for scope in re.split(r"[\s,]+", item):
            if scope:
                seen.setdefault(scope, None)
    return tuple(seen)


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and what is known about it; `value` stays out of the repr."""

    value: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    expires_at: float | None = None  # None: unknown (a token minted elsewhere)
    minted_at: float | None = None
    from_cache: bool = False

    @property
    def header(self) -> str:
        return f"Bearer {self.value}"

    def usable(self, now: float) -> bool:
        """Still worth sending: not within the refresh margin of its expiry.

        The margin is at most REFRESH_MARGIN, and at most half the lifetime, so that a
        short-lived token is still used rather than re-minted at once.
        """
        if self.expires_at is None:
            return True
        lifetime = self.expires_at - (self.minted_at if self.minted_at is not None else now)
        margin = min(REFRESH_MARGIN, max(lifetime, 0.0) / 2)
        return now < self.expires_at - margin


def build_assertion(account: ServiceAccount, scopes: Iterable[str], now: float) -> str:
    """The signed JWT the token endpoint exchanges for an access token."""
    import jwt

    issued = int(now)
    claims = {
        "aud": account.aud,
        "iss": account.iss,
        "sub": account.sub,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
        "scope": " ".join(scopes),
    }
    return jwt.encode(
        claims, account.signing_key, algorithm=account.alg, headers={"kid": account.kid}
    )


def token_request(
    account: ServiceAccount, scopes: tuple[str, ...], token_url: str, now: float
) -> httpx.Request:
    return httpx.Request(
        "POST",
        token_url,
        data={"grant_type": GRANT_TYPE, "assertion": build_assertion(account, scopes, now)},
        headers={"Accept": "application/json"},
    )


def parse_token_response(
    response: httpx.Response, scopes: tuple[str, ...], now: float
) -> AccessToken:
    """The token from a token endpoint's answer, or the endpoint's refusal as an error."""
    host = response.request.url.netloc.decode("ascii", "replace")
    if response.status_code != 200:
        reason = oauth_error(response)
        if 400 <= response.status_code < 500:
            raise UnauthorizedError(f"the token endpoint {host} refused the assertion: {reason}")
        raise GaveUpError(f"the token endpoint {host} failed: {reason}")
    try:
        body = response.json()
    except ValueError:
        body = None
    value = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise VwhError(f"the token endpoint {host} answered 200 without an access_token")
    expires_in = body.get("expires_in") if isinstance(body, dict) else None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        expires_at = now + float(expires_in)
    else:
        expires_at = jwt_expiry(value) or now + DEFAULT_TOKEN_LIFETIME
    return AccessToken(value, scopes, expires_at, minted_at=now)


def oauth_error(response: httpx.Response) -> str:
    """`error: error_description` of an OAuth error body, else the HTTP status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    if isinstance(body, dict) and body.get("error"):
        text = str(body["error"])
        if body.get("error_description"):
            text += f": {body['error_description']}"
        return scrub(f"{text} ({status})")
    return status


_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")


def scrub(text: str, limit: int = 300) -> str:
    """Make outside text safe for a one-line message: one line, no bearer tokens."""
    text = _BEARER.sub(r"\1 ••••", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jwt_expiry(value: str) -> float | None:
    """The `exp` of a token that happens to be a JWT (read, not verified)."""
    import jwt

    try:
        exp = jwt.decode(value, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


def user_info_url(token_url: str) -> str:
    """The user-info endpoint that sits beside a token endpoint."""
    base = token_url.rstrip("/")
    return base[: -len("/token")] + "/user-info" if base.endswith("/token") else base + "/user-info"


class TokenCache:
    """Tokens on disk, one 0600 file per (account, token endpoint, scopes)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else paths.cache_dir() / "tokens"

    @staticmethod
    def key(account: ServiceAccount, token_url: str, scopes: Iterable[str]) -> str:
        ident = json.dumps([account.client_email, account.sub, token_url, sorted(set(scopes))])
        return hashlib.sha256(ident.encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> AccessToken | None:
        """The cached token, or None when there is none or the file is unreadable."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
            return AccessToken(
                value=str(data["access_token"]),
                scopes=tuple(data.get("scopes", ())),
                expires_at=float(data["expires_at"]),
                minted_at=float(data["minted_at"]),
                from_cache=True,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, key: str, token: AccessToken, *, account: str, token_url: str) -> None:
        """Write atomically with mode 0600; a cache that cannot be written is skipped."""
        document = {
            "account": account,
            "token_url": token_url,
            "scopes": list(token.scopes),
            "minted_at": token.minted_at,
            "expires_at": token.expires_at,
            "access_token": token.value,
        }
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".token-", suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                json.dump(document, fh)
            os.replace(tmp, self.path(key))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def discard(self, key: str, token: AccessToken) -> None:
        """Forget a token the API refused, unless another run has replaced it already."""
        cached = self.load(key)
        if cached is not None and cached.value == token.value:
            with contextlib.suppress(OSError):
                self.path(key).unlink()
