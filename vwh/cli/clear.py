"""`vwh clear`: drop kept requests, all of them or the older ones."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vwh.cli import filters


def clear(
    older_than: str | None = typer.Option(
        None, metavar="AGE", help="Only requests older than AGE (30m, 12h, 7d, 2w) or a time."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (needed when not a terminal)."),
    store: Path | None = filters.store_option(),
) -> None:
    """Delete kept requests: all of them, or those older than --older-than.

    Safe while a listener writes: it deletes in short transactions, and what the
    listener keeps meanwhile stays (unless it is older than --older-than).
    """
    from vwh.cli.filters import open_store
    from vwh.cli.output import Output, untrusted
    from vwh.errors import UsageError
    from vwh.query import RequestFilter, delete_matching, parse_since

    out = Output()
    flt = RequestFilter(until=None if older_than is None else parse_since(older_than))
    with open_store(store) as kept:
        what = "every kept request" if older_than is None else f"requests older than {older_than}"
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"not clearing {what} without --yes (stdin is not a terminal)")
            if not typer.confirm(f"Delete {what} from {kept.path}?", err=True):
                out.note("nothing deleted")
                raise typer.Exit(1)
        count = delete_matching(kept, flt)
    out.note(f"deleted {count} request{'s' if count != 1 else ''} from {untrusted(str(kept.path))}")


def register(app: typer.Typer) -> None:
    app.command()(clear)
