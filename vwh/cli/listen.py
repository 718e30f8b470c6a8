"""`vwh listen`: receive, verify, keep and show webhooks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vwh.cli import api_options as opt

if TYPE_CHECKING:
    from vwh.cli.api_options import ApiOptions
    from vwh.forward import ForwardSettings
    from vwh.inspector import UiOptions


def listen(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8787, min=0, max=65535, help="Port to listen on (0 picks one)."),
    token: str | None = typer.Option(
        None, envvar="VWH_TOKEN", help="Verifier token to require (or VWH_TOKEN)."
    ),
    token_header: str | None = typer.Option(
        None, show_default=False, help="Header that carries the token [default: Verifier-Token]."
    ),
    token_query: str | None = typer.Option(
        None, metavar="NAME", help="Query parameter that carries the token (Send a webhook)."
    ),
    token_cookie: str | None = typer.Option(
        None, metavar="NAME", help="Cookie that carries the token (Send a webhook)."
    ),
    reject_status: int = typer.Option(
        401, min=400, max=499, help="Status for a wrong or missing token."
    ),
    status: int | None = typer.Option(
        None,
        min=200,
        max=599,
        show_default=False,
        help="Status to answer deliveries with [default: 200, or the handler's when forwarding].",
    ),
    delay: float = typer.Option(0.0, min=0.0, help="Seconds to wait before answering."),
    fail_first: int = typer.Option(
        0, min=0, help="Answer 503 to the first N deliveries of each distinct body."
    ),
    respond: Path | None = typer.Option(
        None, help="JSON file to answer deliveries with.", dir_okay=False
    ),
    max_body: int = typer.Option(
        1024 * 1024,
        min=1,
        help="Largest body accepted, in bytes; a larger one is answered 413 and kept"
        " without its body.",
    ),
    store: Path | None = typer.Option(
        None, envvar="VWH_STORE", help="SQLite store (default: your data dir; or VWH_STORE)."
    ),
    save: Path | None = typer.Option(
        None, file_okay=False, help="Also write each accepted body to this directory."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="One JSON object per request, after a first `ready` event line."
    ),
    keep: int | None = typer.Option(
        None, min=1, metavar="N", help="Keep only the newest N requests [default: all]."
    ),
    count: int | None = typer.Option(
        None,
        min=1,
        metavar="N",
        help="Exit 0 once N deliveries are kept (requests that passed the token and body"
        " checks, whatever they were answered), for scripts and CI.",
    ),
    exit_timeout: float | None = typer.Option(
        None,
        min=0.001,
        metavar="SECONDS",
        help="With --count: exit 5 if the N deliveries have not come SECONDS after start.",
    ),
    forward_to: str | None = typer.Option(
        None,
        metavar="URL",
        help="Pass each accepted delivery on to your handler at URL and answer the sender"
        " with the handler's answer. Without a trailing '/', every request goes to URL"
        " exactly; with one (or with no path), the incoming path is appended. The query"
        " string is always added. 502 when the handler is down, 504 when too slow.",
    ),
    forward_token: str | None = typer.Option(
        None,
        envvar="VWH_FORWARD_TOKEN",
        help="Token to hand on in place of a good one, for a handler configured with"
        " another (or VWH_FORWARD_TOKEN). Default: the sender's token as it came.",
    ),
    forward_timeout: float = typer.Option(
        60.0,
        min=0.001,
        help="Seconds to wait for the handler (Vendasta waits 60) before answering 504.",
    ),
    forward_all: bool = typer.Option(
        False,
        "--forward-all",
        help="Also forward what vwh rejects (wrong token, bad body, not POST), so you see"
        " your handler's own rejection.",
    ),
    expect_response: str | None = typer.Option(
        None,
        metavar="'KEY:TYPE,...'",
        help="With --forward-to: the step's Response body keys (TYPE string, number or"
        " boolean; '?' after it: optional); each handler answer is judged against them.",
    ),
    resolve: bool = typer.Option(
        False,
        "--resolve",
        help="Look up the order, account, user and automation each accepted delivery names"
        " (credentials as for `vwh fetch`) and show their names when they arrive; never"
        " delays an answer.",
    ),
    env: opt.Env | None = opt.env_option(),
    base_url: str | None = opt.base_url_option(),
    access_token: str | None = opt.access_token_option(),
    credentials: Path | None = opt.credentials_option(),
    token_url: str | None = opt.token_url_option(),
    ui_host: str = typer.Option(
        "127.0.0.1", help="Address of the web inspector (loopback by default; others warn)."
    ),
    ui_port: int = typer.Option(
        8788, min=0, max=65535, help="Port of the web inspector (a free one if taken)."
    ),
    no_ui: bool = typer.Option(False, "--no-ui", help="Do not serve the web inspector."),
) -> None:
    """Receive webhooks: verify the token, keep every request, show them live.

    With --forward-to, vwh sits between the sender and your handler: every delivery
    is kept, checked, passed on, and the handler's answer goes back to the sender.
    --status, --respond, --delay and --fail-first still decide what the sender gets
    (the handler is called all the same).
    """
    from vwh.cli.listen_run import run_listen
    from vwh.errors import UsageError
    from vwh.expect import parse_expected
    from vwh.receiver_settings import ReceiverSettings
    from vwh.webhook import token_place

    if token == "":
        raise UsageError("--token is empty: omit --token to check no token at all")
    if exit_timeout is not None and count is None:
        raise UsageError("--exit-timeout needs --count N (the deliveries to wait for)")
    place = token_place(token_header, token_query, token_cookie)
    if expect_response is not None and forward_to is None:
        raise UsageError(
            "--expect-response judges your handler's answers: it needs --forward-to URL"
        )
    if forward_token and not place.is_header:
        raise UsageError(
            f"--forward-token replaces a header token; with {place.option()} the token is"
            " passed on as it came"
        )
    settings = ReceiverSettings(
        token=token,
        token_header=place.name if place.is_header else "Verifier-Token",
        token_place=place,
        expect_response=parse_expected(expect_response) if expect_response else None,
        reject_status=reject_status,
        status=status,
        delay=delay,
        fail_first=fail_first,
        respond_body=_read_respond(respond),
        max_body=max_body,
        save_dir=_prepare_save_dir(save),
        forward=_forward_settings(ctx, forward_to, forward_token, forward_timeout, forward_all),
    )
    api = _resolve_options(ctx, resolve, env, base_url, access_token, credentials, token_url)
    run_listen(
        settings,
        host,
        port,
        store,
        json_out,
        keep=keep,
        count=count,
        exit_timeout=exit_timeout,
        api=api,
        ui=_ui_options(ui_host, ui_port, no_ui),
    )


def _resolve_options(
    ctx: typer.Context,
    resolve: bool,
    env: opt.Env | None,
    base_url: str | None,
    access_token: str | None,
    credentials: Path | None,
    token_url: str | None,
) -> ApiOptions | None:
    """The API options --resolve uses, checked now (bad credentials stop before listening)."""
    if not resolve:
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("env", "base_url", "access_token", "credentials", "token_url")
            if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
        ]
        if given:
            from vwh.errors import UsageError

            verb = "needs" if len(given) == 1 else "need"
            raise UsageError(f"{', '.join(given)} {verb} --resolve")
        return None
    api = opt.ApiOptions(env, base_url, access_token, credentials, token_url, timeout=10, retries=1)
    api.client()
    return api


def _forward_settings(
    ctx: typer.Context, url: str | None, token: str | None, timeout: float, forward_all: bool
) -> ForwardSettings | None:
    """The --forward-* options, checked; None when not forwarding."""
    from vwh.errors import UsageError

    if url is None:
        # By name: typer vendors its own click, so its ParameterSource is not click's.
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("forward_token", "forward_timeout", "forward_all")
            if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
        ]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise UsageError(f"{', '.join(given)} {verb} --forward-to URL")
        return None
    from vwh.forward import ForwardSettings

    return ForwardSettings(url, token or None, timeout, forward_all)


def _ui_options(host: str, port: int, no_ui: bool) -> UiOptions | None:
    import os

    from vwh.inspector import UiOptions

    return None if no_ui else UiOptions(host, port, os.environ.get("VWH_UI_TOKEN") or None)


def _read_respond(path: Path | None) -> bytes | None:
    if path is None:
        return None
    from vwh.errors import InputError
    from vwh.expect import nested_keys
    from vwh.payloads import read_json_object_file
    from vwh.webhook import parse_body

    raw = read_json_object_file(path)
    nested = nested_keys(parse_body(raw))
    if nested:
        names = ", ".join(repr(k) for k in nested)
        raise InputError(
            f"{path}: not one flat object: {names} {'nests' if len(nested) == 1 else 'nest'}"
            " (an object or array); the Send a webhook step reads only flat answers"
        )
    return raw


def _prepare_save_dir(path: Path | None) -> Path | None:
    if path is None:
        return None
    from vwh.errors import UsageError

    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".vwh-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to --save directory {path}: {exc.strerror}") from None
    return path


def register(app: typer.Typer) -> None:
    app.command()(listen)
