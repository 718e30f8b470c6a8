"""The baseline: a bare Starlette app on uvicorn that only answers 200.

    python bench/bare_app.py PORT [starlette|asgi]

`asgi` serves a bare ASGI callable instead, the fastest receiver uvicorn can run.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ok(request: Request) -> Response:
    await request.body()
    return Response(b'{"received":true}', 200, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", ok, methods=["POST"])])


async def raw_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"17")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"received":true}'})


if __name__ == "__main__":
    uvicorn.run(
        raw_asgi if sys.argv[2:] == ["asgi"] else app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="error",
        access_log=False,
        lifespan="off",
        http="auto",
        loop="asyncio",
    )
