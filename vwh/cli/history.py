"""`vwh history` and `vwh show`: read what the listener kept."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vwh.cli import filters

if TYPE_CHECKING:
    from vwh.store import CaptureStore

STORE_HELP = "SQLite store (default: your data dir; or VWH_STORE)."


def history(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many to list."),
    all_: bool = typer.Option(False, "--all", help="List every match (no --limit)."),
    verdict: str | None = filters.verdict_option(),
    status: str | None = filters.status_option(),
    path: str | None = filters.path_option(),
    since: str | None = filters.since_option(),
    grep: str | None = filters.grep_option(),
    resends: bool = filters.resends_option(),
    store: Path | None = typer.Option(None, envvar="VWH_STORE", help=STORE_HELP),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per request."),
) -> None:
    """List kept requests, newest first."""
    from vwh.cli.listen_view import history_table, plain_line
    from vwh.cli.output import Output
    from vwh.query import iter_matching

    out = Output(json_mode=json_out)
    flt = filters.request_filter(verdict, status, path, since, grep, resends)
    page = 500 if all_ else min(limit, 500)
    matching = iter_matching(open_store(store), flt, newest_first=True, page=page)
    records = matching if all_ else itertools.islice(matching, limit)
    if json_out:
        for record in records:
            out.json(record.to_json())
    elif out.rich:
        out.render(history_table(records))
    else:
        for record in records:
            out.line(plain_line(record))


def show(
    request_id: int = typer.Argument(..., metavar="ID", help="The request's number."),
    store: Path | None = typer.Option(None, envvar="VWH_STORE", help=STORE_HELP),
    json_out: bool = typer.Option(False, "--json", help="The raw record as JSON."),
) -> None:
    """Show one kept request in full: headers (secrets masked) and body."""
    from vwh.cli.listen_view import request_details
    from vwh.cli.output import Output
    from vwh.cli.resolve_view import detail_lines
    from vwh.resolve import read_resolved

    out = Output(json_mode=json_out)
    opened = open_store(store)
    record = opened.get(request_id)
    resolved = read_resolved(opened.path, request_id)  # what `listen --resolve` found
    if json_out:
        out.json({**record.to_json(), **({"resolved": resolved} if resolved else {})})
    else:
        for line in [*request_details(record), *detail_lines(resolved)]:
            out.line(line)


def open_store(store: Path | None) -> CaptureStore:
    """The store to read: --store, VWH_STORE or the default; never a new empty one."""
    from vwh.paths import default_store_path
    from vwh.store import CaptureStore

    return CaptureStore.open_existing(store or default_store_path())


def register(app: typer.Typer) -> None:
    app.command()(history)
    app.command()(show)
