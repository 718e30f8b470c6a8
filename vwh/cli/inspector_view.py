"""The inspector on the terminal: start it beside a listener, and say where it is."""

from __future__ import annotations

from collections.abc import Callable

from vwh.cli.output import Output
from vwh.inspector import Inspector, InspectorSettings, UiOptions
from vwh.listener import Listener
from vwh.store import CapturedRequest, CaptureStore

ShowCallback = Callable[[list[CapturedRequest]], None]


def start_beside(listener: Listener, ui: UiOptions) -> Inspector:
    """Bind and start the inspector for a listener's store, fed by its writer thread."""
    s = listener.settings
    settings = InspectorSettings(
        store_path=listener.store_path,
        listener_url=listener.url,
        token=s.token,
        token_header=s.token_header,
        forward=s.forward,
        token_place=s.place,
    )
    inspector = Inspector(settings, CaptureStore(listener.store_path), ui)
    inspector.start()
    return inspector


def announce(out: Output, inspector: Inspector) -> None:
    if inspector.moved_from is not None:
        out.note(
            f"  inspector: port {inspector.moved_from} is taken; using {inspector.port} instead"
        )
    if inspector.host not in ("127.0.0.1", "::1", "[::1]", "localhost"):
        out.warn(
            f"inspector on {inspector.host}, not loopback: anyone who can reach this machine"
            " and has the address can read the captured requests and replay them"
        )
    out.note(f"  inspector: {inspector.url}")
