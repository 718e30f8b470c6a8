"""`vwh sample`: a realistic webhook body with fresh ids in Vendasta's formats."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from vwh.cli import api_options as opt

if TYPE_CHECKING:
    from vwh.samples import SampleOptions


@opt.with_api_options()
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
    from_id: str | None = typer.Option(
        None,
        "--from",
        metavar="ID",
        help="Build the body from this real record (AG-...:ORD-..., AG-..., U-...), fetched"
        " from Vendasta's API with credentials as for `vwh fetch`; what the API does not"
        " give keeps the sample's value.",
    ),
    json_meta: bool = typer.Option(
        False, "--json-meta", help="With --from: print {body, real, sample, notes} as JSON."
    ),
    api_options: opt.ApiOptions = opt.ApiOptions(),
    compact: bool = typer.Option(
        False, "--compact", help="One line, for JSON-lines files (`>> bodies.jsonl`)."
    ),
) -> None:
    """Print a webhook body like Vendasta's, e.g. `vwh sample order > order.json`."""
    from vwh.errors import UsageError
    from vwh.fields import parse_fields
    from vwh.samples import SampleOptions, sample_bytes

    options = SampleOptions(
        partner=partner,
        market=market,
        account=account,
        seed=seed,
        step=step,
        fields=tuple(parse_fields(field or (), "--field").items()),
    ).checked()
    if from_id is None:
        if json_meta:
            raise UsageError("--json-meta needs --from ID")
        text = sample_bytes(kind, options).decode("ascii")
        sys.stdout.write(_compact(text) if compact else text)
        return
    if account is not None:
        raise UsageError("--account and --from contradict each other: --from names the record")
    _from_api(kind, from_id, options, api_options, json_meta, compact)


def _from_api(
    kind: str,
    record_id: str,
    options: SampleOptions,
    api: opt.ApiOptions,
    json_meta: bool,
    compact: bool,
) -> None:
    """Fetch, then the body on stdout and which of its fields are real on stderr."""
    import asyncio
    import json

    from vwh.cli.output import Output
    from vwh.samples import RealSample, sample_from_api
    from vwh.sanitize import inert, json_line

    client = api.client()

    async def go() -> RealSample:
        async with client:
            return await sample_from_api(client, kind, record_id, options)

    got = asyncio.run(go())
    out = Output()
    for note in got.notes:
        out.warn(inert(f"could not read the {note}"))
    sampled = ", ".join(got.sampled) or "none"
    out.err.print(
        inert(f"real (from the API): {', '.join(got.real)}; sample: {sampled}"), markup=False
    )
    if json_meta:
        out.line(json_line(got.meta()))
    else:
        # ASCII, every control escaped: inert as is.
        out.line(
            json.dumps(got.body, separators=(",", ":"))
            if compact
            else json.dumps(got.body, indent=2)
        )


def register(app: typer.Typer) -> None:
    app.command()(sample)


def _compact(text: str) -> str:
    """A sample as one line, for JSON-lines files."""
    import json

    return json.dumps(json.loads(text), separators=(",", ":")) + "\n"
