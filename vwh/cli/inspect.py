"""`vwh inspect`: the web inspector over a store alone, for looking back at history."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from vwh.cli import filters
from vwh.cli.replay import (
    target_from,
    to_option,
    token_cookie_option,
    token_header_option,
    token_option,
    token_query_option,
)


def inspect(
    store: Path | None = filters.store_option(),
    ui_host: str = typer.Option(
        "127.0.0.1", help="Address to serve on (loopback by default; others warn)."
    ),
    ui_port: int = typer.Option(8788, min=0, max=65535, help="Port (a free one if taken)."),
    to: str = to_option(),
    token: str | None = token_option(),
    token_header: str | None = token_header_option(),
    token_query: str | None = token_query_option(),
    token_cookie: str | None = token_cookie_option(),
) -> None:
    """Browse kept requests in a web page, and replay them (no listener needed).

    Replays go to --to (the kept path appended) with --token where --token-header,
    --token-query or --token-cookie says, since the store masks the kept token. Ctrl-C
    stops it.
    """
    from vwh.cli.inspector_view import announce
    from vwh.cli.output import Output
    from vwh.inspector import Inspector, InspectorSettings, UiOptions
    from vwh.paths import default_store_path
    from vwh.store import CaptureStore

    out = Output()
    path = store or default_store_path()
    target = target_from(to, token, token_header, token_query, token_cookie, None, None, None)
    settings = InspectorSettings(
        store_path=path,
        default_target=target.url,
        token=target.token,
        token_header=target.token_header,
        token_place=target.place,
    )
    options = UiOptions(ui_host, ui_port, os.environ.get("VWH_UI_TOKEN") or None)
    inspector = Inspector(settings, CaptureStore.open_existing(path), options)
    out.note(f"[bold]vwh inspecting {path}[/bold] (replays go to {target.describe()})")
    announce(out, inspector)
    out.note("ready: Ctrl-C to stop")
    inspector.run()
    out.note("stopped")


def register(app: typer.Typer) -> None:
    app.command()(inspect)
