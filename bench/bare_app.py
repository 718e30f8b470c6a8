"""The baseline: a bare Starlette app on uvicorn that only answers 200."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ok(request: Request) -> Response:
    await request.body()
    return Response(b'{"received":true}', 200, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", ok, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="error",
        access_log=False,
        lifespan="off",
        http="auto",
        loop="asyncio",
    )
