"""The CLI's front door: help, version, lazy commands, and the error edge."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import invoke, run_vwh
from vwh import __version__
from vwh.cli.app import COMMANDS, LazyGroup


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = invoke(flag)
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "No such command 'nope'. (see 'vwh --help')"),
        (
            ("show", "abc"),
            "Invalid value for 'ID': 'abc' is not a valid int. (see 'vwh show --help')",
        ),
        (("listen", "--nope"), "No such option: --nope"),
        (("check",), "Missing argument 'URL'. (see 'vwh check --help')"),
        (("history", "--limit"), "Option '--limit' requires an argument."),
        (("sample", "order", "extra"), "Got unexpected extra argument(s) (extra)"),
        (("show", "\x1b]0;pwned\x07"), "'\\x1b]0;pwned\\x07' is not a valid int"),
    ],
)
def test_every_usage_error_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run_vwh(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("vwh: error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


def test_usage_lines_name_the_arguments_as_they_are_taken() -> None:
    """`URL`, not Typer's `{url}`; `[PAYLOAD]...` for many payloads."""
    usage = {name: invoke(name, "--help").stdout.splitlines()[0] for name in ("check", "replay")}
    assert usage == {
        "check": "Usage: vwh check [OPTIONS] URL",
        "replay": "Usage: vwh replay [OPTIONS] [PAYLOAD]...",
    }
    listen = " ".join(invoke("listen", "--help").stdout.split())
    assert "a larger one is answered 413 and kept without its body" in listen
