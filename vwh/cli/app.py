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
    "config": (
        "config",
        "Print the effective settings and where each came from (flag, environment, file).",
    ),
    "completion": ("completion", "Print a shell completion script: bash, zsh or fish."),
}
_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(TyperGroup):
    """Builds a command only when it is run or asked for its help.

    Typer inspects every option of every command when it builds a group; doing that
    for one command instead of all keeps every `vwh ...` start fast.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built: dict[str, Any] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self._built:
            module = importlib.import_module(f"vwh.cli.{COMMANDS[cmd_name][0]}")
            sub = typer.Typer(
                rich_markup_mode=None, add_completion=False, context_settings=_SETTINGS
            )
            module.register(sub)
            command = typer.main.get_group(sub).commands[cmd_name]
            _plain_metavars(command)
            self._built[cmd_name] = command
        return self._built[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Also notes the command's own arguments: the root needs to see a `--help`."""
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta["vwh.help"] = any(arg in ("-h", "--help") for arg in rest)
        return name, command, rest

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


def _plain_metavars(command: Any) -> None:
    """A required argument as `URL` in the usage line, as Click writes it, not Typer's `{URL}`."""
    for param in command.params:
        if getattr(param, "param_type_name", "") == "argument" and param.required:
            make = param.make_metavar

            def plain(ctx: Any, *, usage: bool = False, _make: Any = make) -> str:
                return str(_make(ctx, usage=usage)).removeprefix("{").removesuffix("}")

            param.make_metavar = plain


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
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", "-V", callback=_show_version, is_eager=True, help="Show the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar="VWH_DEBUG", help="Show tracebacks of errors (or VWH_DEBUG=1)."
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        metavar="FILE",
        envvar="VWH_CONFIG",
        help="Project file to use (or VWH_CONFIG) [default: vwh.toml here or in a parent].",
    ),
    no_config: bool = typer.Option(False, "--no-config", help="Ignore any project file."),
) -> None:
    """Build, test and debug Vendasta automation webhooks."""
    if ctx.invoked_subcommand is None or ctx.resilient_parsing or ctx.meta.get("vwh.help"):
        return  # help is shown without reading (or judging) the project file
    from vwh.cli.project import apply_project_file

    apply_project_file(ctx, config, no_config)


def _help_hint(exc: Exception) -> str:
    """` (see 'vwh listen --help')` for a usage error of a command."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None or not hasattr(exc, "cmd"):
        return ""
    return f" (see '{ctx.command_path} --help')"


def _debug_wanted() -> bool:
    return "--debug" in sys.argv[1:] or os.environ.get("VWH_DEBUG", "") not in ("", "0")


def main() -> None:
    """Run the CLI; every error ends as one line on stderr and its exit code."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    if os.environ.get("_VWH_COMPLETE"):
        from typer.completion import completion_init

        completion_init()  # Typer's completion classes, which its scripts talk to
    try:
        code = app(prog_name="vwh", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ClickException as exc:  # bad usage: one line, as every other error
        from vwh.sanitize import inert

        message = "; ".join(line for line in exc.format_message().splitlines() if line)
        hint = _help_hint(exc)
        print(f"vwh: error: {inert(message)}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("vwh: aborted", file=sys.stderr)
        sys.exit(int(ExitCode.FAILURE))
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
