"""`vwh export`: kept requests as NDJSON for `vwh replay`, or as HAR 1.2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from vwh.cli import filters

if TYPE_CHECKING:
    from vwh.query import RequestFilter
    from vwh.store import CapturedRequest


@filters.with_request_filter
def export(
    fmt: str = typer.Option(
        "ndjson",
        "--format",
        metavar="ndjson|har",
        help="ndjson: one request a line, which vwh replay sends again (method, path, query"
        " and body); har: HTTP Archive 1.2, for browser developer tools.",
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", dir_okay=False, help="Write to FILE (0600) instead of stdout."
    ),
    request_filter: RequestFilter = filters.NO_FILTER,
    store: Path | None = filters.store_option(),
) -> None:
    """Write kept requests, oldest first, as NDJSON for vwh replay or as HAR 1.2.

    Secrets stay masked, as the store keeps them: replay takes the token from --token.
    """
    from vwh.cli.filters import open_store
    from vwh.cli.output import Output, untrusted
    from vwh.errors import UsageError
    from vwh.export import FORMATS, private_file, write_har, write_ndjson
    from vwh.query import iter_matching

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: use ndjson or har")
    write = write_har if fmt == "har" else write_ndjson
    with open_store(store) as kept:
        records = iter_matching(kept, request_filter)
        if output is None:
            _to_stdout(write, records)
            return
        with private_file(output) as out:
            count = write(records, out)
    plural = "s" if count != 1 else ""
    Output().note(f"exported {count} request{plural} to {untrusted(str(output))}")


def _to_stdout(write: Callable[[Iterable[CapturedRequest], TextIO], int], records: Any) -> None:
    """Stream to stdout; a reader that went away (`vwh export | head`) only stops it."""
    from vwh.errors import VwhError

    try:
        write(records, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
    except OSError as exc:
        raise VwhError(f"cannot write to stdout: {exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    app.command()(export)
