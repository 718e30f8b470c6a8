"""`vwh trigger`: start a real automation run, and with --wait show the webhook it sends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vwh.cli import api_options as opt

if TYPE_CHECKING:
    from vwh.cli.output import Output
    from vwh.store import CapturedRequest
    from vwh.trigger import StoreWatch

HELP = """Start an automation run through Vendasta's API; --wait shows the webhook it causes.

The automation's trigger must be "It's triggered via API". ENTITY_ID is the account
(AG-...) or order (AG-...:ORD-...) it runs for. The token is minted with the `business`
scope. With --wait, vwh watches the store `vwh listen` writes for the first request
after the trigger whose body names ENTITY_ID, and prints it as `vwh show` does.
"""


def register(app: typer.Typer) -> None:
    @app.command("trigger", help=HELP)
    @opt.with_api_options()
    def trigger(
        automation_id: str = typer.Argument(..., metavar="AUTOMATION_ID", show_default=False),
        entity_id: str = typer.Argument(..., metavar="ENTITY_ID", show_default=False),
        data: list[str] = typer.Option(
            None, "--data", metavar="KEY=VALUE", help="Extra data for the trigger (repeatable)."
        ),
        data_file: Path | None = typer.Option(
            None, "--data-file", metavar="FILE", help="Extra data: a flat JSON object."
        ),
        wait: bool = typer.Option(False, "--wait", help="Wait for the delivery and show it."),
        wait_timeout: float = typer.Option(
            120.0, "--wait-timeout", metavar="SECONDS", min=0.1, help="How long --wait waits."
        ),
        store: Path | None = typer.Option(
            None,
            envvar="VWH_STORE",
            help="The store `vwh listen` writes (default: your data dir; or VWH_STORE).",
        ),
        json_out: bool = typer.Option(False, "--json", help="JSON: the kept delivery with --wait."),
        scope: list[str] = typer.Option(
            None, "--scope", metavar="SCOPE", help="Scope to ask for instead of business."
        ),
        api_options: opt.ApiOptions = opt.ApiOptions(),
    ) -> None:
        import asyncio
        import time
        from dataclasses import replace

        from vwh.cli.output import Output, untrusted
        from vwh.paths import default_store_path
        from vwh.sanitize import inert, json_line
        from vwh.trigger import AutomationRun, StoreWatch, parse_data, start_run

        out = Output(json_mode=json_out)
        run = AutomationRun(automation_id, entity_id, parse_data(data or (), data_file)).checked()
        api = replace(api_options, scopes=tuple(scope or ())).client()
        watch = StoreWatch(store or default_store_path())
        watch.mark()
        since = time.time()

        async def go() -> None:
            async with api:
                await start_run(api, run)

        try:
            asyncio.run(go())
            started = f"started {run.automation_id} for {run.entity_id} (202 Accepted)"
            if not wait:
                if json_out:
                    out.line(json_line({"started": True, **run.document()["data"]}))
                else:
                    out.line(inert(started))
                return
            out.note(untrusted(inert(f"{started}; waiting for its delivery in {watch.path}")))
            record = _wait(out, watch, run.entity_id, since, wait_timeout)
        finally:
            watch.close()
        _show(out, record)


def _wait(
    out: Output, watch: StoreWatch, entity_id: str, since: float, timeout: float
) -> CapturedRequest:
    """Wait with a spinner and the elapsed time on a terminal; silently when piped."""
    from vwh.cli.output import untrusted
    from vwh.sanitize import inert
    from vwh.trigger import wait_for_delivery

    if not out.err.is_terminal:
        return wait_for_delivery(watch, entity_id, since=since, timeout=timeout)
    what = untrusted(inert(f"waiting for a delivery naming {entity_id}"))
    with out.err.status(f"{what}: 0 s", spinner="dots") as status:
        return wait_for_delivery(
            watch,
            entity_id,
            since=since,
            timeout=timeout,
            on_tick=lambda elapsed: status.update(
                f"{what}: {elapsed:.0f} s of {timeout:g} s (Ctrl-C to stop)"
            ),
        )


def _show(out: Output, record: CapturedRequest) -> None:
    """The delivery as `vwh show` prints it (or its JSON record)."""
    from vwh.cli.show_view import request_details
    from vwh.sanitize import inert, json_line

    if out.json_mode:
        out.line(json_line(record.to_json()))
        return
    if record.rejected:
        out.warn(
            inert(
                f"the delivery arrived, but the listener rejected it ({record.verdict} token,"
                f" answered {record.status}): does the automation's verifier token match?"
            )
        )
    out.lines([inert(line) for line in request_details(record)])
