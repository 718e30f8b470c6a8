"""The listener's HTTP protocol: uvicorn's httptools one, with limits a hostile client cannot pass.

uvicorn reads a request head of any size and waits forever for a client that never
finishes one, so a 50 MB header is buffered and idle connections pile up until the
process runs out of file descriptors. This subclass adds, per connection:

- a size limit on the request line and headers together, and a count limit on header
  fields: over either, the answer is 431 and the connection closes; the bytes counted
  are those read while the head is incomplete, so at most one read (256 KiB) past the
  limit is ever buffered;
- a time limit on the head (from the connection's start, or from the first byte of a
  later request) and on each pause in the body; a head cut off by it is answered 408;
- a hook that keeps every request the parser refuses (malformed, too large, too slow)
  through the app's own store writer, before it is answered and the connection closes;
  the refusal waits for the answers of the requests pipelined before it, so each
  client gets its answers in order and none is lost to the close.

And one economy: an answer's head is held until its body comes, so each answer
leaves in one write (one system call, one TCP segment), not two.

The hot path pays a few attribute writes per request: byte counting and the timer
run only for heads that do not arrive in one read, and a single timer per
connection re-arms itself instead of one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
CLIENT_TIMEOUT = 10.0
KEPT_PREFIX = 4096  # bytes of a refused request kept as its body

# (raw prefix, bytes received, status, error) -> kept; the app's `keep_refused`.
KeepRefused = Callable[[bytes, int, int, str], Coroutine[Any, Any, None]]

_HEAD, _BODY, _APP = 0, 1, 2  # reading a head; reading a body; the app has the request


@dataclass(frozen=True)
class Limits:
    """What one connection may send; see the README's listen section."""

    max_head: int = MAX_HEAD_BYTES
    max_headers: int = MAX_HEADERS
    timeout: float = CLIENT_TIMEOUT


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the parser re-raises it as context."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class OneWriteTransport:
    """A connection's transport that sends a response head together with its body.

    uvicorn writes the head and the body of every answer separately; the receiver
    always sends them back to back, so the head waits for the body and both go in
    one write. A head is never held past the end of its response (the protocol
    flushes then, for a HEAD request that has no body) or past a close; informational
    heads (100 Continue) are never held.
    """

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif data.startswith(b"HTTP/1.1 ") and data[9:10] != b"1":
            self._head = data
        else:
            self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:  # the rest as the transport has it
        return getattr(self._transport, name)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head limits, timeouts and refusals kept."""

    limits = Limits()
    keep: KeepRefused | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _HEAD
        self._since = 0.0  # start of the head, or the last read of the body
        self._head_size = 0  # bytes of the current head seen at the end of earlier reads
        self._head_first: bytes | None = None  # the start of a head that took several reads
        self._fed = 0  # size of the read being parsed
        self._completed = 0  # requests fully read on this connection
        self._body_seen = False  # the read being parsed carried body bytes
        self._stray = 0  # body-phase bytes that carried no body (framing, trailers)
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False  # a refusal is under way: nothing more is read
        self._answered: asyncio.Future[None] | None = None  # an earlier answer went out

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(self._wrap(transport))  # type: ignore[arg-type]
        self._since = self.loop.time()
        self._timer = self.loop.call_later(self.limits.timeout, self._check_time)

    def _wrap(self, transport: asyncio.Transport) -> Any:
        """uvicorn writes an answer's head and body apart: hold the head for the body."""
        return OneWriteTransport(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        self._since = self.loop.time()  # idle from now until the next request
        super().on_response_complete()
        self._wake()

    def _wake(self) -> None:
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # an earlier request's answer resumed reading: the rest is moot
            return
        completed = self._completed
        at_start = self._phase == _APP or (self._phase == _HEAD and self._head_first is None)
        self._fed = len(data)
        self._body_seen = False
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # As uvicorn does; with ws="none" the request goes to the app as any other.
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if self._completed > completed and self._head_first is None:
                data = _after_requests(data, self._completed - completed, at_start)
            self._parser_refused(exc, data)
            return
        if self._phase == _HEAD:
            if self._completed == completed:
                self._head_size += len(data)  # every byte of this read belongs to the head
            else:  # an earlier request ended in this read: count what was parsed
                self._head_size = self._parsed_head_size()
            first = self._head_first
            if first is None:
                if self._completed > completed:
                    data = _after_requests(data, self._completed - completed, at_start)
                self._head_first = data[:KEPT_PREFIX]
            elif len(first) < KEPT_PREFIX:
                self._head_first = first + data[: KEPT_PREFIX - len(first)]
            if self._head_size > self.limits.max_head:
                self._refuse(431, f"request head over {self.limits.max_head} bytes", data)
        elif self._phase == _BODY:
            self._since = self.loop.time()
            if self._body_seen:
                self._stray = 0
            else:
                self._stray += len(data)
                if self._stray > self.limits.max_head:
                    self.transport.close()  # trailers without end: the app sees it cut short

    # Parser callbacks (each does uvicorn's work too).

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begins()

    def _head_begins(self) -> None:
        self._head_size = 0
        self._head_first = None
        if self._phase != _HEAD:
            self._phase = _HEAD
            self._since = self.loop.time()

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's own lines, inlined: this runs once per header field.
        headers = self.headers
        if len(headers) >= self.limits.max_headers:
            raise _Refused(431, f"more than {self.limits.max_headers} header fields")
        name = name.lower()
        value = value.rstrip(b" \t")  # the parser keeps trailing whitespace (RFC 9110 5.5)
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        # The cheap bound first: exact sizes only for heads that came in big reads.
        limit = self.limits.max_head
        if self._head_size + self._fed > limit and self._parsed_head_size() > limit:
            raise _Refused(431, f"request head over {limit} bytes")
        self._request_head()
        self._phase = _BODY
        self._stray = 0

    def _request_head(self) -> None:
        """A request's head is complete: uvicorn's scope, cycle and app task."""
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_seen = True
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = _APP
        self._completed += 1
        super().on_message_complete()

    # Refusals and time limits.

    def _parsed_head_size(self) -> int:
        return len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)

    def _parser_refused(self, exc: httptools.HttpParserError, data: bytes) -> None:
        cause = exc.__context__
        if self._phase == _BODY:
            self._body_broken()
        elif isinstance(cause, _Refused):
            self._refuse(cause.status, cause.error, data)
        else:
            reason = str(exc)
            if isinstance(cause, UnicodeDecodeError):
                reason = "bytes that are not ASCII in the request target"
            elif cause is not None and not reason.startswith("`"):
                reason = f"{reason}: {cause}"
            self._refuse(400, f"malformed HTTP: {reason}", data)

    def _body_broken(self) -> None:
        """A body the parser cannot go on with (broken chunked encoding): the app already
        has its request and keeps it as it ends, cut short."""
        self.transport.close()

    def _refuse(self, status: int, error: str, data: bytes) -> None:
        """Stop reading, have the app keep what arrived (secrets masked there), then
        answer and close: refused requests too are on disk before their answer."""
        raw = self._head_first if self._head_first is not None else data[:KEPT_PREFIX]
        received = max(self._head_size, len(data))
        self._phase = _APP
        self._refused = True
        self.transport.pause_reading()
        task: asyncio.Task[None] = self.loop.create_task(
            self._keep_then_answer(raw, received, status, error)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _keep_then_answer(self, raw: bytes, received: int, status: int, error: str) -> None:
        keep = type(self).keep
        try:
            if keep is not None:
                await keep(raw, received, status, error)
            await self._earlier_answers()
        finally:
            if not self.transport.is_closing():
                body = error.encode("utf-8", "replace")
                phrase = http.HTTPStatus(status).phrase.encode()
                head = b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n" % (
                    status,
                    phrase,
                )
                head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                self.transport.write(head + body)
                self.transport.close()

    async def _earlier_answers(self) -> None:
        """Wait until the requests before this one on the connection (pipelined, so
        already read) have their answers: answers go out in request order (RFC 9112
        9.3.2), and a refusal written first would stand in for theirs."""
        while self._answer_pending() and not self.transport.is_closing():
            self._answered = self.loop.create_future()
            await self._answered

    def _answer_pending(self) -> bool:
        """A request read before now still waits for its answer."""
        return self.cycle is not None and not self.cycle.response_complete

    def _check_time(self) -> None:
        """The connection's one timer: close a head or a body that stopped arriving."""
        self._timer = None
        if self.transport.is_closing():
            return
        now, timeout = self.loop.time(), self.limits.timeout
        phase = self._phase
        if phase == _BODY:
            waiting = self.flow.read_paused  # we stopped reading, not the client
        else:  # an answer is owed: the client waits for us; else it is idle, or sends a head
            waiting = self._refused or self._answer_pending()
        if waiting:
            self._since = now
        elif now - self._since >= timeout:
            if phase == _BODY:
                self.transport.close()  # the app sees the request cut short and keeps it
            elif phase == _HEAD and self._head_first is not None:
                self._refuse(408, f"request head not complete after {timeout:g}s", b"")
            else:
                self.transport.close()  # idle, or connected and sent nothing: nothing to keep
            return
        self._timer = self.loop.call_later(self._since + timeout - now, self._check_time)


class _Ends:
    """Counts the requests a throwaway parser sees end."""

    def __init__(self) -> None:
        self.ended = 0

    def on_message_complete(self) -> None:
        self.ended += 1


def _ended(data: bytes) -> int:
    counter = _Ends()
    parser = httptools.HttpRequestParser(counter)
    with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade):
        parser.feed_data(data)  # what ended before the error counts
    return counter.ended


def _after_requests(data: bytes, ended: int, at_start: bool) -> bytes:
    """`data` from where the request being read begins, after the `ended` requests that
    ended in it (pipelined), so a refusal keeps its own bytes, not theirs.

    httptools reports no positions: a throwaway parser finds the shortest prefix in
    which that many requests end (a bisection, on this rare path only). That takes a
    read that began at a request's start; from one that began mid-request, the bytes
    are kept from the start of the read, as before.
    """
    if not at_start or _ended(data) < ended:
        return data
    low, high = 0, len(data)
    while low < high:
        middle = (low + high) // 2
        if _ended(data[:middle]) >= ended:
            high = middle
        else:
            low = middle + 1
    return data[low:]


def protocol_class(limits: Limits, keep: KeepRefused | None) -> type[GuardedProtocol]:
    """The protocol class for one server (uvicorn instantiates it per connection)."""
    return type(
        "VwhHttpProtocol",
        (GuardedProtocol,),
        {"limits": limits, "keep": staticmethod(keep) if keep is not None else None},
    )


@dataclass
class RefusedHead:
    """What could be read of a refused request, secrets masked."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    raw: bytes  # the bytes as received, with secret header values masked
    token: bytes | None  # the token header's value as it came
    fields: list[tuple[bytes, bytes]]  # (lower-case name, value) as they came, to find a token


def describe_refused(
    raw: bytes, mask_value: Callable[[str, str], str], token_header: str
) -> RefusedHead:
    """Split the start of a refused request into request line and header fields, as far
    as they go, and mask the secrets in both the fields and the raw bytes.

    `mask_value(name, value)` is the value as it may be kept: the receiver's own rule,
    so a refused request is masked as an accepted one would be."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    end = min(ends) if ends else len(raw)
    lines = raw[:end].split(b"\n")
    first = lines[0].rstrip(b"\r").decode("latin-1").split(" ")
    method, target = (first[0], first[1]) if len(first) >= 2 else ("", "")
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    fields: list[tuple[bytes, bytes]] = []
    token = None
    for i in range(1, len(lines)):
        line = lines[i]
        cr = b"\r" if line.endswith(b"\r") else b""
        name_b, colon, value_b = line.rstrip(b"\r").partition(b":")
        name = name_b.strip().lower().decode("latin-1")
        value = value_b.strip().decode("latin-1")
        if colon:
            fields.append((name_b.strip().lower(), value_b.strip()))
            if token_header and name == token_header and token is None:
                token = value_b.strip()
            kept = mask_value(name, value)
            if kept != value:
                value = kept
                lines[i] = name_b + b": " + value.encode() + cr
        headers.append((name, value) if colon else (name_b.decode("latin-1"), ""))
    masked = b"\n".join(lines) + raw[end:]
    return RefusedHead(method, path, query, headers, masked, token, fields)
