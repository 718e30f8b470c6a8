"""`vwh history` and `vwh show`: read what the listener kept."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vwh.cli import filters

if TYPE_CHECKING:
    from vwh.query import RequestFilter


@filters.with_request_filter
def history(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many to list."),
    all_: bool = typer.Option(False, "--all", help="List every match (no --limit)."),
    request_filter: RequestFilter = filters.NO_FILTER,
    store: Path | None = filters.store_option(),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per request."),
) -> None:
    """List kept requests, newest first."""
    from vwh.cli.listen_view import history_table, plain_line
    from vwh.cli.output import Output
    from vwh.query import iter_matching

    out = Output(json_mode=json_out)
    page = 500 if all_ else min(limit, 500)
    kept = filters.open_store(store)
    matching = iter_matching(kept, request_filter, newest_first=True, page=page)
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
    store: Path | None = filters.store_option(),
    json_out: bool = typer.Option(False, "--json", help="The raw record as JSON."),
) -> None:
    """Show one kept request in full: headers (secrets masked) and body."""
    from vwh.cli.output import Output
    from vwh.cli.resolve_view import detail_lines
    from vwh.cli.show_view import request_details
    from vwh.resolve import read_resolved

    out = Output(json_mode=json_out)
    opened = filters.open_store(store)
    record = opened.get(request_id)
    resolved = read_resolved(opened.path, request_id)  # what `listen --resolve` found
    if json_out:
        out.json({**record.to_json(), **({"resolved": resolved} if resolved else {})})
    else:
        for line in [*request_details(record), *detail_lines(resolved)]:
            out.line(line)


def register(app: typer.Typer) -> None:
    app.command()(history)
    app.command()(show)
