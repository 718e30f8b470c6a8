"""`vwh replay`: send bodies to a handler with Vendasta's resend rules, and report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Iterable

    from vwh.curl import CurlRequest
    from vwh.delivery import OutgoingRequest
    from vwh.payloads import Payload, Problem
    from vwh.replay import Target

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
    return typer.Option(
        None, show_default=False, help="Header that carries the token [default: Verifier-Token]."
    )


def token_query_option() -> Any:
    return typer.Option(
        None, metavar="NAME", help="Put the token in this query parameter instead (Send a webhook)."
    )


def token_cookie_option() -> Any:
    return typer.Option(
        None, metavar="NAME", help="Put the token in this cookie instead (Send a webhook)."
    )


def header_option() -> Any:
    return typer.Option(None, "-H", "--header", help="Extra header, 'Name: value' (repeatable).")


def query_option() -> Any:
    return typer.Option(
        None, "--query", metavar="NAME=VALUE", help="Add to the URL's query (repeatable)."
    )


def cookie_option() -> Any:
    return typer.Option(None, "--cookie", metavar="NAME=VALUE", help="Add a cookie (repeatable).")


def set_option() -> Any:
    return typer.Option(
        None,
        "--set",
        metavar="FIELD=VALUE",
        help="With a copied curl request: replace (or add) this body field first; FIELD:=JSON"
        " for a number, true, false or null (repeatable).",
    )


def target_from(
    to: str,
    token: str | None,
    token_header: str | None,
    token_query: str | None,
    token_cookie: str | None,
    header: list[str] | None,
    query: list[str] | None,
    cookie: list[str] | None,
) -> Target:
    """The Target the shared options describe (UsageError for a bad one)."""
    from vwh.replay import Target
    from vwh.webhook import token_place

    return Target.from_options(
        to,
        token,
        header_texts=header or [],
        token_place=token_place(token_header, token_query, token_cookie),
        query_texts=query or [],
        cookie_texts=cookie or [],
    )


def given(ctx: typer.Context, name: str) -> bool:
    """True when the user set the option (command line or environment), not its default."""
    # By name: typer vendors its own click, so its ParameterSource is not click's.
    return getattr(ctx.get_parameter_source(name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")


def copied_delivery(
    ctx: typer.Context, copied: CurlRequest, target: Target, sets: list[str] | None, label: str
) -> OutgoingRequest:
    """The request of a copied curl command; --to replaces only its scheme, host and port."""
    from vwh.copied import delivery_from_curl

    to = target.url if given(ctx, "to") else None
    return delivery_from_curl(copied, to=to, sets=sets or (), target=target, label=label)


def replay(
    ctx: typer.Context,
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
    curl: str | None = typer.Option(
        None,
        "--curl",
        metavar="FILE",
        help="Send the request of a copied curl command (Vendasta's 'Copy example request as"
        " curl'; - for stdin) exactly: method, path, query, headers, cookies, body. --to"
        " replaces only its scheme, host and port.",
    ),
    set_: list[str] = set_option(),
    to: str = to_option(),
    token: str | None = token_option(),
    token_header: str | None = token_header_option(),
    token_query: str | None = token_query_option(),
    token_cookie: str | None = token_cookie_option(),
    header: list[str] = header_option(),
    query: list[str] = query_option(),
    cookie: list[str] = cookie_option(),
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
    from dataclasses import replace

    from vwh.cli.output import Output
    from vwh.cli.replay_view import open_inputs, run_batch
    from vwh.delivery import ResendPolicy
    from vwh.errors import UsageError

    output = Output(json_mode=json_out)
    target = target_from(to, token, token_header, token_query, token_cookie, header, query, cookie)
    items: Iterable[Payload | Problem | OutgoingRequest]
    if curl is not None:
        if sources or from_history:
            raise UsageError("--curl sends one copied request: give no PAYLOAD nor --from-history")
        from vwh.cli.replay_view import _stdin
        from vwh.copied import read_copied

        copied = read_copied(curl, _stdin() if curl == "-" else None)
        request = copied_delivery(ctx, copied, target, set_, curl)
        target = replace(target, url=request.url)
        items = [request]
    else:
        if set_:
            raise UsageError("--set replaces fields of a copied request: it needs --curl FILE")
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
