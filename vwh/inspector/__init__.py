"""The web inspector: every kept request in a live page, with replay.

`create_inspector` is the ASGI app (page, static assets, JSON API, behind the
guard); `Inspector` binds and serves it; `Broadcaster` feeds its live stream
from the store's writer thread without ever blocking it.
"""

from vwh.inspector.app import create_inspector
from vwh.inspector.broadcast import Broadcaster
from vwh.inspector.server import DEFAULT_UI_PORT, Inspector, UiOptions
from vwh.inspector.settings import InspectorSettings

__all__ = [
    "DEFAULT_UI_PORT",
    "Broadcaster",
    "Inspector",
    "InspectorSettings",
    "UiOptions",
    "create_inspector",
]
