"""`vwh sign`: print the exact request `vwh replay` would send, ready to paste."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vwh.cli.replay import (
    cookie_option,
    header_option,
    query_option,
    set_option,
    to_option,
    token_cookie_option,
    token_header_option,
    token_option,
    token_query_option,
)

if TYPE_CHECKING:
    from vwh.delivery import OutgoingRequest
    from vwh.replay import Target


def sign(
    ctx: typer.Context,
    source: str = typer.Argument(
        ...,
        metavar="PAYLOAD",
        help="JSON file (or JSON lines: one request each), - for stdin; or a copied curl"
        " command (a file starting with `curl`), whose request is printed as it would be sent.",
    ),
    to: str = to_option(),
    token: str | None = token_option(),
    token_header: str | None = token_header_option(),
    token_query: str | None = token_query_option(),
    token_cookie: str | None = token_cookie_option(),
    header: list[str] = header_option(),
    query: list[str] = query_option(),
    cookie: list[str] = cookie_option(),
    set_: list[str] = set_option(),
    curl: bool = typer.Option(False, "--curl", help="Print a curl command."),
    httpie: bool = typer.Option(False, "--httpie", help="Print an HTTPie command."),
) -> None:
    """Print the request replay would send: raw HTTP, or a curl or HTTPie command.

    Nothing is sent. The token is printed as is: that is what makes it ready to paste.
    `vwh sign --curl copied.sh` prints the request of a copied curl command as
    `vwh replay --curl copied.sh` sends it.
    """
    from vwh.cli.replay import target_from
    from vwh.errors import UsageError
    from vwh.signing import render

    if curl and httpie:
        raise UsageError("choose one of --curl and --httpie")
    fmt = "curl" if curl else "httpie" if httpie else "raw"
    target = target_from(to, token, token_header, token_query, token_cookie, header, query, cookie)
    requests = _requests(ctx, source, target, set_)
    texts = [render(request, fmt) for request in requests]
    # Piped, raw HTTP is the exact bytes (several requests: pipelined); a terminal gets air.
    raw_piped = fmt == "raw" and not sys.stdout.isatty()
    sep, end = ("", "") if raw_piped else ("\n\n" if fmt == "raw" else "\n", "\n")
    sys.stdout.write(sep.join(texts) + end)


def _requests(
    ctx: typer.Context, source: str, target: Target, sets: list[str] | None
) -> list[OutgoingRequest]:
    """The request of a copied curl command, or one per body of a payload file."""
    import io

    from vwh.cli.output import Output
    from vwh.cli.replay import copied_delivery
    from vwh.cli.replay_view import _stdin, read_payloads
    from vwh.copied import looks_like_curl, parse_copied
    from vwh.errors import UsageError
    from vwh.payloads import load_sources

    data = _stdin().read() if source == "-" else _peek(source)
    label = "<stdin>" if source == "-" else source
    if data is not None and looks_like_curl(data):
        cwd = None if source == "-" else Path(source).parent
        return [copied_delivery(ctx, parse_copied(data, label, cwd), target, sets, label)]
    if sets:
        raise UsageError("--set replaces fields of a copied curl request: PAYLOAD is not one")
    if source == "-":
        loaded = load_sources(["-"], io.BytesIO(data or b""))
        loaded.raise_problems()
        payloads = loaded.payloads
    else:
        payloads = read_payloads(Output(), [source])
    return [target.request_for(p) for p in payloads]


def _peek(source: str) -> bytes | None:
    """The file's bytes, or None when it cannot be read (read_payloads then says why)."""
    try:
        return Path(source).read_bytes()
    except OSError:
        return None


def register(app: typer.Typer) -> None:
    app.command()(sign)
