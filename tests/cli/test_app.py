"""The CLI's front door: help, version, lazy commands, and the error edge."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import invoke, run_vwh
from vwh import __version__
from vwh.cli.app import COMMANDS, LazyGroup


def test_version() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"vwh {__version__}\n")


def test_help_lists_every_command() -> None:
    result = run_vwh("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_help_matching_the_listing(name: str) -> None:
    """The static one-line help in `vwh --help` is the command's own first help line."""
    command = LazyGroup().get_command(None, name)
    assert command is not None
    first_line = (command.help or "").strip().splitlines()[0]
    assert first_line == COMMANDS[name][1]
    assert invoke(name, "--help").exit_code == 0


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys; sys.argv = ['vwh', '--help']\n"
        "from vwh.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('vwh.cli.', 'rich', 'httpx',"
        " 'starlette', 'uvicorn', 'jwt', 'cryptography', 'pydantic'))"
        " and m != 'vwh.cli.app']\n"
        "print(heavy, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stderr.strip() == "[]"


def test_unknown_command_is_a_usage_error() -> None:
    result = invoke("nope")
    assert result.exit_code == 2
    assert "No such command 'nope'" in result.stderr
