"""The receiver's side of the wire: read a bounded body, write one whole answer.

Kept apart from the rules of what to answer (vwh.receiver), so those read as rules.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import Receive, Send

RECEIVED: dict[str, object] = {"received": True}  # the usual answer, built without json
_JSON = b"application/json"

Headers = list[tuple[bytes, bytes]]


async def send_answer(send: Send, status: int, payload: bytes, headers: Headers | None) -> None:
    """Send one whole answer; None headers: our own JSON."""
    headers = [(b"content-type", _JSON)] if headers is None else headers
    headers.append((b"content-length", b"%d" % len(payload)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive, declared: int, limit: int) -> tuple[bytes | None, int, bool]:
    """The body (None when larger than `limit`), the size seen, and whether it all came.

    A sender that closes before the end (a Content-Length it never fulfils) leaves
    it incomplete: such a body is kept for what it is, never taken as a delivery.
    """
    if declared > limit:
        return None, declared, True
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), size, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, size, True
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), size, True


MAX_LENGTH = 2**63 - 1  # the largest size the store can keep (an SQLite INTEGER)


def length_of(value: bytes) -> int:
    """A Content-Length's value as a size the store can keep; -1 when it is no number."""
    return min(int(value), MAX_LENGTH) if value.isdigit() else -1


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The Content-Length a request declares; -1 when it gives none that is usable."""
    for name, value in headers:
        if name == b"content-length":
            return length_of(value)
    return -1


def json_answer(answer: dict[str, object], request_id: int | None) -> bytes:
    if request_id is not None and answer is RECEIVED:
        return b'{"received":true,"id":%d}' % request_id  # the hot path, without json.dumps
    return json.dumps({**answer, "id": request_id}, separators=(",", ":")).encode()


Reply = Callable[[int, bytes, Headers | None], None]  # status, payload, headers
Answered = tuple[int, bytes, Headers | None]


def awaited_reply() -> tuple[asyncio.Future[Answered], Reply]:
    """A future for one answer, and the reply that sets it: the first call counts."""
    answered: asyncio.Future[Answered] = asyncio.get_running_loop().create_future()

    def reply(status: int, payload: bytes, headers: Headers | None) -> None:
        if not answered.done():
            answered.set_result((status, payload, headers))

    return answered, reply


Take = Callable[[Any, bytes | None, int, bool, Reply], Any]  # vwh.receiver.Receiver.take


async def serve_asgi(
    take: Take, max_body: int, stopped: str, scope: Any, receive: Receive, send: Send
) -> None:
    """One request over ASGI for `take` (vwh.receiver): read the body, await the answer.

    Cancelled (the server stops) before the answer, it answers 503 with `stopped`.
    """
    body, size, complete = await read_body(receive, content_length(scope["headers"]), max_body)
    answered, reply = awaited_reply()
    try:
        later = take(scope, body, size, complete, reply)
        if later is not None:
            await later
        await send_answer(send, *(await answered))
    except asyncio.CancelledError:
        # The server is stopping: say so on the wire too (the request is kept).
        if answered.done():
            await send_answer(send, *answered.result())
        else:
            await send_answer(send, 503, json_answer({"error": stopped}, None), None)
        raise
