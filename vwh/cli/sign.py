"""`vwh sign`: print the exact request `vwh replay` would send, ready to paste."""

from __future__ import annotations

import sys

import typer

from vwh.cli.replay import header_option, to_option, token_header_option, token_option


def sign(
    source: str = typer.Argument(
        ..., metavar="PAYLOAD", help="JSON file (or JSON lines: one request each), - for stdin."
    ),
    to: str = to_option(),
    token: str | None = token_option(),
    token_header: str = token_header_option(),
    header: list[str] = header_option(),
    curl: bool = typer.Option(False, "--curl", help="Print a curl command."),
    httpie: bool = typer.Option(False, "--httpie", help="Print an HTTPie command."),
) -> None:
    """Print the request replay would send: raw HTTP, or a curl or HTTPie command.

    Nothing is sent. The token is printed as is: that is what makes it ready to paste.
    """
    from vwh.cli.output import Output
    from vwh.cli.replay_view import read_payloads
    from vwh.errors import UsageError
    from vwh.replay import Target
    from vwh.signing import render

    if curl and httpie:
        raise UsageError("choose one of --curl and --httpie")
    fmt = "curl" if curl else "httpie" if httpie else "raw"
    output = Output()
    target = Target.from_options(to, token, token_header, header or [])
    payloads = read_payloads(output, [source])
    texts = [render(target.request_for(p), fmt) for p in payloads]
    # Piped, raw HTTP is the exact bytes (several requests: pipelined); a terminal gets air.
    raw_piped = fmt == "raw" and not sys.stdout.isatty()
    sep, end = ("", "") if raw_piped else ("\n\n" if fmt == "raw" else "\n", "\n")
    sys.stdout.write(sep.join(texts) + end)


def register(app: typer.Typer) -> None:
    app.command()(sign)
