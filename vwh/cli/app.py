"""The `vwh` entry point: the Typer app, command registration and the error edge.

Command modules import only typer and light vwh modules at the top; anything heavy
(Rich, Starlette, uvicorn, httpx, crypto) is imported inside the command that needs
it, so `vwh --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from vwh import __version__
from vwh.errors import ExitCode, VwhError

# Each module has `register(app)`; this order is the order of `vwh --help`.
COMMAND_MODULES = (
    "listen",
    "history",
    "replay",
    "sign",
    "sample",
    "check",
    "fetch",
    "token",
)

app = typer.Typer(
    name="vwh",
    help="Build, test and debug Vendasta automation webhooks.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"vwh {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar="VWH_DEBUG", help="Show tracebacks of errors (or VWH_DEBUG=1)."
    ),
) -> None:
    """Build, test and debug Vendasta automation webhooks."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"vwh.cli.{_name}").register(app)


def _debug_wanted() -> bool:
    return "--debug" in sys.argv[1:] or os.environ.get("VWH_DEBUG", "") not in ("", "0")


def main() -> None:
    """Run the CLI; every VwhError ends as one line on stderr and its exit code."""
    try:
        app()
    except VwhError as exc:
        if _debug_wanted():
            raise
        print(f"vwh: error: {exc}", file=sys.stderr)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        print("vwh: interrupted", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the last resort: never a traceback unless asked
        if _debug_wanted():
            raise
        print(
            f"vwh: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.FAILURE))
