"""The one HTTP client for webhook traffic: `vwh replay`, `vwh check` and the
forwarding of `vwh listen --forward-to` (vwh.forward) all send through it.

Every rule about the wire is written here once: the session carries no header of its
own (the wire holds exactly what `vwh sign` prints, or what the sender sent), follows
no redirect, reads no proxy setting, bounds what it keeps of an answer, gives each try
its own timeout, and turns every network failure into NoAnswer with the stage it
reached (connect, timeout, broken) and a one-line reason.

And the rule of a kept-alive connection: a server may close an idle connection at
the moment a request goes out on it. A failure on a REUSED connection before any byte
of the answer came back means the server never saw the request, so it is retried at
once on a fresh connection and not counted as an attempt (Vendasta's sender does the
same). A failure after answer bytes started counts: the handler may have done the work.

Requests go out over aiohttp: measured against the same local receiver, its client
does about twice the requests per second of httpx over aiohttp's transport and ten
times the stock httpx pool at concurrency 64 (bench/bench_replay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import os
import re
import socket
import ssl
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vwh.delivery import Attempt, OutgoingRequest
from vwh.errors import UnreachableError

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.client_proto import ResponseHandler

RESPONSE_BODY_LIMIT = 64 * 1024  # how much of an answer is kept for reports

# Headers aiohttp would add on its own: none, so the wire carries what `vwh sign` prints.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


@dataclass
class _Try:
    """What one try learnt about its connection: reused or not, and answer bytes seen."""

    fresh_only: bool = False
    protocol: Any = None  # the _CountingHandler the request went out on
    reused: bool = False
    received_before: int = 0

    def use(self, protocol: Any) -> None:
        self.protocol = protocol
        self.reused = protocol.requests > 0
        self.received_before = protocol.received
        protocol.requests += 1

    @property
    def silent(self) -> bool:
        """Sent, and not one byte of the answer came back."""
        return self.protocol is not None and self.protocol.received == self.received_before

    @property
    def stale(self) -> bool:
        """Reused, and not one byte of the answer came back: the server never saw it."""
        return self.reused and self.silent


# Set by `send` for the try under way; the connector (same task) fills it in.
_CURRENT_TRY: contextvars.ContextVar[_Try | None] = contextvars.ContextVar("vwh_try", default=None)


class Stage(str, Enum):
    """How far a request got before it failed: what the caller calls the failure."""

    CONNECT = "connect"  # no connection: the server never saw the request
    TIMEOUT = "timeout"  # no whole answer within the time given
    BROKEN = "broken"  # the connection broke, or the answer was not HTTP


class NoAnswer(Exception):
    """No whole answer came back; `stage` says where it stopped, `reason` says why."""

    def __init__(self, stage: Stage, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


@dataclass
class Answer:
    """A whole answer: its status, its header fields as they came, its body (bounded)."""

    status: int
    raw_headers: tuple[tuple[bytes, bytes], ...]
    headers: Any  # aiohttp's CIMultiDictProxy of the same fields, names canonical
    body: bytes


class OutboundClient:
    """Sends webhook requests over one pool of `connections`; an async context manager.

    `open()` and `aclose()` do the same for a caller that lives longer than one block
    (the listener's forwarder); both run in the loop that sends.
    """

    def __init__(self, *, connections: int = 8) -> None:
        self._connections = max(1, connections)
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> OutboundClient:
        import aiohttp

        # Bodies up to --max-size go out in one write; aiohttp's hint about large bytes
        # bodies (a ResourceWarning past 1 MiB) does not apply to a loop that only sends.
        warnings.filterwarnings("ignore", "Sending a large body directly", ResourceWarning)

        session = aiohttp.ClientSession(
            connector=_connector_class()(limit=self._connections, limit_per_host=0),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NO_AUTO_HEADERS,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),  # exchange keeps the time
            trust_env=False,  # no proxy or .netrc: the request is exactly what sign prints
        )
        # aiohttp resends idempotent methods once on any broken connection, even after
        # answer bytes came back; the stale-connection rule below is the only resend here.
        session._retry_connection = False
        self._session = session
        return self

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> OutboundClient:
        return self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(
        self, request: OutgoingRequest, timeout: float, *, number: int = 1, waited: float = 0.0
    ) -> Attempt:
        """One attempt of a delivery; network trouble becomes an Attempt with an error."""
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        headers: list[tuple[str, str]] = []
        body = b""
        timed_out = False
        try:
            answer = await self.exchange(
                request.method, request.url, request.headers, request.body, timeout
            )
        except NoAnswer as exc:
            error = _ATTEMPT_ERRORS[exc.stage].format(exc.reason)
            timed_out = exc.stage is Stage.TIMEOUT
        else:
            status, headers, body = answer.status, list(answer.headers.items()), answer.body
        latency = (time.perf_counter() - started) * 1000
        return Attempt(number, waited, status, latency, error, headers, body, timed_out)

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        timeout: float,
        *,
        limit: int = RESPONSE_BODY_LIMIT,
        whole: bool = False,
        as_is: bool = False,
    ) -> Answer:
        """One request and its answer within `timeout`, or NoAnswer.

        The answer is read to its end (a cut-short body must show); its first `limit`
        bytes are kept, or with `whole` all of it, a longer one being NoAnswer. With
        `as_is` the URL's path and query go out exactly as written (a proxy's target).
        A stale kept-alive connection is not the try: it is retried on a fresh one.
        """
        assert self._session is not None, "open the OutboundClient first"
        target: Any = url
        if as_is:
            from yarl import URL

            target = URL(url, encoded=True)
        for fresh_only in (False, True):
            connection = _Try(fresh_only=fresh_only)
            token = _CURRENT_TRY.set(connection)
            try:
                async with _timeout(timeout):
                    return await self._exchange(method, target, headers, body, limit, whole)
            except TimeoutError:
                raise NoAnswer(Stage.TIMEOUT, f"no answer within {timeout:g}s") from None
            except NoAnswer:
                if not connection.stale or fresh_only:
                    raise
            finally:
                _CURRENT_TRY.reset(token)
        raise AssertionError("unreachable: the fresh try returns or raises")

    async def _exchange(
        self,
        method: str,
        url: Any,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        limit: int,
        whole: bool,
    ) -> Answer:
        import aiohttp

        assert self._session is not None
        try:
            async with self._session.request(
                method, url, data=body, headers=list(headers), allow_redirects=False
            ) as response:
                kept = await read_bounded(response.content.iter_any(), limit, whole)
                if kept is None:
                    response.close()
                    raise NoAnswer(Stage.BROKEN, f"the answer is over {_size(limit)}")
                return Answer(response.status, response.raw_headers, response.headers, kept)
        except aiohttp.ClientConnectorDNSError:
            host = urlsplit(str(url)).hostname
            raise NoAnswer(Stage.CONNECT, f"cannot resolve {host}") from None
        except aiohttp.ClientConnectorError as exc:
            raise NoAnswer(Stage.CONNECT, os_reason(exc.os_error)) from None
        except aiohttp.ServerDisconnectedError:
            connection = _CURRENT_TRY.get()
            silent = " without answering" if connection and connection.silent else ""
            raise NoAnswer(Stage.BROKEN, f"the server closed the connection{silent}") from None
        except aiohttp.ClientPayloadError:
            raise NoAnswer(Stage.BROKEN, "the body of the answer was cut short") from None
        except aiohttp.ClientConnectionError as exc:
            raise NoAnswer(Stage.BROKEN, os_reason(exc)) from None
        except aiohttp.ClientResponseError as exc:
            what = str(exc.message).splitlines()[0].rstrip(": ") if exc.message else "unreadable"
            raise NoAnswer(Stage.BROKEN, f"the answer is not valid HTTP ({what})") from None
        except aiohttp.ClientError as exc:
            raise NoAnswer(Stage.CONNECT, f"request failed: {os_reason(exc)}") from None


# How replay and check word a failure in an Attempt (vwh.forward words its own).
_ATTEMPT_ERRORS = {
    Stage.CONNECT: "could not connect: {}",
    Stage.TIMEOUT: "{}",
    Stage.BROKEN: "connection broken before the answer was complete: {}",
}


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def _connector_class() -> type[aiohttp.TCPConnector]:
    """aiohttp's connector, telling each try whether its connection was reused."""
    import functools

    import aiohttp
    from aiohttp.client_proto import ResponseHandler

    class CountingHandler(ResponseHandler):
        """aiohttp's protocol, counting the bytes that came back and the requests sent."""

        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            super().__init__(loop)
            self.received = 0
            self.requests = 0

        def data_received(self, data: bytes) -> None:
            self.received += len(data)
            super().data_received(data)

    class Connector(aiohttp.TCPConnector):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            factory = functools.partial(CountingHandler, loop=self._loop)
            self._factory = factory  # type: ignore[assignment]  # a subclass, same calls

        async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
            attempt = _CURRENT_TRY.get()
            for _ in range(self.limit + 2):  # each pass closes one kept connection
                conn = await super().connect(req, traces, timeout)
                protocol: ResponseHandler | None = conn.protocol
                if attempt is None or not isinstance(protocol, CountingHandler):
                    return conn
                if attempt.fresh_only and protocol.requests > 0:
                    conn.close()  # a kept connection: the retry wants a fresh one
                    continue
                attempt.use(protocol)
                return conn
            raise aiohttp.ClientConnectionError("no fresh connection could be opened")

    return Connector


async def read_bounded(chunks: AsyncIterator[bytes], limit: int, whole: bool) -> bytes | None:
    """Read an answer to its end (a cut-short body must show), keeping the first `limit`
    bytes; with `whole`, None as soon as it is longer (nothing more is read)."""
    kept: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit and whole:
            return None
        if size - len(chunk) < limit:
            kept.append(chunk)
    return b"".join(kept)[:limit] if size > limit else b"".join(kept)


async def ensure_reachable(url: str, timeout: float) -> None:
    """Connect (and shake hands for https) once, so a wrong URL is one clear error
    instead of a report in which every request failed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    context = ssl.create_default_context() if https else None  # the trust aiohttp uses
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), timeout
        )
    except socket.gaierror as exc:
        reason = f"cannot resolve the host name ({exc.strerror})"
    except (TimeoutError, asyncio.TimeoutError):
        reason = f"no connection within {timeout:g}s"
    except ssl.SSLError as exc:
        reason = f"TLS handshake failed ({exc.reason or exc})"
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    else:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise UnreachableError(f"could not reach {where}: {reason}")


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EPIPE: "connection closed by the server",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def os_reason(exc: BaseException) -> str:
    """The plainest reason for a network error ("connection refused"), not errno soup.

    aiohttp says "Cannot connect to host ...": the OSError it wraps says what a person
    needs. A connect to several addresses raises one OSError listing them all
    ("Multiple exceptions: [Errno 111] ..."): its first errno says it.
    """
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "errno", None)
        if isinstance(seen, OSError) and not code:
            found = re.search(r"\[Errno (\d+)\]", str(seen))
            code = int(found.group(1)) if found else None
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
