"""`vwh replay`: send bodies to a handler with Vendasta's resend rules, and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

# The options `vwh sign` shares, so both build the same request from the same words.


def to_option() -> Any:
    return typer.Option(
        "http://127.0.0.1:8787/",
        "--to",
        envvar="VWH_TARGET",
        help="URL to send to (or VWH_TARGET); default: the local listener.",
    )


def token_option() -> Any:
    return typer.Option(None, envvar="VWH_TOKEN", help="Verifier token to send (or VWH_TOKEN).")


def token_header_option() -> Any:
    return typer.Option("Verifier-Token", help="Header that carries the token.")


def header_option() -> Any:
    return typer.Option(None, "-H", "--header", help="Extra header, 'Name: value' (repeatable).")


def replay(
    sources: list[str] = typer.Argument(
        None,
        metavar="[PAYLOAD]...",
        help="JSON files, directories (their *.json), JSON-lines files, - for stdin;"
        " with --from-history, ids of kept requests.",
        show_default=False,
    ),
    from_history: bool = typer.Option(
        False,
        "--from-history",
        help="Re-send kept requests (ids from vwh history): their raw body and method, to"
        " --to as given. The store masks tokens: the one sent is --token / VWH_TOKEN.",
    ),
    keep_headers: bool = typer.Option(
        False,
        "--keep-headers",
        help="With --from-history, also send the kept headers (not the token, nor"
        " other secrets the store masked).",
    ),
    to: str = to_option(),
    token: str | None = token_option(),
    token_header: str = token_header_option(),
    header: list[str] = header_option(),
    timeout: float = typer.Option(60.0, min=0.001, help="Seconds to wait for each answer."),
    attempts: int = typer.Option(3, min=1, help="Tries in all for 5xx, timeouts, broken links."),
    backoff: float = typer.Option(1.0, min=0.0, help="Base wait before a resend, in seconds."),
    no_retry: bool = typer.Option(False, "--no-retry", help="Send once; never resend."),
    concurrency: int = typer.Option(8, min=1, help="Payloads in flight at once."),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Send the valid payloads; list the others on stderr (an input larger than"
        " --max-size still stops the batch).",
    ),
    max_size: int = typer.Option(
        16,
        "--max-size",
        min=1,
        metavar="MIB",
        help="Largest payload (a file, or a line of JSON lines), in MiB.",
    ),
    store: Path | None = typer.Option(
        None, envvar="VWH_STORE", help="SQLite store for --from-history (or VWH_STORE)."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON result per payload."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show every attempt."),
) -> None:
    """Send webhook bodies to a handler as Vendasta would, resends included.

    Payloads are read as they are sent. Exit status: 0 all delivered, 3 any rejected
    (3xx/4xx), 4 any gave up, 2 bad input (found mid-way: what came before it was sent).
    """
    from vwh.cli.output import Output
    from vwh.cli.replay_view import open_inputs, run_batch
    from vwh.delivery import ResendPolicy
    from vwh.replay import Target

    output = Output(json_mode=json_out)
    target = Target.from_options(to, token, token_header, header or [])
    items = open_inputs(
        output,
        sources or [],
        from_history=from_history,
        store=store,
        skip_invalid=skip_invalid,
        max_size=max_size * 1024 * 1024,
    )
    if from_history and target.token is None and any(getattr(p, "had_token", 0) for p in items):
        output.warn("the kept requests had a token, which the store masks: give --token")
    policy = ResendPolicy(attempts=1 if no_retry else attempts, backoff=backoff, timeout=timeout)
    code = run_batch(
        output,
        target,
        items,
        policy,
        concurrency=concurrency,
        verbose=verbose,
        keep_headers=keep_headers,
        skip_invalid=skip_invalid,
    )
    raise typer.Exit(int(code))


def register(app: typer.Typer) -> None:
    app.command()(replay)
