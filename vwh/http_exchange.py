"""The receiving port's protocol: whole requests go to the receiver, without ASGI.

uvicorn runs an ASGI app through a request-response cycle per request: a scope
dict, a cycle object, an event, a task, message dicts for the body and for each
half of the answer, and a keep-alive timer armed after every answer. For the
listener that machinery cost more CPU than everything vwh itself does with a
request (bench/bench_listen.py). This protocol reads the body itself (bounded by
the receiver's --max-body) and hands the whole request to `Receiver.take`, which
answers through `reply` once the request is on disk, usually from the store
writer's commit callback at the end of the loop turn: no task at all. Only a
request whose answer waits (forwarding, --delay) gets one, in uvicorn's task set,
so a graceful shutdown waits for it and then cancels it as before.

Everything else is vwh.http_guard's: head limits, time limits, refusals kept.
Answers go out in request order (RFC 9112 9.3.2): a request read while another
waits for its answer is queued, and reading pauses until the queue is empty.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections import deque
from typing import Any, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from vwh.asgi_answer import Headers, content_length
from vwh.http_guard import _APP, GuardedProtocol, KeepRefused, Limits

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
_BREAKS_FIELD = re.compile(rb"[\x00\r\n]")  # what would end or split a header line

# method, path, raw_path, query_string, headers (lower-case names); keep-alive; the body
# (None when over --max-body), its size, whether it all came, and whether the
# listener stopped before it did.
_Whole = tuple[dict[str, Any], bool, bytes | None, int, bool, bool]


class Taker(Protocol):
    """What the protocol needs of vwh.receiver.Receiver."""

    @property
    def max_body(self) -> int: ...

    def take(
        self,
        scope: dict[str, Any],
        body: bytes | None,
        size: int,
        complete: bool,
        reply: Any,
        *,
        stopped: bool = False,
    ) -> Any: ...


class ExchangeProtocol(GuardedProtocol):
    """GuardedProtocol that hands whole requests to the receiver and writes its answers."""

    receiver: Taker

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request: dict[str, Any] | None = None  # the request being read
        self._keep_alive = True  # of the request being read
        self._chunks: list[bytes] = []
        self._size = 0  # body bytes read, kept or not
        self._over = False  # the body is larger than --max-body: counted, not kept
        self._early = False  # answered before its body came (413): close after
        self._queue: deque[_Whole] = deque()  # read, waiting for an earlier answer
        self._answering = False  # a request was handed over and waits for its answer
        self._answer_keep_alive = True
        self._head_only = False  # the request being answered is a HEAD
        self._closing = False  # shutdown: close after the answers owed
        self._body_awaited: asyncio.Future[None] | None = None  # see shutdown

    def _wrap(self, transport: asyncio.Transport) -> Any:
        return transport  # every answer is written whole already

    # Parser callbacks (uvicorn's ASGI ones are not called).

    def on_message_begin(self) -> None:
        self._head_begins()
        self.url = b""
        self.headers = []
        self.expect_100_continue = False

    def _request_head(self) -> None:
        parser = self.parser
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        path = raw_path.decode("ascii")  # not ASCII: refused (400) by the guard, and kept
        self._request = {
            "method": parser.get_method().decode("ascii"),
            "path": urllib.parse.unquote(path) if "%" in path else path,
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "headers": self.headers,
        }
        self._keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        self._chunks = []
        self._size = 0
        declared = content_length(self.headers)
        self._over, self._early = declared > self.receiver.max_body, False
        busy = self._answer_pending()
        if self._over and not busy:
            # Refused on its Content-Length alone: answered now, the body never read.
            self._early = True
            self._hand(self._request, False, None, declared, True)
        elif self.expect_100_continue and not busy and not self.transport.is_closing():
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_seen = True
        self._size += len(body)
        if self._over:
            return
        if self._size > self.receiver.max_body:
            self._over, self._chunks = True, []
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._phase = _APP
        self._completed += 1
        request, self._request = self._request, None
        self._body_came()
        if request is None or self._early:
            return  # answered already
        self._arrived(request, True)

    # Handing over and answering.

    def _arrived(self, request: dict[str, Any], complete: bool, stopped: bool = False) -> None:
        chunks = self._chunks
        body = None if self._over else chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        whole = (request, self._keep_alive, body, self._size, complete, stopped)
        if self._answering or self._queue:
            self._queue.append(whole)
            self.flow.pause_reading()  # until the answers owed have gone out
        else:
            self._hand(*whole)

    def _hand(
        self,
        request: dict[str, Any],
        keep_alive: bool,
        body: bytes | None,
        size: int,
        complete: bool,
        stopped: bool = False,
    ) -> None:
        self._answering = True
        self._answer_keep_alive = keep_alive and not self._early
        self._head_only = request["method"] == "HEAD"
        later = self.receiver.take(request, body, size, complete, self._reply, stopped=stopped)
        if later is not None:  # the answer waits (forwarding, --delay): a task of its own
            task = self.loop.create_task(later)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _reply(self, status: int, payload: bytes, headers: Headers | None) -> None:
        """The receiver's answer to the request handed over last: write it whole, in one
        write, then go on with the next request read."""
        if not self._answering:
            return  # answered already
        self._answering = False
        transport = self.transport
        if status and not transport.is_closing():
            keep_alive = self._answer_keep_alive and not self._closing
            head = [STATUS_LINE.get(status) or STATUS_LINE[500]]
            for name, value in _JSON_HEADERS if headers is None else headers:
                if not (_BREAKS_FIELD.search(name) or _BREAKS_FIELD.search(value)):
                    head += (name, b": ", value, b"\r\n")
            head.append(b"content-length: %d\r\n" % len(payload))
            if not keep_alive:
                head.append(b"connection: close\r\n")
            head.append(b"\r\n")
            if not self._head_only:
                head.append(payload)
            transport.write(b"".join(head))
            if not keep_alive:
                transport.close()
        self._wake()  # a refusal waiting for this answer
        if self._queue:
            self.loop.call_soon(self._next)  # not from here: a deep pipeline, a deep stack
        else:
            self._since = self.loop.time()  # idle from now until the next request
            if not self._refused:
                self.flow.resume_reading()
            if self._closing and not transport.is_closing():
                transport.close()

    def _next(self) -> None:
        if self._queue and not self._answering:
            self._hand(*self._queue.popleft())

    def _answer_pending(self) -> bool:
        return self._answering or bool(self._queue)

    # The connection's end.

    def connection_lost(self, exc: Exception | None) -> None:
        request, self._request = self._request, None
        self._body_came()
        if request is not None and not self._early:
            self._arrived(request, False)  # cut short mid-body: kept as such, answered to nobody
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server stops: close now if nothing is owed, else after the answers owed.

        A body still arriving gets the grace period uvicorn gives tasks: a task waits
        for it, and when uvicorn cancels that task the request is kept as stopped (503).
        """
        self._closing = True
        if self._request is not None and not self._early:
            task = self.loop.create_task(self._body_or_stop())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif not self._answer_pending():
            self.transport.close()

    async def _body_or_stop(self) -> None:
        self._body_awaited = self.loop.create_future()
        try:
            await self._body_awaited
        except asyncio.CancelledError:
            request, self._request = self._request, None
            if request is not None:
                self._arrived(request, False, stopped=True)
            raise

    def _body_came(self) -> None:
        if self._body_awaited is not None and not self._body_awaited.done():
            self._body_awaited.set_result(None)


def exchange_class(limits: Limits, keep: KeepRefused | None, receiver: Taker) -> type:
    """The protocol class for the listener's server (uvicorn makes one per connection)."""
    return type(
        "VwhExchangeProtocol",
        (ExchangeProtocol,),
        {
            "limits": limits,
            "keep": staticmethod(keep) if keep is not None else None,
            "receiver": receiver,
        },
    )
