"""`vwh config`: the settings a command would run with, and where each came from."""

from __future__ import annotations

from typing import Any

import typer

HELP = """Print the effective settings and where each came from (flag, environment, file).

Without COMMAND: every setting the project file or the environment gives, for every
command. With COMMAND (and its options, as you would type them): all of that
command's settings, e.g. `vwh config listen --port 9001`. Secrets are masked.
"""


def register(app: typer.Typer) -> None:
    @app.command(
        "config",
        help=HELP,
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            "allow_interspersed_args": False,
        },
    )
    def config(
        ctx: typer.Context,
        command: str | None = typer.Argument(
            None, metavar="[COMMAND [OPTIONS]...]", show_default=False, help="A command."
        ),
        json_out: bool = typer.Option(False, "--json", help="The settings as one JSON document."),
    ) -> None:
        from vwh.cli.config_view import effective_settings, plain_lines
        from vwh.cli.output import Output
        from vwh.cli.project import project_state
        from vwh.errors import UsageError

        root: Any = ctx.find_root()
        names = root.command.list_commands(root)
        if command is not None and command not in names:
            raise UsageError(f"no command {command!r}: choose from {', '.join(names)}")
        state = project_state(ctx)
        rows = effective_settings(root, state, [command] if command else names, ctx.args)
        if command is None:
            rows = [row for row in rows if row.source != "default"]
        out = Output(json_mode=json_out)
        if json_out:
            file: Any = str(state.path) if state.path else None
            out.json({"file": file, "settings": [row.to_json() for row in rows]})
            return
        for line in plain_lines(state, rows):
            out.line(line)
