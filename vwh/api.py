"""The Vendasta Platform REST API (JSON:API): fetch the records a webhook names.

Every failure becomes one vwh error with its own exit code: 401, 403 (naming the
scope), 404 (pointing at the other environment), 429 and 5xx after bounded retries
that honour Retry-After, timeouts, and hosts that cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from vwh import __version__
from vwh.auth import AccessToken, TokenSource, normalize_scopes, scrub
from vwh.errors import (
    ForbiddenError,
    GaveUpError,
    NotFoundError,
    RejectedError,
    TimeoutError_,
    UnauthorizedError,
    UnreachableError,
    UsageError,
    VwhError,
)
from vwh.webhook import id_kind

API_URLS = {
    "prod": "https://prod.apigateway.co/platform",
    "demo": "https://demo.apigateway.co/platform",
}
JSONAPI = "application/vnd.api+json"
USER_INFO_SCOPES = ("profile", "email", "openid")


@dataclass(frozen=True)
class Kind:
    """A record kind vwh can fetch: its path, and the scopes the API accepts for it."""

    name: str  # what users type: order, account, ...
    label: str  # what messages say
    collection: str  # the path segment, also the JSON:API type
    scopes: tuple[str, ...]  # accepted (any one); the first is the one vwh asks for
    body_field: str | None = None  # the webhook body field that names one

    def path(self, record_id: str) -> str:
        """The record's path; ':' stays literal (an order id's colon is part of the segment)."""
        return f"/{self.collection}/{quote(record_id, safe=':@!$&()*+,;=')}"


# Scopes from Vendasta's OpenAPI spec (the spec wins over the product guide).
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("order", "order", "orders", ("order:read", "order"), "orderId"),
        Kind("account", "sales account", "salesAccounts", ("sales.account",), "accountId"),
        Kind("business", "business location", "businessLocations", ("business:read", "business")),
        Kind(
            "user",
            "user",
            "users",
            (
                "user.profile:read",
                "user.admin",
                "user.contact:read",
                "user.permission:read",
                "user.permission",
                "self.user.admin",
                "self.user.contact:read",
                "openid",
                "profile",
                "email",
                "phone",
                "address",
            ),
            "userId",
        ),
        Kind("automation", "automation", "automations", ("automation:read",), "automationId"),
    )
}
_ALIASES = {
    **{k.name: k for k in KINDS.values()},
    **{k.collection.lower(): k for k in KINDS.values()},
    **{k.name + "s": k for k in KINDS.values()},
    "sales-account": KINDS["account"],
    "location": KINDS["business"],
    "business-location": KINDS["business"],
}


def kind_named(name: str) -> Kind | None:
    """The kind a user typed (order, orders, salesAccounts, ...), or None."""
    return _ALIASES.get(name.strip().lower())


def infer_kind(record_id: str) -> Kind | None:
    """The kind an id's shape implies (`AG-` alone is taken as a sales account)."""
    name = id_kind(record_id)
    return KINDS[name] if name else None


def records_in_body(body: Mapping[str, Any]) -> list[tuple[Kind, str]]:
    """The records a webhook body names (orderId, accountId, userId, automationId)."""
    found: list[tuple[Kind, str]] = []
    for kind in KINDS.values():
        value = body.get(kind.body_field) if kind.body_field else None
        if isinstance(value, str | int) and str(value) and (kind, str(value)) not in found:
            found.append((kind, str(value)))
    return found


def targets_from_args(args: Sequence[str]) -> list[tuple[Kind, str, bool]]:
    """`[KIND] ID...` as (kind, id, guessed); guessed means the kind came from the id."""
    if len(args) == 1 and kind_named(args[0]):
        raise UsageError(f"which {args[0]}? give its id: `vwh fetch {args[0]} ID`")
    kind = kind_named(args[0]) if len(args) > 1 else None
    targets = []
    for record_id in args[1:] if kind else args:
        guessed = kind or infer_kind(record_id)
        if guessed is None:
            raise UsageError(
                f"cannot tell what kind of record {record_id!r} is: say which,"
                f" e.g. `vwh fetch order ID` ({', '.join(KINDS)})"
            )
        targets.append((guessed, record_id, kind is None))
    return targets


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
        return Record(kind, record_id, _json_document(response), str(response.url))

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
        with _transport_errors(self.timeout):
            return await self.source.token(self.http, normalize_scopes(scopes))

    async def user_info(self, url: str, scopes: Sequence[str]) -> dict[str, Any]:
        """Whom a token belongs to, from the SSO user-info endpoint."""
        scopes = normalize_scopes(scopes) or USER_INFO_SCOPES[:2]
        response = await self._get(url, params=None, auth=self.source.auth(scopes))
        self._check(response, kind=None, record_id="", token_scopes=scopes)
        return _json_document(response)

    async def _get(
        self, url: str, *, params: dict[str, str] | None, auth: httpx.Auth
    ) -> httpx.Response:
        """GET with retries on 429 and 5xx, honouring Retry-After, within bounds."""
        attempt = 0
        while True:
            with _transport_errors(self.timeout):
                response = await self.http.get(url, params=params, auth=auth)
            status = response.status_code
            if status != 429 and status < 500:
                return response
            delay, too_long = self._delay(attempt, response)
            if too_long is not None:
                raise GaveUpError(
                    f"{_host(response)} answered {_status(response)} and asked to retry after"
                    f" {too_long:g} s; gave up (try again later){_errors_detail(response)}"
                )
            if attempt >= self.retries:
                tries = "once" if attempt == 0 else f"{attempt + 1} times"
                raise GaveUpError(
                    f"{_host(response)} answered {_status(response)} {tries}; gave up"
                    f"{_errors_detail(response)}"
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
        status = response.status_code
        if 200 <= status < 300:
            return
        host, detail = _host(response), _errors_detail(response)
        if status == 401:
            raise UnauthorizedError(
                f"{host} did not accept the access token ({self._why_401()}){detail}"
            )
        if status == 403:
            accepted = kind.scopes if kind else USER_INFO_SCOPES
            what = f"read {kind.label}s" if kind else "read user-info"
            raise ForbiddenError(
                f"{host} refused: the access token lacks the scope to {what}:"
                f" {_scope_list(accepted)} (it was minted for: {' '.join(token_scopes)}){detail}"
            )
        if status == 404 and kind is not None:
            if self.env in API_URLS:
                other = "demo" if self.env == "prod" else "prod"
                where = f"in {self.env}; it may be in {other} (try --env {other})"
            else:
                where = f"at {self.base_url}"
            raise NotFoundError(f"no {kind.label} {record_id} {where}{detail}")
        raise RejectedError(f"{host} answered {_status(response)}{detail}")

    def _why_401(self) -> str:
        creds = self.source.env
        if creds and self.env and creds != self.env:
            return f"the credentials are for {creds} but the API is {self.env}'s: try --env {creds}"
        return "expired or revoked? minted for the other environment?"


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@contextlib.contextmanager
def _transport_errors(timeout: float) -> Iterator[None]:
    """Turn httpx's transport failures into one-line vwh errors naming the host."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TimeoutError_(f"{_exc_host(exc)} did not answer within {timeout:g} s") from None
    except httpx.ConnectError as exc:
        raise UnreachableError(f"could not reach {_exc_host(exc)}: {_why(exc)}") from None
    except httpx.UnsupportedProtocol as exc:
        raise UsageError(f"cannot use that URL: {exc}") from None
    except httpx.TransportError as exc:
        raise GaveUpError(f"the connection to {_exc_host(exc)} broke: {_why(exc)}") from None


def _exc_host(exc: httpx.RequestError) -> str:
    try:
        return exc.request.url.netloc.decode("ascii", "replace") or "the server"
    except RuntimeError:
        return "the server"


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)
    if "SSL" in text or "certificate" in text.lower():
        text = f"TLS failed: {text}"
    return scrub(text, limit=200)


def _host(response: httpx.Response) -> str:
    return response.request.url.netloc.decode("ascii", "replace")


def _status(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


def _scope_list(scopes: Sequence[str]) -> str:
    shown = list(scopes[:4])
    more = len(scopes) - len(shown)
    text = shown[0] if len(shown) == 1 else f"one of {', '.join(shown)}"
    return text + (f" (or {more} more)" if more > 0 else "")


def errors_text(body: Any) -> str:
    """A JSON:API `errors[]` body as `title: detail; ...`, or '' when it is not one."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for err in errors[:3]:
        if not isinstance(err, dict):
            continue
        title, detail = err.get("title"), err.get("detail")
        text = ": ".join(str(t) for t in (title, detail) if t not in (None, ""))
        if text:
            parts.append(text)
    return scrub("; ".join(parts))


def _errors_detail(response: httpx.Response) -> str:
    try:
        text = errors_text(response.json())
    except ValueError:
        text = ""
    return f" [{text}]" if text else ""


def _json_document(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise VwhError(f"{_host(response)} answered {_status(response)} but not with a JSON object")
    return body
