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
    assert commands[0].endswith("export VWH_TOKEN=s3cret && .venv/bin/vwh listen")
    assert all("--token" not in c for c in commands)  # `ps` shows a command line
    assert commands[1].endswith(".venv/bin/pytest")


def test_readme_and_check_help_count_the_checks_alike() -> None:
    """Seven deliveries and a timing verdict (and, asked for, a response-data verdict),
    in the README and in `vwh check --help`."""
    from tests.helpers import invoke
    from vwh.check import CHECKS

    assert [c.name for c in CHECKS[7:]] == ["timing", "response-data"]
    assert "check 9, `response-data`" in README
    assert "Seven deliveries and a timing verdict" in README
    assert "Eight checks" not in README
    help_text = " ".join(invoke("check", "--help").stdout.split())
    assert "7 test deliveries" in help_text and "Seven deliveries" in help_text


def test_the_project_file_example_is_a_valid_project_file(tmp_path, monkeypatch) -> None:
    """The README's vwh.toml is read and checked as a real one."""
    from tests.helpers import invoke

    section = README.split("## Project file", 1)[1].split("\n## ", 1)[0]
    example = re.findall(r"```toml\n(.+?)```", section, re.DOTALL)[0]
    (tmp_path / "vwh.toml").write_text(example)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VWH_TOKEN_STAGING", "staging-token")
    result = invoke("config", "--json")
    assert result.exit_code == 0, result.stderr
