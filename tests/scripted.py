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


class CutShort:
    """Reads each request, writes `partial` (an incomplete answer), then closes."""

    def __init__(self, partial: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{") -> None:
        self.partial = partial
        self.count = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> CutShort:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                if _read_request(conn):
                    self.count += 1
                    conn.sendall(self.partial)


def _read_request(conn: socket.socket) -> bool:
    """Read one request (headers, then Content-Length bytes); False if the peer left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True
