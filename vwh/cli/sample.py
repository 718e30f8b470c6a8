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
    compact: bool = typer.Option(
        False, "--compact", help="One line, for JSON-lines files (`>> bodies.jsonl`)."
    ),
) -> None:
    """Print a webhook body like Vendasta's, e.g. `vwh sample order > order.json`."""
    from vwh.samples import SampleOptions, sample_bytes

    options = SampleOptions(partner=partner, market=market, account=account, seed=seed)
    text = sample_bytes(kind, options.checked()).decode("ascii")
    if compact:
        import json

        text = json.dumps(json.loads(text), separators=(",", ":")) + "\n"
    sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    app.command()(sample)
