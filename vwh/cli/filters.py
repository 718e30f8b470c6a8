"""Which kept requests a command reads: the store option, and the filter options
`vwh history` and `vwh export` share, declared once.

Each filter function returns the option for one field of `vwh.query.RequestFilter`, so
both commands spell, document and parse a filter the same way; `with_request_filter`
gives a command the options and `request_filter` turns their values into the filter
the library reads with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from vwh.cli.option_group import Command, option_group

if TYPE_CHECKING:
    from vwh.query import RequestFilter
    from vwh.store import CaptureStore

NO_FILTER: Any = None  # the default of a `request_filter` parameter, never seen by typer
STORE_HELP = "SQLite store (default: your data dir; or VWH_STORE)."


def store_option() -> Any:
    return typer.Option(None, envvar="VWH_STORE", help=STORE_HELP)


def open_store(store: Path | None) -> CaptureStore:
    """The store to read: --store, VWH_STORE or the default; never a new empty one."""
    from vwh.paths import default_store_path
    from vwh.store import CaptureStore

    return CaptureStore.open_existing(store or default_store_path())


def verdict_option() -> Any:
    return typer.Option(
        None,
        metavar="ok|wrong|missing|unchecked",
        help="Only requests whose token check gave this.",
    )


def status_option() -> Any:
    return typer.Option(
        None, metavar="CODE", help="Only requests answered this status (401) or class (5xx)."
    )


def path_option() -> Any:
    return typer.Option(None, "--path", metavar="PREFIX", help="Only paths starting with PREFIX.")


def since_option() -> Any:
    return typer.Option(
        None,
        metavar="WHEN",
        help="Only requests since then: a duration ago (30s, 10m, 2h, 7d) or a local time"
        " (2026-12-01T10:00).",
    )


def grep_option() -> Any:
    return typer.Option(
        None, metavar="TEXT", help="Only requests with TEXT (any case) in the path, query or body."
    )


def resends_option() -> Any:
    return typer.Option(False, "--resends", help="Only resends (a body seen before).")


def request_filter(
    verdict: str | None,
    status: str | None,
    path: str | None,
    since: str | None,
    grep: str | None,
    resends: bool,
) -> RequestFilter:
    """The options as one filter; UsageError (exit 2) names a bad value."""
    from vwh.query import RequestFilter, parse_since

    return RequestFilter(
        verdict=verdict,
        status=status,
        path_prefix=path,
        since=None if since is None else parse_since(since),
        grep=grep,
        resends=resends,
    )


def with_request_filter(command: Command) -> Command:
    """Give a command the filter options where its `request_filter` parameter stands,
    built into that one `RequestFilter`."""
    return option_group(
        "request_filter",
        [
            ("verdict", str | None, verdict_option),
            ("status", str | None, status_option),
            ("path", str | None, path_option),
            ("since", str | None, since_option),
            ("grep", str | None, grep_option),
            ("resends", bool, resends_option),
        ],
        request_filter,
    )(command)
