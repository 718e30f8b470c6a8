"""`vwh sample`: a realistic webhook body with fresh ids in Vendasta's formats."""

from __future__ import annotations

import sys

import typer


def sample(
    kind: str = typer.Argument(..., metavar="KIND", help="order, account or user."),
    partner: str | None = typer.Option(None, help="Partner id to use (e.g. 9YW9)."),
    market: str = typer.Option("default", help="Market id to use."),
    account: str | None = typer.Option(None, help="Account id to use (e.g. AG-7PQTGLLXQQ)."),
    seed: int | None = typer.Option(None, help="Draw the ids from this seed (reproducible)."),
    step: str = typer.Option(
        "send",
        help="send: the Send a webhook step's body (no automationId); trigger: the original"
        " Trigger a webhook step's.",
    ),
    field: list[str] = typer.Option(
        None,
        "--field",
        metavar="KEY=VALUE",
        help="Add a flat custom field, as configured in the step (KEY:=JSON for a number,"
        " true, false or null; repeatable).",
    ),
) -> None:
    """Print a webhook body like Vendasta's, e.g. `vwh sample order > order.json`."""
    from vwh.fields import parse_fields
    from vwh.samples import SampleOptions, sample_bytes

    options = SampleOptions(
        partner=partner,
        market=market,
        account=account,
        seed=seed,
        step=step,
        fields=tuple(parse_fields(field or (), "--field").items()),
    )
    sys.stdout.write(sample_bytes(kind, options.checked()).decode("ascii"))


def register(app: typer.Typer) -> None:
    app.command()(sample)
