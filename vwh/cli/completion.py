"""`vwh completion`: the script that lets a shell complete vwh's commands and options."""

from __future__ import annotations

from enum import Enum

import typer

HELP = """Print a shell completion script: bash, zsh or fish.

Load it from your shell's start-up file:

  bash  eval "$(vwh completion bash)"  in ~/.bashrc
  zsh   eval "$(vwh completion zsh)"   in ~/.zshrc (after compinit)
  fish  vwh completion fish > ~/.config/fish/completions/vwh.fish

It completes commands, options, the kinds of `vwh fetch` and the checks of
`vwh check --only`, asking vwh itself each time (so it stays right after an upgrade).
"""


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def register(app: typer.Typer) -> None:
    @app.command("completion", help=HELP)
    def completion(
        shell: Shell = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish."),
    ) -> None:
        import sys

        from typer.completion import get_completion_script

        script = get_completion_script(
            prog_name="vwh", complete_var="_VWH_COMPLETE", shell=shell.value
        )
        sys.stdout.write(script + "\n")
