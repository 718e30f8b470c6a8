"""The receiver's side of the wire: read a bounded body, write one whole answer.

Kept apart from the rules of what to answer (vwh.receiver), so those read as rules.
"""

from __future__ import annotations

import json

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


def json_answer(answer: dict[str, object], request_id: int | None) -> bytes:
    if request_id is not None and answer is RECEIVED:
        return b'{"received":true,"id":%d}' % request_id  # the hot path, without json.dumps
    return json.dumps({**answer, "id": request_id}, separators=(",", ":")).encode()
