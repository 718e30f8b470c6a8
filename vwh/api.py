"""The Vendasta Platform REST API (JSON:API): fetch the records a webhook names.

Every failure becomes one vwh error with its own exit code: 401, 403 (naming the
scope), 404 (pointing at the other environment), 429 and 5xx after bounded retries
that honour Retry-After, timeouts, and hosts that cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from vwh import __version__
from vwh.api_errors import (
    errors_detail,
    host_of,
    json_document,
    refusal,
    retry_after,
    scope_list,
    status_line,
    transport_errors,
)
from vwh.errors import GaveUpError, UsageError, VwhError
from vwh.record_kinds import Kind
from vwh.tokens import AccessToken, normalize_scopes

if TYPE_CHECKING:
    from vwh.auth import TokenSource

API_URLS = {
    "prod": "https://prod.apigateway.co/platform",
    "demo": "https://demo.apigateway.co/platform",
}
JSONAPI = "application/vnd.api+json"
USER_INFO_SCOPES = ("profile", "email", "openid")


def api_base_url(
    env: str | None, base_url: str | None, credentials_env: str | None
) -> tuple[str, str | None]:
    """The API base URL and its environment: --base-url, else --env, else the credentials'."""
    if base_url:
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise UsageError(f"--base-url {base_url!r} is not an http(s) URL")
        base = base_url.rstrip("/")
        return base, next((e for e, u in API_URLS.items() if u == base), None)
    chosen = env or credentials_env or "prod"
    if chosen not in API_URLS:
        raise UsageError(f"unknown environment {chosen!r}: choose prod or demo")
    return API_URLS[chosen], chosen


@dataclass
class Record:
    """A fetched JSON:API document, as received."""

    kind: Kind
    id: str
    document: dict[str, Any]
    url: str


@dataclass
class Failure:
    kind: Kind
    id: str
    error: VwhError


class VendastaClient:
    """An async client for the Platform API; use as `async with VendastaClient(...) as api`."""

    def __init__(
        self,
        source: TokenSource,
        *,
        base_url: str,
        env: str | None = None,
        scopes: Sequence[str] | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        concurrency: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.env = env
        self.scopes = normalize_scopes(scopes or ())
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.concurrency = max(1, concurrency)
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> VendastaClient:
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            headers={"Accept": JSONAPI, "User-Agent": f"vwh/{__version__}"},
            transport=self._transport,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("use VendastaClient as `async with`")
        return self._http

    def scopes_for(self, kind: Kind) -> tuple[str, ...]:
        """What to ask the token endpoint for: --scope if given, else the least the kind needs."""
        return self.scopes or kind.scopes[:1]

    async def fetch(self, kind: Kind, record_id: str, fields: Iterable[str] = ()) -> Record:
        if not record_id.strip():
            raise UsageError(f"empty {kind.label} id")
        url = self.base_url + kind.path(record_id)
        wanted = [f.strip() for f in fields if f.strip()]
        params = {f"fields[{kind.collection}]": ",".join(wanted)} if wanted else None
        scopes = self.scopes_for(kind)
        response = await self._get(url, params=params, auth=self.source.auth(scopes))
        self._check(response, kind=kind, record_id=record_id, token_scopes=scopes)
        return Record(kind, record_id, json_document(response), str(response.url))

    async def fetch_many(
        self, items: Iterable[tuple[Kind, str]], fields: Iterable[str] = ()
    ) -> list[Record | Failure]:
        """Fetch concurrently (bounded); each record succeeds or fails on its own."""
        wanted = list(fields)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(kind: Kind, record_id: str) -> Record | Failure:
            async with limit:
                try:
                    return await self.fetch(kind, record_id, wanted)
                except VwhError as exc:
                    return Failure(kind, record_id, exc)

        return list(await asyncio.gather(*(one(k, i) for k, i in items)))

    async def token(self, scopes: Sequence[str]) -> AccessToken:
        """A token for these scopes (from the cache, or minted), for `vwh token`."""
        with transport_errors(self.timeout):
            return await self.source.token(self.http, normalize_scopes(scopes))

    async def user_info(self, url: str, scopes: Sequence[str]) -> dict[str, Any]:
        """Whom a token belongs to, from the SSO user-info endpoint."""
        scopes = normalize_scopes(scopes) or USER_INFO_SCOPES[:2]
        response = await self._get(url, params=None, auth=self.source.auth(scopes))
        self._check(response, kind=None, record_id="", token_scopes=scopes)
        return json_document(response)

    async def _get(
        self, url: str, *, params: dict[str, str] | None, auth: httpx.Auth
    ) -> httpx.Response:
        """GET with retries on 429 and 5xx, honouring Retry-After, within bounds."""
        attempt = 0
        while True:
            with transport_errors(self.timeout):
                response = await self.http.get(url, params=params, auth=auth)
            status = response.status_code
            if status != 429 and status < 500:
                return response
            delay, too_long = self._delay(attempt, response)
            if too_long is not None:
                raise GaveUpError(
                    f"{host_of(response)} answered {status_line(response)} and asked to retry after"
                    f" {too_long:g} s; gave up (try again later){errors_detail(response)}"
                )
            if attempt >= self.retries:
                tries = "once" if attempt == 0 else f"{attempt + 1} times"
                raise GaveUpError(
                    f"{host_of(response)} answered {status_line(response)} {tries}; gave up"
                    f"{errors_detail(response)}"
                )
            attempt += 1
            await asyncio.sleep(delay)

    def _delay(self, attempt: int, response: httpx.Response) -> tuple[float, float | None]:
        """(seconds to wait, None) or (0, asked) when Retry-After asks too much."""
        asked = retry_after(response.headers.get("Retry-After"))
        if asked is None:
            return min(self.backoff * 2**attempt, self.max_retry_after), None
        if asked > self.max_retry_after:
            return 0.0, asked
        return asked, None

    def _check(
        self,
        response: httpx.Response,
        *,
        kind: Kind | None,
        record_id: str,
        token_scopes: tuple[str, ...],
    ) -> None:
        if 200 <= response.status_code < 300:
            return
        accepted = kind.scopes if kind else USER_INFO_SCOPES
        what = f"read {kind.label}s" if kind else "read user-info"
        raise refusal(
            response,
            why_unauthorized=self.why_unauthorized(),
            forbidden=f"the access token lacks the scope to {what}: {scope_list(accepted)}"
            f" (it was minted for: {' '.join(token_scopes)})",
            missing=f"{kind.label} {record_id} {self.where_missing()}" if kind else None,
        )

    def why_unauthorized(self) -> str:
        """Why the API may have refused the token: the likely cause, for a 401's message."""
        creds = self.source.env
        if creds and self.env and creds != self.env:
            return f"the credentials are for {creds} but the API is {self.env}'s: try --env {creds}"
        return "expired or revoked? minted for the other environment?"

    def where_missing(self) -> str:
        """Where a record was not found, pointing at the other environment (for a 404)."""
        if self.env in API_URLS:
            other = "demo" if self.env == "prod" else "prod"
            return f"in {self.env}; it may be in {other} (try --env {other})"
        return f"at {self.base_url}"
