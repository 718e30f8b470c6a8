"""The README documents what the code does: its exit codes and its commands."""

from __future__ import annotations

import re

from tests.helpers import ROOT
from vwh.cli.app import COMMANDS
from vwh.errors import ExitCode

README = (ROOT / "README.md").read_text()


def test_every_exit_code_is_documented() -> None:
    section = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def test_every_command_is_documented() -> None:
    for name in COMMANDS:
        assert f"vwh {name}" in README


def test_quick_start_is_two_commands_that_start_listen_and_run_the_tests() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.+?)\n```", section)
    assert commands[0].endswith("vwh listen --token s3cret")
    assert commands[1].endswith(".venv/bin/pytest")
