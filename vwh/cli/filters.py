"""The filter options `vwh history` and `vwh export` share, declared once.

Each function returns the option for one field of `vwh.query.RequestFilter`, so
both commands spell, document and parse a filter the same way; `request_filter`
turns the values into the filter the library reads with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from vwh.query import RequestFilter


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
