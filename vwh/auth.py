"""Access tokens: minted from a service account with the JWT-bearer grant (RFC 7523).

Minting is an `httpx.Auth`, so every API call site stays a plain `client.get(...)`:
the auth mints on first use, reuses the token (in memory and in a 0600 cache file,
so separate `vwh` runs share it) until shortly before it expires, and on a 401
mints once more and retries, in case the cached token was revoked.

Secrets: the access token and the private key never appear in a message or a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from vwh import paths
from vwh.credentials import (
    TOKEN_URLS,
    ServiceAccount,
    find_default_credentials,
    load_credentials,
)
from vwh.errors import CredentialsError, GaveUpError, UnauthorizedError, VwhError
from vwh.webhook import mask_secret

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
        expires_at = _jwt_expiry(value) or now + DEFAULT_TOKEN_LIFETIME
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


def _jwt_expiry(value: str) -> float | None:
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


class ServiceAccountAuth(httpx.Auth):
    """Bearer auth that mints, caches and refreshes tokens for one set of scopes.

    One instance serves concurrent requests: a lock makes them wait for a single mint.
    """

    def __init__(
        self,
        account: ServiceAccount,
        scopes: Iterable[str],
        *,
        token_url: str | None = None,
        cache: TokenCache | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.account = account
        self.scopes = normalize_scopes(scopes)
        if not self.scopes:
            raise CredentialsError("no scope to ask for: name at least one")
        self.token_url = token_url or account.token_uri
        self.cache = cache
        self._clock = clock
        self._key = TokenCache.key(account, self.token_url, self.scopes)
        self._token: AccessToken | None = None
        self._thread_lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self.mints = 0  # how many tokens this instance minted (for people and tests)

    def __repr__(self) -> str:
        return f"ServiceAccountAuth(account={self.account.name!r}, scopes={self.scopes!r})"

    def current(self) -> AccessToken | None:
        """A usable token from memory or the cache file, without minting."""
        now = self._clock()
        if self._token is not None and self._token.usable(now):
            return self._token
        if self.cache is not None:
            cached = self.cache.load(self._key)
            if cached is not None and cached.usable(now):
                self._token = cached
                return cached
        return None

    def _mint_request(self, timeout: dict[str, float | None] | None) -> httpx.Request:
        """The token request, with the caller's timeout: httpx applies its client timeout
        only to the request it was given, not to requests an auth flow adds."""
        request = token_request(self.account, self.scopes, self.token_url, self._clock())
        if timeout is not None:
            request.extensions = {**request.extensions, "timeout": timeout}
        return request

    def _accept(self, response: httpx.Response, sent_at: float) -> AccessToken:
        token = parse_token_response(response, self.scopes, sent_at)
        self.mints += 1
        self._token = token
        if self.cache is not None:
            self.cache.save(self._key, token, account=self.account.name, token_url=self.token_url)
        return token

    def _forget(self, token: AccessToken) -> None:
        if self._token is not None and self._token.value == token.value:
            self._token = None
        if self.cache is not None:
            self.cache.discard(self._key, token)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        with self._thread_lock:
            token = self.current()
            minted = token is None
            if token is None:
                sent_at = self._clock()
                reply = yield self._mint_request(request.extensions.get("timeout"))
                reply.read()
                token = self._accept(reply, sent_at)
        request.headers["Authorization"] = token.header
        response = yield request
        if response.status_code != 401 or minted:
            return
        with self._thread_lock:
            self._forget(token)
            token = self.current()
            if token is None:
                sent_at = self._clock()
                reply = yield self._mint_request(request.extensions.get("timeout"))
                reply.read()
                token = self._accept(reply, sent_at)
        request.headers["Authorization"] = token.header
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._lock():
            token = self.current()
            minted = token is None
            if token is None:
                sent_at = self._clock()
                reply = yield self._mint_request(request.extensions.get("timeout"))
                await reply.aread()
                token = self._accept(reply, sent_at)
        request.headers["Authorization"] = token.header
        response = yield request
        if response.status_code != 401 or minted:
            return
        async with self._lock():
            self._forget(token)
            token = self.current()
            if token is None:
                sent_at = self._clock()
                reply = yield self._mint_request(request.extensions.get("timeout"))
                await reply.aread()
                token = self._accept(reply, sent_at)
        request.headers["Authorization"] = token.header
        yield request

    async def get_token(self, client: httpx.AsyncClient) -> AccessToken:
        """The current token, minting one through `client` when needed (for `vwh token`)."""
        async with self._lock():
            token = self.current()
            if token is None:
                sent_at = self._clock()
                response = await client.send(self._mint_request(client.timeout.as_dict()))
                await response.aread()
                token = self._accept(response, sent_at)
            return token

    def _lock(self) -> asyncio.Lock:
        """One asyncio lock per event loop (a lock cannot be shared across loops)."""
        loop = asyncio.get_running_loop()
        if self._async_lock is None or self._async_loop is not loop:
            self._async_lock, self._async_loop = asyncio.Lock(), loop
        return self._async_lock


class BearerTokenAuth(httpx.Auth):
    """A token minted elsewhere (`--access-token`), sent as is."""

    def __init__(self, token: AccessToken) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"BearerTokenAuth({mask_secret(self.token.value)})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.token.header
        yield request


class TokenSource:
    """Where tokens come from: hands out an httpx.Auth for a set of scopes."""

    description: str = ""
    env: str | None = None  # the environment the credentials belong to, when known
    account: ServiceAccount | None = None
    token_url: str | None = None

    def auth(self, scopes: Iterable[str]) -> httpx.Auth:
        raise NotImplementedError

    async def token(self, client: httpx.AsyncClient, scopes: Iterable[str]) -> AccessToken:
        raise NotImplementedError


class StaticTokenSource(TokenSource):
    def __init__(self, value: str, origin: str = "--access-token") -> None:
        # Accept a value pasted from `vwh token` or another tool, "Bearer " and all.
        value = re.sub(r"(?i)^bearer(\s+|$)", "", value.strip()).strip()
        if not value:
            raise CredentialsError(f"{origin}: the access token is empty")
        self._auth = BearerTokenAuth(AccessToken(value, expires_at=_jwt_expiry(value)))
        self.description = f"access token {mask_secret(value)} from {origin}"

    def auth(self, scopes: Iterable[str]) -> httpx.Auth:
        return self._auth

    async def token(self, client: httpx.AsyncClient, scopes: Iterable[str]) -> AccessToken:
        return self._auth.token


class ServiceAccountSource(TokenSource):
    """Mints per scope set, with one ServiceAccountAuth (one lock, one cache key) each."""

    def __init__(
        self,
        account: ServiceAccount,
        *,
        token_url: str | None = None,
        cache: TokenCache | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.account = self._account = account
        self.env = account.env
        self.token_url = token_url or account.token_uri
        self.cache = cache if cache is not None else TokenCache()
        self._clock = clock
        self._auths: dict[tuple[str, ...], ServiceAccountAuth] = {}
        where = f" ({account.path})" if account.path else ""
        self.description = f"service account {account.name}{where}"

    def auth(self, scopes: Iterable[str]) -> ServiceAccountAuth:
        key = normalize_scopes(scopes)
        if key not in self._auths:
            self._auths[key] = ServiceAccountAuth(
                self._account, key, token_url=self.token_url, cache=self.cache, clock=self._clock
            )
        return self._auths[key]

    async def token(self, client: httpx.AsyncClient, scopes: Iterable[str]) -> AccessToken:
        return await self.auth(scopes).get_token(client)

    @property
    def mints(self) -> int:
        return sum(a.mints for a in self._auths.values())


def token_source(
    *,
    access_token: str | None = None,
    credentials: Path | str | None = None,
    token_url: str | None = None,
    cache: TokenCache | None = None,
) -> TokenSource:
    """Pick the token source: a given token, a given file, else the default directory."""
    if access_token:
        return StaticTokenSource(access_token)
    if token_url and urlsplit(token_url).scheme not in ("http", "https"):
        raise CredentialsError(f"token URL {token_url!r} is not an http(s) URL")
    path = Path(credentials) if credentials else find_default_credentials()
    if path is None:
        raise CredentialsError(
            "no credentials: give --access-token, or --credentials FILE (the service-account"
            " JSON from Partner Center), or put that file in ~/.config/api-gateway/"
        )
    return ServiceAccountSource(load_credentials(path), token_url=token_url, cache=cache)


def default_token_url(env: str) -> str:
    return TOKEN_URLS[env]
