"""`vwh completion`: the script, loaded by a real bash, completes what vwh has."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import invoke, run_vwh, vwh_env


@pytest.fixture
def bash_with_vwh(tmp_path: Path) -> tuple[Path, Path]:
    """A `vwh` on PATH (this checkout's), and the script `vwh completion bash` printed."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "vwh"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vwh "$@"\n')
    exe.chmod(0o755)
    result = run_vwh("completion", "bash")
    assert result.returncode == 0 and result.stderr == ""
    script = tmp_path / "vwh.bash"
    script.write_text(result.stdout)
    return bindir, script


def complete(bash: tuple[Path, Path], line: str) -> list[str]:
    """What bash offers for `line` (the word after its last space), through the script."""
    bindir, script = bash
    words = line.split(" ")
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        '_vwh_completion vwh "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = vwh_env(PATH=f"{bindir}:/usr/bin:/bin")
    bash_exe = shutil.which("bash")
    assert bash_exe is not None
    result = subprocess.run(
        [bash_exe, "--norc", "--noprofile", "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_commands_options_kinds_and_check_names(
    bash_with_vwh: tuple[Path, Path],
) -> None:
    assert complete(bash_with_vwh, "vwh li") == ["listen"]
    assert set(complete(bash_with_vwh, "vwh c")) == {"check", "clear", "config", "completion"}
    assert complete(bash_with_vwh, "vwh listen --forward-t") == [
        "--forward-to",
        "--forward-token",
        "--forward-timeout",
    ]
    assert complete(bash_with_vwh, "vwh check http://x/ --only header") == ["header-case"]
    assert complete(bash_with_vwh, "vwh check http://x/ --skip valid,re") == ["valid,repeat"]
    assert complete(bash_with_vwh, "vwh fetch a") == ["account", "automation"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_that_calls_vwh_back(shell: str) -> None:
    result = invoke("completion", shell)
    assert result.exit_code == 0
    assert "_VWH_COMPLETE=complete_" + shell in result.stdout


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = invoke("completion", "tcsh")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr
