"""The inspector's ASGI app: the page, its static assets and the JSON API, behind the guard.

It is its own app on its own port, never mounted in the receiver: a tunnel that
exposes the receiving port exposes no capture and no replay.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from vwh import __version__
from vwh.inspector.api import InspectorApi
from vwh.inspector.guard import Guard, allowed_hosts
from vwh.inspector.settings import InspectorSettings
from vwh.store import CaptureStore

STATIC = Path(str(files("vwh.inspector") / "static"))


def create_inspector(
    settings: InspectorSettings, store: CaptureStore, *, secret: str, host: str, port: int
) -> ASGIApp:
    """The inspector for one store, answering only as http://host:port with `secret`."""
    info: dict[str, Any] = {
        "version": __version__,
        "live": settings.live,
        "listener": settings.listener_url,
        "store": str(settings.store_path),
        "forwarding": settings.forward is not None,
        "forward_to": settings.forward.url if settings.forward else None,
        "token_header": settings.token_header,
        "token_place": settings.place.describe(),
        "replay_token": settings.token is not None,
    }
    api = InspectorApi(store, info, settings)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/info", api.get_info),
            Route("/api/requests", api.list_requests),
            Route("/api/requests/{id:int}", api.get_request),
            Route("/api/requests/{id:int}/body", api.get_body),
            Route("/api/requests/{id:int}/replay", api.replay, methods=["POST"]),
            Route("/api/events", api.events),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    return Guard(app, secret=secret, hosts=allowed_hosts(host, port), port=port)
