"""Servers that answer by script, for the delivery and replay tests.

`Scripted` is an ASGI app (run it with tests.helpers.ThreadedServer) that answers each
request with the next (status, delay) of its script and records what it received.
`CutShort` is a raw socket server that reads a request, writes part of an answer
and closes the connection: what no ASGI server can be made to do.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.helpers import RawSocketServer, read_request, whole_message


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Answer = tuple[int, float]  # status, and seconds to wait before answering


class Scripted:
    """Answers request n with script[n] (the last entry repeats), or as `by_body` says."""

    def __init__(
        self,
        *script: int | Answer,
        by_body: Callable[[bytes], Answer] | None = None,
        location: str = "/elsewhere",
    ) -> None:
        self.script = [s if isinstance(s, tuple) else (s, 0.0) for s in script] or [(200, 0.0)]
        self.by_body = by_body
        self.location = location
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self.received)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            index = len(self.received)
            self.received.append(
                Received(scope["method"], scope["path"], headers, body, time.monotonic())
            )
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.by_body is not None:
            status, delay = self.by_body(body)
        else:
            status, delay = self.script[min(index, len(self.script) - 1)]
        try:
            if delay and await _disconnected_within(receive, delay):
                return  # the client gave up waiting: nothing to answer
            extra = [(b"location", self.location.encode())] if 300 <= status < 400 else []
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json"), *extra],
                }
            )
            await send({"type": "http.response.body", "body": b'{"n": %d}' % (index + 1)})
        finally:
            with self._lock:
                self.in_flight -= 1


async def _disconnected_within(receive: Any, delay: float) -> bool:
    """Wait `delay` seconds, or less if the client hangs up; True when it hung up."""
    try:
        message = await asyncio.wait_for(receive(), delay)
    except asyncio.TimeoutError:
        return False
    return bool(message["type"] == "http.disconnect")


class CutShort(RawSocketServer):
    """Reads each request, writes `partial` (an incomplete answer), then closes."""

    conn_timeout = 2.0

    def __init__(self, partial: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{") -> None:
        super().__init__()
        self.partial = partial
        self.count = 0

    def handle(self, conn: socket.socket) -> None:
        if whole_message(read_request(conn), without_length=True):
            self.count += 1
            conn.sendall(self.partial)


class KeepAliveCloser:
    """A raw HTTP/1.1 server that closes kept-alive connections the way real ones do.

    `mode` says when:
    - "after-answer": one request per connection. The close reaches the client only
      when it sends the next request on that connection, as a FIN still on its way
      would: the request is never read, so the handler never sees it.
    - "idle": any number of requests per connection, but one idle for longer than
      `idle` seconds is closed as the next request arrives (the server's idle timer
      and the request crossed).
    - "partial-on-reuse": the second request on a connection is read (the handler sees
      it) and answered with the start of an answer, then the connection is closed.

    Answers 200 with a body; `bodies` holds every request the handler saw.
    """

    def __init__(self, mode: str, idle: float = 0.05) -> None:
        self.mode = mode
        self.idle = idle
        self.bodies: list[bytes] = []
        self.closed_unread = 0  # requests that found their connection closed
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def count(self) -> int:
        return len(self.bodies)

    def __enter__(self) -> KeepAliveCloser:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.call_soon(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        last = time.monotonic()
        try:
            while True:
                try:
                    first = await asyncio.wait_for(reader.read(1), 30)
                except asyncio.TimeoutError:
                    return
                if not first:
                    return
                idle = time.monotonic() - last > self.idle
                if served and (self.mode == "after-answer" or (self.mode == "idle" and idle)):
                    self.closed_unread += 1  # closed before it came: never read
                    return
                head = first + await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.bodies.append(await reader.readexactly(length))
                if self.mode == "partial-on-reuse" and served:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
                    await writer.drain()
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                served += 1
                last = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()
