"""Sending webhooks the way Vendasta does: one request, then its resend rules.

A delivery is a series of attempts. 2xx ends it as delivered; 3xx and 4xx end it
as rejected (Vendasta never resends those, and redirects are not followed); 5xx,
no answer in time, or a broken connection make it try again after an exponential
backoff with jitter, until the attempts run out and it gives up.

Requests go out over aiohttp: measured against the same local receiver, its client
does about twice the requests per second of httpx over aiohttp's transport and ten
times the stock httpx pool at concurrency 64 (see bench/bench_replay.py). An
`httpx.AsyncClient` can still be given instead, for in-process tests over
`httpx.ASGITransport`.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vwh import __version__
from vwh.errors import ExitCode, UsageError
from vwh.webhook import (
    DEFAULT_TOKEN_HEADER,
    VENDASTA_TIMEOUT,
    Reaction,
    TokenPlace,
    vendasta_reaction,
)

if TYPE_CHECKING:
    import aiohttp
    import httpx

USER_AGENT = f"vwh/{__version__} (Vendasta webhook tester)"
RESPONSE_BODY_LIMIT = 64 * 1024  # how much of an answer is kept for reports

# Headers aiohttp would add on its own: none, so the wire carries what `vwh sign` prints.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


@dataclass(frozen=True)
class OutgoingRequest:
    """Exactly what goes on the wire: `vwh sign` prints it, `vwh replay` sends it."""

    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    method: str = "POST"
    label: str = ""  # where the body came from, for reports


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' as given to -H; raise UsageError when it is not that."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise UsageError(f"bad header {text!r}: expected 'Name: value'")
    if any(c in value for c in "\r\n\0"):
        raise UsageError(f"bad header {text!r}: a value cannot hold line breaks")
    return name, value.strip()


def check_url(url: str, what: str = "URL") -> str:
    """An http(s) URL with a host, or UsageError naming `what` (the option, say)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"bad {what} {url!r}: expected http://host[:port]/path or https://...")
    try:
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise UsageError(f"bad {what} {url!r}: the port is not a number from 0 to 65535") from None
    return url


def parse_pair(text: str, option: str) -> tuple[str, str]:
    """'NAME=VALUE' as given to --query or --cookie; UsageError when it is not that."""
    name, sep, value = text.partition("=")
    bad = " \t\r\n;=&" if option == "--query" else " \t\r\n;=,"
    if not sep or not name or any(c in bad for c in name):
        raise UsageError(f"bad {option} {text!r}: expected NAME=VALUE")
    if any(c in value for c in "\r\n\0" + (";" if option == "--cookie" else "")):
        raise UsageError(f"bad {option} {text!r}: the value cannot hold this character")
    return name, value


def with_query(
    url: str, params: Sequence[tuple[str, str]], replace: str | None = None, raw: str = ""
) -> str:
    """The URL with parameters added to its query; `replace`: drop that name's first.

    Everything already in the query, and `raw` (an encoded query), stays byte for
    byte; the new ones are encoded.
    """
    from urllib.parse import quote, unquote_plus

    if not params and replace is None and not raw:
        return url
    base, hash_, fragment = url.partition("#")
    head, sep, query = base.partition("?")
    parts = [p for p in query.split("&") if p] if sep else []
    if replace is not None:
        parts = [p for p in parts if unquote_plus(p.partition("=")[0]) != replace]
    parts += [p for p in raw.split("&") if p]
    parts += [f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in params]
    return head + ("?" + "&".join(parts) if parts else "") + hash_ + fragment


def _with_cookies(
    headers: list[tuple[str, str]], cookies: Sequence[tuple[str, str]], replace: str | None
) -> list[tuple[str, str]]:
    """One Cookie header: the one given (minus `replace`), then the new cookies."""
    kept: list[str] = []
    at = len(headers)
    for i, (name, value) in enumerate(headers):
        if name.lower() == "cookie":
            at = min(at, i)
            kept += [
                c.strip()
                for c in value.split(";")
                if c.strip() and c.partition("=")[0].strip() != replace
            ]
    if not cookies and replace is None:
        return headers
    rest = [h for h in headers if h[0].lower() != "cookie"]
    pairs = kept + [f"{n}={v}" for n, v in cookies]
    if pairs:
        rest.insert(min(at, len(rest)), ("Cookie", "; ".join(pairs)))
    return rest


def build_request(
    url: str,
    body: bytes,
    *,
    token: str | None = None,
    token_header: str = DEFAULT_TOKEN_HEADER,
    extra_headers: Sequence[tuple[str, str]] = (),
    method: str = "POST",
    label: str = "",
    token_place: TokenPlace | None = None,
    query: Sequence[tuple[str, str]] = (),
    cookies: Sequence[tuple[str, str]] = (),
    base_headers: Sequence[tuple[str, str]] | None = None,
) -> OutgoingRequest:
    """The request Vendasta would send: JSON content type, our user agent, the token.

    An extra header replaces a default of the same name (all of its values). The
    token goes where `token_place` says (default: the `token_header` header); a
    query parameter or cookie of its name already there is replaced. `query` is added
    to the URL's query, `cookies` to one Cookie header. `base_headers` replace the
    defaults (a copied curl request brings its own).
    """
    place = token_place or TokenPlace("header", token_header)
    headers: list[tuple[str, str]] = (
        [("Content-Type", "application/json"), ("User-Agent", USER_AGENT)]
        if base_headers is None
        else list(base_headers)
    )
    query = list(query)
    cookies = list(cookies)
    if token is not None:
        try:
            token.encode("utf-8")  # how it goes out; aiohttp would drop what is not UTF-8
        except UnicodeEncodeError:
            raise UsageError(
                "the token holds bytes that are not UTF-8, which vwh cannot send"
            ) from None
        if place.kind == "query":
            query.append((place.name, token))
        elif place.kind == "cookie":
            cookies.append((place.name, token))
        else:
            headers = [h for h in headers if h[0].lower() != place.name.lower()]
            headers.append((place.name, token))
    overridden = {name.lower() for name, _ in extra_headers}
    headers = [h for h in headers if h[0].lower() not in overridden]
    headers.extend(extra_headers)
    replace = place.name if token is not None and not place.is_header else None
    headers = _with_cookies(headers, cookies, replace if place.kind == "cookie" else None)
    url = with_query(check_url(url), query, replace if place.kind == "query" else None)
    return OutgoingRequest(url, body, tuple(headers), method, label)


@dataclass(frozen=True)
class ResendPolicy:
    """How many times to try and how long to wait between tries.

    The wait before attempt n (n >= 2) is drawn uniformly from
    [b/2, b] with b = backoff * 2**(n-2), capped at max_backoff ("equal jitter").
    """

    attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 60.0
    timeout: float = VENDASTA_TIMEOUT

    def wait_bounds(self, attempt: int) -> tuple[float, float]:
        top = min(self.max_backoff, self.backoff * 2 ** (attempt - 2))
        return top / 2, top

    def wait_before(self, attempt: int, rng: random.Random) -> float:
        low, high = self.wait_bounds(attempt)
        return rng.uniform(low, high)


class Outcome(str, Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    GAVE_UP = "gave-up"


@dataclass
class Attempt:
    """One try: its answer (or why there was none), how long it took, the wait before."""

    number: int
    waited: float
    status: int | None
    latency_ms: float
    error: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    timed_out: bool = False

    @property
    def reaction(self) -> Reaction:
        return vendasta_reaction(self.status)

    def describe(self) -> str:
        return str(self.status) if self.status is not None else (self.error or "no answer")

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "waited_s": round(self.waited, 3),
            "status": self.status,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass
class DeliveryOutcome:
    request: OutgoingRequest
    outcome: Outcome
    attempts: list[Attempt]

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    @property
    def exit_code(self) -> ExitCode:
        return _OUTCOME_EXIT[self.outcome]

    @property
    def elapsed_ms(self) -> float:
        """Time from the first try to the last answer, waits included."""
        return sum(a.waited * 1000 + a.latency_ms for a in self.attempts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary with the handler's answer; no request header, so no token."""
        return {
            "source": self.request.label,
            "method": self.request.method,
            "url": self.request.url,
            "outcome": self.outcome.value,
            "status": self.last.status,
            "error": self.last.error,
            "answer": self.last.body.decode("utf-8", "replace") if self.last.body else None,
            "attempts": [a.to_json() for a in self.attempts],
        }


_OUTCOME_EXIT = {
    Outcome.DELIVERED: ExitCode.OK,
    Outcome.REJECTED: ExitCode.REJECTED,
    Outcome.GAVE_UP: ExitCode.GAVE_UP,
}


def batch_exit_code(outcomes: Sequence[DeliveryOutcome]) -> ExitCode:
    """0 when all delivered; 4 when any gave up; else 3 when any was rejected."""
    kinds = {o.outcome for o in outcomes}
    if Outcome.GAVE_UP in kinds:
        return ExitCode.GAVE_UP
    if Outcome.REJECTED in kinds:
        return ExitCode.REJECTED
    return ExitCode.OK


Sleep = Callable[[float], Awaitable[Any]]
Answer = tuple[int, list[tuple[str, str]], bytes]


class _NoAnswer(Exception):
    """The connection failed before a whole answer came back; the message says how."""


class Sender:
    """Sends requests over one connection pool; use as an async context manager.

    Without `client` it pools connections with aiohttp (the fast path); with an
    `httpx.AsyncClient` it sends through that client instead.
    """

    def __init__(
        self,
        *,
        concurrency: int = 8,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._concurrency = max(1, concurrency)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._client = client
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Sender:
        if self._client is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency, limit_per_host=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=_NO_AUTO_HEADERS,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None),  # send_once keeps the time
                trust_env=False,  # no proxy or .netrc: the request is exactly what sign prints
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_once(
        self, request: OutgoingRequest, timeout: float, *, number: int = 1, waited: float = 0.0
    ) -> Attempt:
        """One attempt; network trouble becomes an Attempt with an error, never an exception."""
        started = time.perf_counter()

        def done(status: int | None, error: str | None = None, **kw: Any) -> Attempt:
            latency = (time.perf_counter() - started) * 1000
            return Attempt(number, waited, status, latency, error, **kw)

        exchange = self._httpx_exchange if self._client is not None else self._aiohttp_exchange
        try:
            async with _timeout(timeout):
                status, headers, body = await exchange(request)
        except TimeoutError:
            return done(None, f"no answer within {timeout:g}s", timed_out=True)
        except _NoAnswer as exc:
            return done(None, str(exc))
        return done(status, headers=headers, body=body)

    async def _aiohttp_exchange(self, request: OutgoingRequest) -> Answer:
        import aiohttp

        assert self._session is not None, "use Sender as an async context manager"
        try:
            async with self._session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
            ) as response:
                body = await _read_limited(response.content.iter_any())
                headers = list(response.headers.items())
                return response.status, headers, body
        except aiohttp.ClientConnectorDNSError:
            host = urlsplit(request.url).hostname
            raise _NoAnswer(f"could not connect: cannot resolve {host}") from None
        except aiohttp.ClientConnectorError as exc:
            raise _NoAnswer(f"could not connect: {_os_reason(exc.os_error)}") from None
        except aiohttp.ServerDisconnectedError:
            raise _NoAnswer(_broken("the server closed the connection")) from None
        except aiohttp.ClientPayloadError:
            raise _NoAnswer(_broken("the body of the answer was cut short")) from None
        except aiohttp.ClientConnectionError as exc:
            raise _NoAnswer(_broken(_os_reason(exc))) from None
        except aiohttp.ClientResponseError as exc:
            what = str(exc.message).splitlines()[0].rstrip(": ") if exc.message else "unreadable"
            raise _NoAnswer(_broken(f"the answer is not valid HTTP ({what})")) from None
        except aiohttp.ClientError as exc:
            raise _NoAnswer(f"request failed: {_os_reason(exc)}") from None

    async def _httpx_exchange(self, request: OutgoingRequest) -> Answer:
        import httpx

        assert self._client is not None
        # Values as UTF-8 bytes, as aiohttp sends them (httpx alone would refuse non-ASCII).
        headers = [(name.encode(), value.encode()) for name, value in request.headers]
        req = self._client.build_request(
            request.method, request.url, content=request.body, headers=headers
        )
        try:
            response = await self._client.send(req, stream=True, follow_redirects=False)
            try:
                body = await _read_limited(response.aiter_raw())
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.ConnectError as exc:
            raise _NoAnswer(f"could not connect: {_os_reason(exc)}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _NoAnswer(_broken(_os_reason(exc))) from None
        except httpx.HTTPError as exc:
            raise _NoAnswer(f"request failed: {_os_reason(exc)}") from None
        return response.status_code, list(response.headers.multi_items()), body

    async def deliver(self, request: OutgoingRequest, policy: ResendPolicy) -> DeliveryOutcome:
        """Send with Vendasta's resend rules until delivered, rejected, or out of attempts."""
        attempts: list[Attempt] = []
        waited = 0.0
        for number in range(1, max(1, policy.attempts) + 1):
            if number > 1:
                waited = policy.wait_before(number, self._rng)
                await self._sleep(waited)
            attempt = await self.send_once(request, policy.timeout, number=number, waited=waited)
            attempts.append(attempt)
            reaction = attempt.reaction
            if reaction is Reaction.DONE:
                return DeliveryOutcome(request, Outcome.DELIVERED, attempts)
            if reaction is Reaction.DROPPED:
                return DeliveryOutcome(request, Outcome.REJECTED, attempts)
        return DeliveryOutcome(request, Outcome.GAVE_UP, attempts)

    async def deliver_many(
        self,
        requests: Sequence[OutgoingRequest],
        policy: ResendPolicy,
        on_done: Callable[[int, DeliveryOutcome], None] | None = None,
    ) -> list[DeliveryOutcome]:
        """Deliver with bounded concurrency; results come back in input order.

        A fixed set of workers takes requests in turn, so a batch of thousands costs
        `concurrency` tasks rather than one task per request.
        """
        results: list[DeliveryOutcome | None] = [None] * len(requests)
        queue = iter(enumerate(requests))

        async def worker() -> None:
            for index, request in queue:
                outcome = await self.deliver(request, policy)
                results[index] = outcome
                if on_done is not None:
                    on_done(index, outcome)

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(requests)))))
        return [r for r in results if r is not None]


def deliver_all(
    requests: Sequence[OutgoingRequest],
    policy: ResendPolicy,
    *,
    concurrency: int = 8,
    on_done: Callable[[int, DeliveryOutcome], None] | None = None,
) -> list[DeliveryOutcome]:
    """Deliver a batch from synchronous code (the CLI), in an event loop of its own."""

    async def run() -> list[DeliveryOutcome]:
        async with Sender(concurrency=concurrency) as sender:
            return await sender.deliver_many(requests, policy, on_done)

    return asyncio.run(run())


async def _read_limited(chunks: Any) -> bytes:
    """Read an answer to its end (a cut-short body must show), keeping the first part."""
    kept: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if size < RESPONSE_BODY_LIMIT:
            kept.append(chunk)
        size += len(chunk)
    return b"".join(kept)[:RESPONSE_BODY_LIMIT]


def _broken(reason: str) -> str:
    return f"connection broken before the answer was complete: {reason}"


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EPIPE: "connection closed by the server",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def _os_reason(exc: BaseException) -> str:
    """The plainest reason for a network error: the OSError behind it when there is one.

    httpx says "All connection attempts failed" and aiohttp "Cannot connect to host
    ...": the cause they wrap says what a person needs ("connection refused").
    """
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "errno", None)
        if isinstance(seen, OSError) and code:
            return _ERRNO_REASONS.get(code, os.strerror(code).lower())
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip()
    return text or type(exc).__name__


class _Deadline:
    """asyncio.timeout for Python 3.10, which lacks it; raises TimeoutError."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._expired = False

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        self._handle = asyncio.get_running_loop().call_later(self._seconds, self._expire)

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and exc_type is asyncio.CancelledError:
            raise TimeoutError
        return False


_timeout: Callable[[float], Any] = getattr(asyncio, "timeout", _Deadline)
