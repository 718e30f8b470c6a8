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
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from vwh.asgi_answer import Headers, content_length
from vwh.http_guard import _APP, GuardedProtocol, KeepRefused, Limits

if TYPE_CHECKING:
    from vwh.receiver import Receiver

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
_BREAKS_FIELD = re.compile(rb"[\x00\r\n]")  # what would end or split a header line

# method, path, raw_path, query_string, headers (lower-case names); keep-alive; the body
# (None when over --max-body), its size, whether it all came, and whether the
# listener stopped before it did.
_Whole = tuple[dict[str, Any], bool, bytes | None, int, bool, bool]


class ExchangeProtocol(GuardedProtocol):
    """GuardedProtocol that hands whole requests to the receiver and writes its answers."""

    receiver: Receiver

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request: dict[str, Any] | None = None  # the request being read
        self._keep_alive = True  # of the request being read
        self._chunks: list[bytes] = []
        self._size = 0  # body bytes read, kept or not
        self._declared = -1  # its Content-Length
        self._over = False  # the body is larger than --max-body: counted, not kept
        self._early = False  # answered on its head alone (413)
        self._head_owed = False  # a 100 Continue or an early 413, once earlier answers are out
        self._queue: deque[_Whole] = deque()  # read, waiting for an earlier answer
        self._answering = False  # a request was handed over and waits for its answer
        self._answer_keep_alive = True
        self._answer_body = True  # not for a HEAD, a 204 or a 304
        self._closing = False  # shutdown: close after the answers owed
        self._finished = False  # an answer said `connection: close`: nothing more is read
        self._body_awaited: asyncio.Future[None] | None = None  # see shutdown

    def _wrap(self, transport: asyncio.Transport) -> Any:
        return transport  # every answer is written whole already

    # Parser callbacks (uvicorn's ASGI ones are not called).

    def data_received(self, data: bytes) -> None:
        if not self._finished:  # after a closing answer nothing more is read
            super().data_received(data)

    def _parser_refused(self, exc: httptools.HttpParserError, data: bytes) -> None:
        if not self._finished:  # the rest of a read after a closing answer is not refused
            super()._parser_refused(exc, data)

    def on_message_begin(self) -> None:
        self._head_begins()
        self.url = b""
        self.headers = []
        self.expect_100_continue = False

    def _request_head(self) -> None:
        if self._finished:  # the rest of a read after a closing answer: not a request
            self._request = None
            return
        parser = self.parser
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path or b"/"  # the absolute form may have none
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
        self._declared = content_length(self.headers)
        self._over, self._early = self._declared > self.receiver.max_body, False
        self._head_owed = self._over or self.expect_100_continue
        if self._answer_pending():
            self.flow.pause_reading()  # its body waits until the answers owed are out
        else:
            self._answer_head()

    def _answer_head(self) -> None:
        """What a head asks for before its body: a 413 at once when its Content-Length is
        over --max-body (the body is then read and dropped, unless the sender waits for a
        100 Continue: then it never comes and the connection closes), else the 100."""
        request, self._head_owed = self._request, False
        if request is None or self._finished:
            return
        if self._over:
            self._early = True
            keep_alive = self._keep_alive and not self.expect_100_continue
            self._hand(request, keep_alive, None, self._declared, True)
        elif self.expect_100_continue and not self.transport.is_closing():
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_seen = True
        self._size += len(body)
        if self._over or self._request is None:
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
        if self._early:  # answered already; its body, read and dropped, is over
            self._go_on()
        elif request is not None and not self._finished:  # after a close: not read
            self._arrived(request, True)

    def _body_broken(self) -> None:
        # Kept cut short now; the connection closes once the answers owed before it are out.
        request, self._request = self._request, None
        self._finished = True
        self.flow.pause_reading()
        if request is not None and not self._early:
            self._arrived(request, False)
        self._go_on()

    # Handing over and answering.

    def _arrived(self, request: dict[str, Any], complete: bool, stopped: bool = False) -> None:
        chunks = self._chunks
        body = None if self._over else chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        whole = (request, self._keep_alive, body, self._size, complete, stopped)
        if self._answer_pending():
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
        self._answer_keep_alive = keep_alive
        self._answer_body = request["method"] != "HEAD"
        later = self.receiver.take(
            request, body, size, complete, self._reply, stopped=stopped, stopping=self._closing
        )
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
            # Stopping: the requests already read get their answers, the last one says close.
            last = not self._queue and (self._request is None or self._early)
            keep_alive = self._answer_keep_alive and not (self._closing and last)
            transport.write(self._answer(status, payload, headers, keep_alive))
            if not keep_alive:  # no later request is read (RFC 9112 9.6)
                self._queue.clear()
                self._close()
        self._wake()  # a refusal waiting for this answer
        if self.flow.write_paused:  # the sender does not read its answers: wait until it does
            self.flow.pause_reading()
        else:
            self._go_on()

    def _answer(self, status: int, payload: bytes, headers: Headers | None, keep: bool) -> bytes:
        head = [STATUS_LINE.get(status) or STATUS_LINE[500]]
        for name, value in self.server_state.default_headers:  # the date
            head += (name, b": ", value, b"\r\n")
        for name, value in _JSON_HEADERS if headers is None else headers:
            if not (_BREAKS_FIELD.search(name) or _BREAKS_FIELD.search(value)):
                head += (name, b": ", value, b"\r\n")
        if status not in (204, 304):  # those have no content (RFC 9110 8.6, 15.3.5)
            head.append(b"content-length: %d\r\n" % len(payload))
        if not keep:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        if self._answer_body and status not in (204, 304):
            head.append(payload)
        return b"".join(head)

    def _go_on(self) -> None:
        """After an answer: the next request read, else the head being read, else reading."""
        if self._answering:
            return
        if self._queue:
            self.loop.call_soon(self._next)  # not from here: a deep pipeline, a deep stack
            return
        self._since = self.loop.time()  # idle from now until the next request
        if self._head_owed:
            self._answer_head()
        done = not self._answer_pending() and self._request is None
        if done and (self._closing or self._finished):
            self._close()
        elif not self._refused and not self._finished:
            self.flow.resume_reading()

    def _close(self) -> None:
        """Close, and read nothing more: not even the rest of the read being parsed."""
        self._finished = True
        self.transport.close()

    def _next(self) -> None:
        if self._queue and not self._answering:
            self._hand(*self._queue.popleft())

    def _answer_pending(self) -> bool:
        return self._answering or bool(self._queue) or self.flow.write_paused

    def owes_answers(self) -> bool:
        """Requests read and not yet answered: the server waits for them as it stops."""
        return self._answering or bool(self._queue)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._wake()  # a refusal waiting for the answers before it to leave
        self._go_on()

    # The connection's end.

    def connection_lost(self, exc: Exception | None) -> None:
        request, self._request = self._request, None
        self._body_came()
        if request is not None and not self._early and not self._finished:
            self._arrived(request, False)  # cut short mid-body: kept as such, answered to nobody
        self._finished = True
        super().connection_lost(exc)
        self._go_on()  # what the sender sent before it left is kept all the same

    def shutdown(self) -> None:
        """The server stops: close now if nothing is owed, else after the answers owed to
        the requests already read (one that would still wait for --delay or a handler is
        kept and answered 503 at once: see Receiver.take).

        A body still arriving gets the grace period uvicorn gives tasks: a task waits
        for it, and when uvicorn cancels that task the request is kept as stopped (503).
        """
        self._closing = True
        if self._request is not None and not self._early and not self._finished:
            task = self.loop.create_task(self._body_or_stop())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif not self._answer_pending():
            self._close()

    async def _body_or_stop(self) -> None:
        self._body_awaited = self.loop.create_future()
        try:
            await self._body_awaited
        except asyncio.CancelledError:
            request, self._request = self._request, None
            if request is not None and not self._early:  # an early 413 is answered already
                self._arrived(request, False, stopped=True)
            raise

    def _body_came(self) -> None:
        if self._body_awaited is not None and not self._body_awaited.done():
            self._body_awaited.set_result(None)


def exchange_class(limits: Limits, keep: KeepRefused | None, receiver: Receiver) -> type:
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
