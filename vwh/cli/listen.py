"""`vwh listen`: receive, verify, keep and show webhooks."""

from __future__ import annotations

from pathlib import Path

import typer

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def listen(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8787, min=0, max=65535, help="Port to listen on (0 picks one)."),
    token: str | None = typer.Option(
        None, envvar="VWH_TOKEN", help="Verifier token to require (or VWH_TOKEN)."
    ),
    token_header: str = typer.Option("Verifier-Token", help="Header that carries the token."),
    reject_status: int = typer.Option(
        401, min=400, max=499, help="Status for a wrong or missing token."
    ),
    status: int = typer.Option(200, min=200, max=599, help="Status to answer deliveries with."),
    delay: float = typer.Option(0.0, min=0.0, help="Seconds to wait before answering."),
    fail_first: int = typer.Option(
        0, min=0, help="Answer 503 to the first N deliveries of each distinct body."
    ),
    respond: Path | None = typer.Option(
        None, help="JSON file to answer deliveries with.", dir_okay=False
    ),
    max_body: int = typer.Option(1024 * 1024, min=1, help="Largest body kept, in bytes."),
    store: Path | None = typer.Option(
        None, envvar="VWH_STORE", help="SQLite store (default: your data dir; or VWH_STORE)."
    ),
    save: Path | None = typer.Option(
        None, file_okay=False, help="Also write each accepted body to this directory."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per request."),
) -> None:
    """Receive webhooks: verify the token, keep every request, show them live."""
    from vwh.cli.listen_run import run_listen
    from vwh.receiver import ReceiverSettings

    settings = ReceiverSettings(
        token=token or None,
        token_header=token_header,
        reject_status=reject_status,
        status=status,
        delay=delay,
        fail_first=fail_first,
        respond_body=_read_respond(respond),
        max_body=max_body,
        save_dir=_prepare_save_dir(save),
    )
    run_listen(settings, host, port, store, json_out)


def _read_respond(path: Path | None) -> bytes | None:
    if path is None:
        return None
    from vwh.payloads import read_json_object_file

    return read_json_object_file(path)


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
