"""`vwh listen --forward-to`: pass each delivery on to the developer's own handler.

vwh sits between the sender (Vendasta, or `vwh replay`) and the handler: the body
goes on byte for byte with the original method, query and headers (hop-by-hop ones
excepted), and the handler's answer comes back to be relayed to the sender.

Requests go out over a small HTTP/1.1 client of our own: asyncio protocols, the
httptools parser uvicorn already uses, and a pool of keep-alive connections. A bare
proxy built on it used about 190 us of CPU per request, against about 450 us with
aiohttp's client (which is several times faster than httpx's pool), so the extra hop
costs well under a millisecond (bench/bench_forward.py). There are no retries
(resending is the sender's job) and no redirects, proxies or .netrc: the handler
gets exactly one request per delivery.

Where a request goes (one rule, shown in `vwh listen --help`):
- `--forward-to` without a trailing "/" (http://127.0.0.1:8000/webhooks/vendasta):
  every request goes to exactly that path;
- with a trailing "/" or no path (http://127.0.0.1:8000, http://127.0.0.1:8000/api/):
  the incoming path is appended (/orders -> /api/orders), as a plain proxy does.
The incoming query string is always added (after the URL's own, if it has one).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import httptools

from vwh.delivery import check_url
from vwh.errors import UsageError
from vwh.sanitize import inert
from vwh.store import ForwardResult  # the old client, kept for the comparison only
from vwh.webhook import VENDASTA_TIMEOUT, is_secret_name, mask_query, mask_secret, token_bytes

KEPT_BODY_LIMIT = 64 * 1024  # how much of the handler's answer is kept in the store
ANSWER_LIMIT = 16 * 1024 * 1024  # a larger answer is cut off and counts as broken
IDLE_REUSE_SECONDS = 1.0  # reuse a kept-alive connection only this soon (servers close idle ones)
MAX_IDLE = 32  # kept-alive connections beyond this are closed, oldest first
PREVIEW_CHARS = 60

# Never passed on as they came (RFC 9110 7.6.1, plus what the new connection sets itself).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
# Not relayed from the handler's answer: the listener's server sets these itself.
_NOT_RELAYED = HOP_BY_HOP | {b"date"}


class Failure(str, Enum):
    """Why the handler gave no answer; the prefix of ForwardResult.error."""

    DOWN = "handler down"  # could not connect
    TIMEOUT = "handler too slow"  # no answer within --forward-timeout
    BROKEN = "handler broke the connection"  # closed, reset or garbled before answering

    @property
    def gateway_status(self) -> int:
        """What the sender gets instead: 504 for a timeout, else 502."""
        return 504 if self is Failure.TIMEOUT else 502

    @property
    def label(self) -> str:
        return {"handler down": "down", "handler too slow": "timeout"}.get(self.value, "broken")


def failure_of(result: ForwardResult) -> Failure | None:
    """The failure behind a kept ForwardResult (None when the handler answered)."""
    if result.error is None:
        return None
    return next((f for f in Failure if result.error.startswith(f.value)), Failure.BROKEN)


def handler_label(result: ForwardResult) -> str:
    """The handler's status, or 'down', 'timeout' or 'broken'."""
    failure = failure_of(result)
    if failure is not None:
        return failure.label
    return str(result.status)


def body_preview(body: bytes | None, limit: int = PREVIEW_CHARS) -> str:
    """The first part of an answer on one line, inert; runs of whitespace become a space."""
    if not body:
        return ""
    text = inert(" ".join(body[: limit * 4].decode("utf-8", "backslashreplace").split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ForwardSettings:
    """Where and how to forward; each field maps to a `vwh listen --forward-*` option."""

    url: str
    token: str | None = None  # replaces a good (or unchecked) token on the way
    timeout: float = VENDASTA_TIMEOUT
    forward_all: bool = False  # also forward what the listener rejected

    def __post_init__(self) -> None:
        check_url(self.url, "--forward-to")
        if self.timeout <= 0:
            raise UsageError("--forward-timeout must be more than 0 seconds")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def appends_path(self) -> bool:
        """True when the incoming path is appended (the URL ends with '/' or has no path)."""
        path = urlsplit(self.url).path
        return path == "" or path.endswith("/")


@dataclass
class HandlerReply:
    """The handler's answer as the sender gets it: hop-by-hop headers removed."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Failed(Exception):
    def __init__(self, failure: Failure, reason: str) -> None:
        super().__init__(f"{failure.value}: {reason}")
        self.failure = failure


class _Connection(asyncio.Protocol):
    """One keep-alive connection to the handler, carrying one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._head_only = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.keep_alive = False
        self._headers_done = False
        self._framed = False
        self._informational = False

    def exchange(self, request: bytes, head_only: bool) -> asyncio.Future[None]:
        """Send one request; the future resolves when the whole answer is in."""
        assert self.transport is not None
        self._reset()
        self._head_only = head_only
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, reason: str) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(_Failed(Failure.BROKEN, reason))
        if self.transport is not None:
            self.transport.abort()

    def _finish(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
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
            self._fail("connection reset before answering")
        else:
            self._fail("it closed the connection without answering")

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname in (b"content-length", b"transfer-encoding"):
            self._framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
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
        if self.size > ANSWER_LIMIT:
            self._fail(f"its answer is over {ANSWER_LIMIT // (1024 * 1024)} MiB")
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._finish()


class Forwarder:
    """Passes requests on to the handler over a pool of keep-alive connections.

    Create it anywhere; it binds to the running event loop on first use. Call
    `aclose()` from that loop when done.
    """

    def __init__(self, settings: ForwardSettings, token_header: str, via: bytes = b"vwh") -> None:
        self.settings = settings
        self._via = b"via: 1.1 %s\r\n" % via  # RFC 9110 7.6.3: how loops are caught
        parts = urlsplit(settings.url)
        self._host = settings.host
        self._port = settings.port
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        self._host_header = parts.netloc.rpartition("@")[2].encode("idna")
        base = parts.path or "/"
        self._appends = settings.appends_path
        self._base_path = (base.rstrip("/") if self._appends else base).encode("latin-1")
        self._base_query = parts.query.encode("latin-1")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._token_header = token_header.lower().encode("latin-1")
        self._configured = frozenset({token_header.lower()})
        self._token = token_bytes(settings.token) if settings.token is not None else None
        self._idle: list[_Connection] = []
        self._timeout = settings.timeout

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            if conn.transport is not None:
                conn.transport.close()

    def target(self, raw_path: bytes, query: bytes) -> bytes:
        """The request target (path and query) for an incoming path and query string."""
        path = self._base_path + raw_path if self._appends else self._base_path
        if self._appends and not path:
            path = b"/"
        if self._base_query and query:
            return path + b"?" + self._base_query + b"&" + query
        if self._base_query or query:
            return path + b"?" + (self._base_query or query)
        return path

    def outgoing_headers(
        self, headers: Sequence[tuple[bytes, bytes]], replace_token: bool
    ) -> list[bytes]:
        """The incoming headers as header lines, minus hop-by-hop ones; the token swapped."""
        drop = HOP_BY_HOP
        for name, value in headers:
            if name == b"connection":  # names listed in Connection are hop-by-hop too
                drop = drop | {t.strip().lower() for t in value.split(b",")}
        swap = replace_token and self._token is not None
        lines = [
            b"%s: %s\r\n" % (name, value)
            for name, value in headers
            if name not in drop and not (swap and name == self._token_header)
        ]
        if swap:
            lines.append(b"%s: %s\r\n" % (self._token_header, self._token))
        lines.append(self._via)
        return lines

    def new_result(self, scope: Mapping[str, Any]) -> ForwardResult:
        """The handler's side of one request, so far only where it goes (secrets masked)."""
        path, _, query = self._target(scope).decode("latin-1").partition("?")
        masked = f"{path}?{mask_query(query, self._configured)}" if query else path
        return ForwardResult(url=self._origin + masked)

    def _target(self, scope: Mapping[str, Any]) -> bytes:
        return self.target(scope.get("raw_path") or scope["path"].encode(), scope["query_string"])

    async def send(
        self,
        result: ForwardResult,
        scope: Mapping[str, Any],
        body: bytes,
        *,
        replace_token: bool = True,
    ) -> HandlerReply | None:
        """Send one request on; fill `result` in place; the handler's answer, or None.

        In place, so the record is complete even when the listener stops mid-way.
        """
        method = scope["method"].encode("latin-1")
        target = self._target(scope)
        request = b"".join(
            [
                b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method, target, self._host_header),
                *self.outgoing_headers(scope["headers"], replace_token),
                b"content-length: %d\r\n\r\n" % len(body),
                body,
            ]
        )
        started = time.perf_counter()
        try:
            status, headers, answer = await self._exchange(request, head_only=method == b"HEAD")
        except _Failed as exc:
            result.error = str(exc)
            return None
        except asyncio.CancelledError:
            result.error = f"{Failure.BROKEN.value}: the listener stopped before it answered"
            raise
        finally:
            result.latency_ms = (time.perf_counter() - started) * 1000
        result.status = status
        result.body = answer[:KEPT_BODY_LIMIT]
        kept: list[tuple[str, str]] = []
        relayed: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            lname = name.lower()
            text = value.decode("latin-1")
            secret = is_secret_name(text_name := name.decode("latin-1"), self._configured)
            kept.append((text_name, mask_secret(text) if secret else text))
            if lname not in _NOT_RELAYED:
                relayed.append((name, value))
        result.headers = kept
        return HandlerReply(status, relayed, answer)

    async def forward(
        self, scope: Mapping[str, Any], body: bytes, *, replace_token: bool = True
    ) -> tuple[ForwardResult, HandlerReply | None]:
        """`new_result` and `send` in one call."""
        result = self.new_result(scope)
        reply = await self.send(result, scope, body, replace_token=replace_token)
        return result, reply

    async def _exchange(
        self, request: bytes, head_only: bool
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request and its whole answer (status, headers, body), within the timeout."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + self._timeout
        conn = self._take_idle(now)
        if conn is None:
            conn = await self._connect(deadline)
        waiter = conn.exchange(request, head_only)
        timer = loop.call_at(deadline, _expire, waiter, self._timeout)
        done = False
        try:
            await waiter
            done = True
        finally:
            timer.cancel()
            if not done:
                conn.abort()
        answer = conn.status, conn.headers, b"".join(conn.chunks)
        if conn.keep_alive and not conn.closed:
            conn.idle_since = loop.time()
            self._idle.append(conn)
            if len(self._idle) > MAX_IDLE:
                self._idle.pop(0).abort()
        elif conn.transport is not None:
            conn.transport.close()
        return answer

    def _take_idle(self, now: float) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_REUSE_SECONDS:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                ),
                max(0.0, deadline - loop.time()),
            )
        except asyncio.TimeoutError:
            raise _Failed(Failure.DOWN, f"could not connect within {self._timeout:g}s") from None
        except socket.gaierror:
            raise _Failed(Failure.DOWN, f"cannot resolve {self._host}") from None
        except ssl.SSLError as exc:
            raise _Failed(Failure.DOWN, f"TLS failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise _Failed(Failure.DOWN, os_reason(exc)) from None
        return conn


def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(_Failed(Failure.TIMEOUT, f"no answer within {timeout:g}s"))


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def os_reason(exc: OSError) -> str:
    """A short reason a person can act on ("connection refused"), not errno soup.

    A connect to several addresses raises one OSError listing them all; its first
    errno-bearing cause, or the message itself, says what went wrong.
    """
    code = exc.errno
    if code is None:  # "Multiple exceptions: [Errno 111] Connect call failed (...), ..."
        found = re.search(r"\[Errno (\d+)\]", str(exc))
        code = int(found.group(1)) if found else None
    if code:
        return _ERRNO_REASONS.get(code, os.strerror(code).lower())
    return str(exc) or type(exc).__name__


def probe(settings: ForwardSettings, timeout: float = 0.5) -> str | None:
    """Can the handler be reached right now? None when it can, else why not.

    For the banner only: a listener started before its handler keeps working, and
    each delivery says again whether the handler was up.
    """
    try:
        socket.create_connection((settings.host, settings.port), timeout=timeout).close()
    except socket.gaierror:
        return f"cannot resolve {settings.host}"
    except TimeoutError:
        return f"no connection within {timeout:g}s"
    except OSError as exc:
        return os_reason(exc)
    return None
