"""Minting as an `httpx.Auth`, so every API call site stays a plain `client.get(...)`.

The auth mints on first use, reuses the token (in memory and in a 0600 cache file,
so separate `vwh` runs share it) until shortly before it expires, and on a 401
mints once more and retries, in case the cached token was revoked. The token
sources pick where a token comes from: given, or minted from a service account.

Secrets: the access token and the private key never appear in a message or a repr.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncGenerator, Generator, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from vwh.credentials import (
    TOKEN_URLS,
    ServiceAccount,
    find_default_credentials,
    load_credentials,
)
from vwh.errors import CredentialsError
from vwh.tokens import (
    AccessToken,
    Clock,
    TokenCache,
    jwt_expiry,
    normalize_scopes,
    parse_token_response,
    token_request,
)
from vwh.webhook import mask_secret


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
        self._auth = BearerTokenAuth(AccessToken(value, expires_at=jwt_expiry(value)))
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
