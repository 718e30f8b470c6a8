"""`vwh check`: run a short suite of deliveries against a handler and grade it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vwh.webhook import DEFAULT_TOKEN_HEADER, VENDASTA_TIMEOUT

if TYPE_CHECKING:
    from vwh.check import CheckConfig, CheckReport
    from vwh.cli.output import Output

CHECKS_HELP = (
    "valid, wrong-token, missing-token, header-case, bad-json, unknown-fields, repeat, timing,"
    " response-data"
)


def check(
    url: str = typer.Argument(
        ..., metavar="URL", help="The handler, e.g. https://localhost:8000/webhooks/vendasta."
    ),
    token: str | None = typer.Option(
        None, envvar="VWH_TOKEN", help="The token the automation sends (required; or VWH_TOKEN)."
    ),
    token_header: str | None = typer.Option(
        None,
        show_default=False,
        help=f"Header that carries the token [default: {DEFAULT_TOKEN_HEADER}].",
    ),
    token_query: str | None = typer.Option(
        None, metavar="NAME", help="Put the token in this query parameter (Send a webhook)."
    ),
    token_cookie: str | None = typer.Option(
        None, metavar="NAME", help="Put the token in this cookie (Send a webhook)."
    ),
    header: list[str] | None = typer.Option(
        None,
        "--header",
        "-H",
        metavar="'NAME: VALUE'",
        help="Extra header on every delivery, 'Name: value' (repeatable).",
    ),
    query: list[str] | None = typer.Option(
        None, "--query", metavar="NAME=VALUE", help="Add to the URL's query (repeatable)."
    ),
    cookie: list[str] | None = typer.Option(
        None, "--cookie", metavar="NAME=VALUE", help="Add a cookie (repeatable)."
    ),
    expect_response: str | None = typer.Option(
        None,
        metavar="'KEY:TYPE,...'",
        help="The step's Response body keys (TYPE string, number or boolean; '?' after it:"
        " optional): adds the check response-data on the handler's answer.",
    ),
    payload: Path | None = typer.Option(
        None, dir_okay=False, help="JSON object for the valid delivery (default: a sample order)."
    ),
    timeout: float = typer.Option(
        VENDASTA_TIMEOUT, help="Seconds to wait for each answer (Vendasta waits 60)."
    ),
    warn_after: float = typer.Option(
        10.0, min=0, help="Warn when a valid delivery takes longer than this many seconds."
    ),
    only: list[str] | None = typer.Option(
        None,
        metavar="CHECKS",
        help=f"Run only these checks, by name or number: {CHECKS_HELP}.",
        autocompletion=lambda incomplete: complete_checks(incomplete),
    ),
    skip: list[str] | None = typer.Option(
        None,
        metavar="CHECKS",
        help="Skip these checks (names or numbers).",
        autocompletion=lambda incomplete: complete_checks(incomplete),
    ),
    json_out: bool = typer.Option(False, "--json", help="The report as one JSON document."),
) -> None:
    """Send a handler 7 test deliveries and grade its answers the way Vendasta treats them.

    Seven deliveries (valid, wrong token, missing token, header case, bad JSON, unknown
    fields, repeat) and an eighth verdict, timing, on how fast the valid ones were.
    --expect-response adds a ninth check, response-data: the data later steps get.

    Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on bad
    options, 6 when nothing answers at the URL.
    """
    from vwh import check as suite
    from vwh.cli.check_view import report_lines, report_table
    from vwh.cli.output import Output
    from vwh.delivery import parse_header, parse_pair
    from vwh.errors import UsageError
    from vwh.expect import parse_expected
    from vwh.payloads import read_json_object_file
    from vwh.webhook import token_place

    if not token:
        raise UsageError("missing --token (or VWH_TOKEN): the token your automation sends")
    place = token_place(token_header, token_query, token_cookie)
    expected = parse_expected(expect_response) if expect_response is not None else None
    config = suite.CheckConfig(
        url=url,
        token=token,
        token_header=place.name if place.is_header else DEFAULT_TOKEN_HEADER,
        token_place=place,
        query=tuple(parse_pair(q, "--query") for q in query or ()),
        cookies=tuple(parse_pair(c, "--cookie") for c in cookie or ()),
        expect_response=expected,
        extra_headers=tuple(parse_header(h) for h in header or ()),
        payload=read_json_object_file(payload) if payload else None,
        payload_label=payload.name if payload else "",
        timeout=timeout,
        warn_after=warn_after,
        checks=suite.select_checks(
            only or (), skip or (), place=place.kind, expect=expected is not None
        ),
    )
    out = Output(json_mode=json_out)
    report = _run(config, out)
    if json_out:
        out.json(report.to_json())
    elif out.rich:
        out.render(report_table(report))
    else:
        for line in report_lines(report):
            out.line(line)
    raise typer.Exit(int(report.exit_code))


def complete_checks(incomplete: str) -> list[str]:
    """Check names for the shell, after any already typed: `valid,re` -> `valid,repeat`."""
    from vwh.check import CHECK_NAMES

    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + name for name in CHECK_NAMES if name.startswith(last.lower())]


def _run(config: CheckConfig, out: Output) -> CheckReport:
    """Run the suite, with a spinner on stderr when a person is watching."""
    import asyncio

    from vwh.check import run

    if not out.err.is_terminal:
        return asyncio.run(run(config))
    with out.err.status("checking") as status:
        return asyncio.run(
            run(config, lambda spec: status.update(f"check {spec.number}: {spec.title}"))
        )


def register(app: typer.Typer) -> None:
    app.command()(check)
