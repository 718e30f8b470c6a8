"""Sending webhooks the way Vendasta does: one request, then its resend rules.

A delivery is a series of attempts. 2xx ends it as delivered; 3xx and 4xx end it
as rejected (Vendasta never resends those, and redirects are not followed); 5xx,
no answer in time, or a broken connection make it try again after an exponential
backoff with jitter, until the attempts run out and it gives up.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vwh import __version__
from vwh.errors import ExitCode, UsageError
from vwh.webhook import DEFAULT_TOKEN_HEADER, VENDASTA_TIMEOUT, Reaction, vendasta_reaction

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"vwh/{__version__} (Vendasta webhook tester)"
RESPONSE_BODY_LIMIT = 64 * 1024  # how much of an answer is kept for reports


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
    if not sep or not name or any(c in name for c in " \t\r\n") or "\n" in value:
        raise UsageError(f"bad header {text!r}: expected 'Name: value'")
    return name, value.strip()


def check_url(url: str) -> str:
    """An http(s) URL with a host, or UsageError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"bad URL {url!r}: expected http://host[:port]/path or https://...")
    try:
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise UsageError(f"bad URL {url!r}: the port is not a number from 0 to 65535") from None
    return url


def build_request(
    url: str,
    body: bytes,
    *,
    token: str | None = None,
    token_header: str = DEFAULT_TOKEN_HEADER,
    extra_headers: Sequence[tuple[str, str]] = (),
    method: str = "POST",
    label: str = "",
) -> OutgoingRequest:
    """The request Vendasta would send: JSON content type, our user agent, the token."""
    headers: list[tuple[str, str]] = [
        ("Content-Type", "application/json"),
        ("User-Agent", USER_AGENT),
    ]
    if token is not None:
        headers.append((token_header, token))
    overridden = {name.lower() for name, _ in extra_headers}
    headers = [h for h in headers if h[0].lower() not in overridden]
    headers.extend(extra_headers)
    return OutgoingRequest(check_url(url), body, tuple(headers), method, label)


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

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.request.label,
            "url": self.request.url,
            "outcome": self.outcome.value,
            "status": self.last.status,
            "error": self.last.error,
            "attempts": [
                {
                    "number": a.number,
                    "waited_s": round(a.waited, 3),
                    "status": a.status,
                    "error": a.error,
                    "latency_ms": round(a.latency_ms, 3),
                }
                for a in self.attempts
            ],
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


class Sender:
    """Sends requests over one pooled HTTP client; use as an async context manager."""

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
        self._own_client = client is None

    async def __aenter__(self) -> Sender:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                follow_redirects=False,
                limits=httpx.Limits(
                    max_connections=self._concurrency,
                    max_keepalive_connections=self._concurrency,
                ),
                timeout=None,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()

    async def send_once(
        self, request: OutgoingRequest, timeout: float, *, number: int = 1, waited: float = 0.0
    ) -> Attempt:
        """One attempt; network trouble becomes an Attempt with an error, never an exception."""
        import httpx

        assert self._client is not None, "use Sender as an async context manager"
        started = time.perf_counter()

        def done(status: int | None, error: str | None = None, **kw: Any) -> Attempt:
            latency = (time.perf_counter() - started) * 1000
            return Attempt(number, waited, status, latency, error, **kw)

        try:
            async with (
                asyncio.timeout(timeout) if hasattr(asyncio, "timeout") else _deadline(timeout)
            ):
                status, headers, body = await self._exchange(request)
        except (TimeoutError, httpx.TimeoutException):
            return done(None, f"no answer within {timeout:g}s", timed_out=True)
        except httpx.ConnectError as exc:
            return done(None, f"could not connect: {_reason(exc)}")
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            return done(None, f"connection broken before the answer was complete: {_reason(exc)}")
        except httpx.HTTPError as exc:
            return done(None, f"request failed: {_reason(exc)}")
        return done(status, headers=headers, body=body)

    async def _exchange(self, request: OutgoingRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._client is not None
        req = self._client.build_request(
            request.method, request.url, content=request.body, headers=list(request.headers)
        )
        response = await self._client.send(req, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size >= RESPONSE_BODY_LIMIT:
                    break
            body = b"".join(chunks)[:RESPONSE_BODY_LIMIT]
        finally:
            await response.aclose()
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
        """Deliver with bounded concurrency; results come back in input order."""
        results: list[DeliveryOutcome | None] = [None] * len(requests)
        gate = asyncio.Semaphore(self._concurrency)

        async def one(index: int, request: OutgoingRequest) -> None:
            async with gate:
                outcome = await self.deliver(request, policy)
            results[index] = outcome
            if on_done is not None:
                on_done(index, outcome)

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
        return [r for r in results if r is not None]


class _deadline:
    """asyncio.timeout for Python 3.10."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._expired = False

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self._seconds, self._expire)

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


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text and exc.__cause__ is not None:
        text = str(exc.__cause__).strip()
    return text or type(exc).__name__
