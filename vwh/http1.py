"""HTTP/1.1 on asyncio and httptools: the wire under vwh.outbound.

A connection carries one exchange at a time; a pool keeps the idle ones per origin
and opens at most `connections` at once. Nothing here decides what a failure means:
an exchange either returns the whole answer or raises NoAnswer saying how far it got
(its Stage) and whether it failed on a reused connection before any answer byte (`stale`);
vwh.outbound applies the rules (timeouts, the stale-connection retry, wording).

Why a client of our own rather than aiohttp's: aiohttp's client costs about twice the
CPU per request (bench/bench_forward.py: vwh used ~800 us per forwarded request with
it against ~450 us with this one, and added 1.3-2.2 ms at p50 at concurrency 1 against
1.0-1.6 ms, medians of runs on a loaded 2-core machine), which misses the forwarding
goal of at most 1 ms added. The request is written exactly as given: the caller's
header fields in order, then Content-Length; nothing else is added.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import re
import socket
import ssl
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import httptools

IDLE_SECONDS = 15.0  # an idle kept-alive connection older than this is closed, not reused


class Stage(str, Enum):
    """How far a request got before it failed: what the caller calls the failure."""

    CONNECT = "connect"  # not sent: the server never saw the request
    TIMEOUT = "timeout"  # no whole answer within the time given
    BROKEN = "broken"  # the connection broke, or the answer was not HTTP


class NoAnswer(Exception):
    """No whole answer came back; `stage` says where it stopped, `reason` says why."""

    def __init__(self, stage: Stage, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.stale = stale  # a reused connection failed before any answer byte


@dataclass(frozen=True)
class Origin:
    """Where connections go: scheme, host and port of a URL."""

    https: bool
    host: str
    port: int

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(url: str) -> Origin:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        return Origin(https, parts.hostname or "", parts.port or (443 if https else 80))


@dataclass
class Answer:
    """A whole answer: its status, its header fields as they came, its body (bounded)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def request_bytes(
    method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> bytes:
    """The request as it goes on the wire; a field holding a line break is not sent."""
    lines = [b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), target)]
    for name, value in headers:
        if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
            raise NoAnswer(Stage.CONNECT, "a header field holds a line break: not sent")
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
    lines.append(body)
    return b"".join(lines)


class _Connection(asyncio.Protocol):
    """One keep-alive connection, carrying one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.requests = 0  # exchanges begun on it
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._head_only = False
        self._limit = 0
        self._whole = False
        self._reset()

    def _reset(self) -> None:
        self.received = 0  # bytes of this exchange's answer
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.keep_alive = False
        self._headers_done = False
        self._framed = False
        self._informational = False

    def exchange(
        self, request: bytes, head_only: bool, limit: int, whole: bool
    ) -> asyncio.Future[None]:
        """Send one request; the future resolves when the whole answer is in."""
        assert self.transport is not None
        self._reset()
        self.requests += 1
        self._head_only, self._limit, self._whole = head_only, limit, whole
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def answer(self) -> Answer:
        return Answer(self.status, self.headers, b"".join(self.chunks)[: self._limit])

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, reason: str) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            stale = self.requests > 1 and self.received == 0
            self._waiter.set_exception(NoAnswer(Stage.BROKEN, reason, stale=stale))
        if self.transport is not None:
            self.transport.abort()

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            detail = str(exc).split(":")[0].strip() or "unreadable"
            self._fail(f"the answer is not valid HTTP ({detail})")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed and not self._head_only:
            self._finish()  # no length and not chunked: the body ends with the connection
        elif self._headers_done:
            self._fail("the body of the answer was cut short")
        elif isinstance(exc, OSError) and exc.errno == errno.ECONNRESET:
            self._fail(_ERRNO_REASONS[errno.ECONNRESET])
        elif self.received == 0:
            self._fail("the server closed the connection without answering")
        else:
            self._fail("the server closed the connection before the answer was complete")

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if not 100 <= self.status <= 599:  # RFC 9110 15: no status, a garbled answer
            self._fail(f"answered with status {self.status}, which HTTP does not have")
            return
        if self.status < 200:  # 100 Continue and friends: the real answer follows
            self._informational = True
            self.headers = []
            return
        self._headers_done = True
        if self._head_only:  # an answer to HEAD has no body, whatever its headers say
            self.keep_alive = False
            self._finish()

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size - len(body) < self._limit:
            self.chunks.append(body)
        elif self._whole:
            self._fail(f"the answer is over {_size(self._limit)}")

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._finish()


class Pool:
    """Kept-alive connections per origin, at most `connections` in use at once."""

    def __init__(self, connections: int) -> None:
        self._limit = max(1, connections)
        self._slots = asyncio.Semaphore(self._limit)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None  # made once: each one loads the CA store

    async def exchange(
        self,
        origin: Origin,
        request: bytes,
        *,
        head_only: bool,
        limit: int,
        whole: bool,
        fresh: bool,
    ) -> Answer:
        """One request and its whole answer, on a kept connection unless `fresh`."""
        async with self._slots:
            loop = asyncio.get_running_loop()
            conn = None if fresh else self._take_idle(origin, loop.time())
            if conn is None:
                if origin.https and self._tls is None:
                    self._tls = ssl.create_default_context()
                conn = await _connect(origin, self._tls if origin.https else None)
            done = False
            try:
                await conn.exchange(request, head_only, limit, whole)
                done = True
            finally:
                if not done:  # failed, timed out or cancelled: never reused
                    conn.abort()
            answer = conn.answer()
            if conn.keep_alive and not conn.closed:
                conn.idle_since = loop.time()
                idle = self._idle.setdefault(origin, [])
                idle.append(conn)
                if len(idle) > self._limit:
                    idle.pop(0).abort()
            elif conn.transport is not None:
                conn.transport.close()
            return answer

    def _take_idle(self, origin: Origin, now: float) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.abort()
        return None

    def close(self) -> None:
        """Close the kept-alive connections."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()


async def _connect(origin: Origin, context: ssl.SSLContext | None) -> _Connection:
    loop = asyncio.get_running_loop()
    try:
        _, conn = await loop.create_connection(
            _Connection,
            origin.host,
            origin.port,
            ssl=context,
            server_hostname=origin.host if context else None,
        )
    except socket.gaierror:
        raise NoAnswer(Stage.CONNECT, f"cannot resolve {origin.host}") from None
    except ssl.SSLError as exc:
        raise NoAnswer(Stage.CONNECT, f"TLS failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise NoAnswer(Stage.CONNECT, os_reason(exc)) from None
    return conn


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EPIPE: "connection closed by the server",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def os_reason(exc: OSError) -> str:
    """A short reason a person can act on ("connection refused"), not errno soup.

    A connect to several addresses raises one OSError listing them all
    ("Multiple exceptions: [Errno 111] ..."): its first errno says what went wrong.
    """
    code = exc.errno
    if code is None:
        found = re.search(r"\[Errno (\d+)\]", str(exc))
        code = int(found.group(1)) if found else None
    if code:
        return _ERRNO_REASONS.get(code, os.strerror(code).lower())
    return str(exc) or type(exc).__name__
