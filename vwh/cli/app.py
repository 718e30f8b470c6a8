"""The `vwh` entry point: the Typer app, command registration and the error edge.

Command modules import only typer and light vwh modules at the top; anything heavy
(Rich, Starlette, uvicorn, httpx, crypto) is imported inside the command that needs
it, so `vwh --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from vwh import __version__
from vwh.errors import ExitCode, VwhError

# name: (module in vwh/cli/ whose `register(app)` defines it, one-line help).
# `vwh --help` lists these without importing a single command module; a test
# keeps each line equal to the command's own help.
COMMANDS: dict[str, tuple[str, str]] = {
    "listen": ("listen", "Receive webhooks: verify the token, keep every request, show them live."),
    "inspect": (
        "inspect",
        "Browse kept requests in a web page, and replay them (no listener needed).",
    ),
    "history": ("history", "List kept requests, newest first."),
    "show": ("history", "Show one kept request in full: headers (secrets masked) and body."),
    "export": (
        "export",
        "Write kept requests, oldest first, as NDJSON for vwh replay or as HAR 1.2.",
    ),
    "clear": ("clear", "Delete kept requests: all of them, or those older than --older-than."),
    "replay": ("replay", "Send webhook bodies to a handler as Vendasta would, resends included."),
    "sign": ("sign", "Print the request replay would send: raw HTTP, or a curl or HTTPie command."),
    "sample": (
        "sample",
        "Print a webhook body like Vendasta's, e.g. `vwh sample order > order.json`.",
    ),
    "check": (
        "check",
        "Send a handler 7 test deliveries and grade its answers the way Vendasta treats them.",
    ),
    "fetch": (
        "fetch",
        "Fetch orders, accounts, businesses, users and automations from Vendasta's API.",
    ),
    "token": (
        "token",
        "Print an access token as `Bearer <token>`, as Vendasta's minting tool does.",
    ),
    "trigger": (
        "trigger",
        "Start an automation run through Vendasta's API; --wait shows the webhook it causes.",
    ),
}
_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(TyperGroup):
    """Builds a command only when it is run or asked for its help.

    Typer inspects every option of every command when it builds a group; doing that
    for one command instead of all keeps every `vwh ...` start fast.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"vwh.cli.{COMMANDS[cmd_name][0]}")
        sub = typer.Typer(rich_markup_mode=None, add_completion=False, context_settings=_SETTINGS)
        module.register(sub)
        return typer.main.get_group(sub).commands[cmd_name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


app = typer.Typer(
    name="vwh",
    cls=LazyGroup,
    help="Build, test and debug Vendasta automation webhooks.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings=_SETTINGS,
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


def _debug_wanted() -> bool:
    return "--debug" in sys.argv[1:] or os.environ.get("VWH_DEBUG", "") not in ("", "0")


def main() -> None:
    """Run the CLI; every VwhError ends as one line on stderr and its exit code."""
    try:
        app()
    except VwhError as exc:
        if _debug_wanted():
            raise
        from vwh.sanitize import inert  # a message can quote the outside world

        print(f"vwh: error: {inert(str(exc))}", file=sys.stderr)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        print("vwh: interrupted", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the last resort: never a traceback unless asked
        if _debug_wanted():
            raise
        from vwh.sanitize import inert

        print(
            f"vwh: unexpected error: {type(exc).__name__}: {inert(str(exc))}"
            " (run with --debug for details)",
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.FAILURE))
