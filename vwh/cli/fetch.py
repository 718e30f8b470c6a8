"""`vwh fetch`: show the records a webhook is about, fetched from Vendasta's API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from vwh.cli import api_options as opt

if TYPE_CHECKING:
    from vwh.cli.output import Output
    from vwh.record_kinds import Kind

HELP = """Fetch orders, accounts, businesses, users and automations from Vendasta's API.

KIND is order, account (salesAccounts), business (businessLocations), user or
automation; without it the kind is worked out from the id (AG-...:ORD-... order,
U-... user, Automation-... automation, AG-... account). --from FILE and
--from-history ID fetch every record a webhook body names, concurrently.
"""


def register(app: typer.Typer) -> None:
    @app.command("fetch", help=HELP)
    @opt.with_api_options()
    def fetch(
        args: list[str] = typer.Argument(
            None,
            metavar="[KIND] ID",
            show_default=False,
            help="order, account, business, user or automation (optional); then ids.",
            autocompletion=lambda incomplete: _complete_kinds(incomplete),
        ),
        from_file: Path | None = typer.Option(
            None, "--from", metavar="FILE", help="A webhook body (JSON; - for stdin)."
        ),
        from_history: int | None = typer.Option(
            None, "--from-history", metavar="ID", help="A request kept by `vwh listen`."
        ),
        json_out: bool = typer.Option(False, "--json", help="The JSON:API documents, one a line."),
        fields: str | None = typer.Option(None, "--fields", metavar="A,B", help="Sparse fieldset."),
        scope: list[str] = typer.Option(
            None, "--scope", metavar="SCOPE", help="Scope to ask for (repeatable)."
        ),
        api_options: opt.ApiOptions = opt.ApiOptions(),
        retries: int = typer.Option(
            3, "--retries", metavar="N", min=0, max=10, help="On 429 and 5xx."
        ),
    ) -> None:
        import asyncio
        from dataclasses import replace

        from vwh.api import Failure, Record
        from vwh.cli import fetch_view
        from vwh.cli.output import Output, untrusted
        from vwh.errors import VwhError

        out = Output(json_mode=json_out)
        targets = _targets(out, args or [], from_file, from_history)
        api = replace(api_options, scopes=tuple(scope or ()), retries=retries).client()

        async def run() -> list[Record | Failure]:
            async with api:
                return await api.fetch_many(targets, (fields or "").split(","))

        results = asyncio.run(run())
        failures = [r for r in results if isinstance(r, Failure)]
        if len(results) == 1 and failures:
            raise failures[0].error
        for n, record in enumerate(r for r in results if isinstance(r, Record)):
            if json_out:
                out.json(record.document)
            elif out.rich:
                out.render(fetch_view.record_view(record.document))
            else:
                out.line("\n".join(([""] if n else []) + fetch_view.plain_lines(record.document)))
        for f in failures:
            out.note(f"[red]failed:[/red] {untrusted(f'{f.kind.label} {f.id}: {f.error}')}")
        if failures:
            raise VwhError(
                f"{len(failures)} of {len(results)} records could not be fetched",
                exit_code=failures[0].error.exit_code,
            )


def _complete_kinds(incomplete: str) -> list[str]:
    """The kinds, for the shell (an id is the user's to type)."""
    from vwh.record_kinds import KINDS

    return [name for name in KINDS if name.startswith(incomplete.lower())]


def _targets(
    out: Output, args: list[str], from_file: Path | None, from_history: int | None
) -> list[tuple[Kind, str]]:
    """What to fetch; says which kind it chose for a bare id, and what a body names."""
    from vwh.cli.output import untrusted
    from vwh.errors import UsageError
    from vwh.record_kinds import records_in_body, targets_from_args

    if sum(bool(x) for x in (args, from_file, from_history is not None)) != 1:
        raise UsageError("name what to fetch: [KIND] ID..., or --from FILE, or --from-history ID")
    if args:
        targets = targets_from_args(args)
        for kind, record_id, guessed in targets:
            if guessed:
                hint = (
                    " (say `business` for the business location)" if kind.name == "account" else ""
                )
                out.note(f"{untrusted(record_id)}: fetching the {kind.label}{hint}")
        return [(k, i) for k, i, _ in targets]
    body, origin = _body(from_file, from_history)
    found = records_in_body(body)
    if not found:
        raise UsageError(f"{origin} names no orderId, accountId, userId or automationId")
    names = ", ".join(f"{k.label} {i}" for k, i in found)
    out.note(f"{untrusted(origin)} names: {untrusted(names)}")
    return found


def _body(from_file: Path | None, from_history: int | None) -> tuple[dict[str, Any], str]:
    """A webhook body from a file, stdin, or the capture store; and where it came from."""
    import sys

    from vwh.errors import InputError
    from vwh.webhook import InvalidBody, parse_body

    if from_file is None:
        from vwh.paths import default_store_path
        from vwh.store import CaptureStore

        origin = f"kept request {from_history}"
        with CaptureStore.open_existing(default_store_path()) as store:
            kept = store.get(int(from_history or 0))
        raw = kept.body if kept.body is not None else b""
        if kept.ids:
            return dict(kept.ids), origin
    elif str(from_file) == "-":
        origin, stdin = "stdin", sys.stdin
        raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
    else:
        from vwh.payloads import read_json_object_file

        origin, raw = str(from_file), read_json_object_file(from_file)
    try:
        return parse_body(raw), origin
    except InvalidBody as exc:
        raise InputError(f"{origin}: {exc}") from None
