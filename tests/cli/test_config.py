"""`vwh.toml` and `vwh config` from the command line, in a temporary directory tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ListenerProcess, ThreadedServer, free_port, invoke, vwh_env

TOKEN = "s3cret-from-the-file-1234"


class Recorder:
    """A handler that answers 200 and keeps what it got: (path, headers, body)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.got.append((scope["path"], headers, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a vwh.toml at its root; tests run from a subdirectory of it."""
    root = tmp_path / "project"
    (root / "src" / "handlers").mkdir(parents=True)
    secret = root / ".vwh-token"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o600)
    return root


def write(root: Path, text: str) -> Path:
    path = root / "vwh.toml"
    path.write_text(text)
    return path


def vwh_in(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `vwh` run from `cwd`, as a user in that directory runs it."""
    return subprocess.run(
        [sys.executable, "-m", "vwh", *args],
        cwd=cwd,
        env=vwh_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings(cwd: Path, *args: str, **env: str) -> dict[str, dict[str, Any]]:
    """`vwh config --json ...` as {option: row}, run from `cwd`."""
    result = vwh_in(cwd, "config", "--json", *args, **env)
    assert result.returncode == 0, result.stderr
    return {row["option"]: row for row in json.loads(result.stdout)["settings"]}


@pytest.fixture
def receivers() -> Iterator[tuple[tuple[ThreadedServer, Recorder], ...]]:
    pairs = []
    for _ in range(3):
        recorder = Recorder()
        pairs.append((ThreadedServer(recorder), recorder))
    for server, _ in pairs:
        server.__enter__()
    try:
        yield tuple(pairs)
    finally:
        for server, _ in pairs:
            server.__exit__(None, None, None)


def test_found_from_a_subdirectory_and_used_by_replay_flag_beats_env_beats_file(
    project: Path, receivers: tuple[tuple[ThreadedServer, Recorder], ...]
) -> None:
    (file_srv, file_got), (env_srv, env_got), (flag_srv, flag_got) = receivers
    path = write(
        project,
        '[step]\ntoken-header = "Signature"\nheader = ["X-Env: test"]\n\n'
        f'[replay]\nto = "{file_srv.url}/hooks"\ntoken-file = ".vwh-token"\nno-retry = true\n',
    )
    here = project / "src" / "handlers"
    body = b'{"orderId": "AG-1:ORD-2"}'
    sent = here / "order.json"
    sent.write_bytes(body)

    rows = settings(here, "replay")
    assert rows["to"]["source"] == "file" and rows["to"]["where"] == f"{path}:6 [replay]"
    assert rows["token-header"]["where"] == f"{path}:2 [step]"
    assert rows["token"]["value"] == "••••34 (25 chars)"  # masked, from the file it names
    assert rows["token"]["where"] == f"{path}:7 [replay] (token-file .vwh-token)"
    assert rows["timeout"]["source"] == "default"

    assert vwh_in(here, "replay", "order.json").returncode == 0
    assert [(p, h["signature"], h["x-env"], b) for p, h, b in file_got.got] == [
        ("/hooks", TOKEN, "test", body)
    ]

    env = {"VWH_TARGET": f"{env_srv.url}/env"}
    assert settings(here, "replay", **env)["to"] == {
        "command": "replay",
        "option": "to",
        "value": f"{env_srv.url}/env",
        "source": "environment",
        "where": "VWH_TARGET",
    }
    assert vwh_in(here, "replay", "order.json", **env).returncode == 0
    assert [p for p, _, _ in env_got.got] == ["/env"]

    flag = ("--to", f"{flag_srv.url}/flag")
    assert settings(here, "replay", *flag, **env)["to"]["source"] == "flag"
    assert vwh_in(here, "replay", "order.json", *flag, **env).returncode == 0
    assert [p for p, _, _ in flag_got.got] == ["/flag"]
    assert len(file_got.got) == 1 and len(env_got.got) == 1

    result = vwh_in(here, "--no-config", "config", "--json", "replay")
    rows = {row["option"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["to"]["source"] == "default" and rows["to"]["value"] == "http://127.0.0.1:8787/"
    assert json.loads(result.stdout)["file"] is None


def test_listen_binds_the_port_from_the_file_and_checks_its_token(
    project: Path, tmp_path: Path
) -> None:
    port = free_port()
    path = write(project, f'[listen]\nport = {port}\ntoken-env = "VWH_TOKEN_STAGING"\n')
    proc = ListenerProcess(env=vwh_env(VWH_CONFIG=str(path), VWH_TOKEN_STAGING=TOKEN), port=port)
    proc.args = ["listen"]  # no --port: the file's
    with proc:
        url = f"http://127.0.0.1:{port}/"
        right = httpx.post(url, content=b"{}", headers={"Verifier-Token": TOKEN})
        wrong = httpx.post(url, content=b"{}", headers={"Verifier-Token": "nope"})
    assert (right.status_code, wrong.status_code) == (200, 401)
    assert f"http://127.0.0.1:{port}/" in proc.stderr


def test_vwh_config_shows_each_source_and_masks_secrets(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(project, "[listen]\nport = 9000\n\n[step]\ntoken-header = 'Signature'\n")
    monkeypatch.chdir(project / "src")
    monkeypatch.setenv("VWH_TOKEN", "env-token-abcdef")
    result = invoke("config", "listen", "--host", "::1")
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines()[1:]}
    assert result.stdout.splitlines()[0] == f"project file: {path}"
    assert lines["--host"].split()[2:] == ["::1", "flag"]
    assert lines["--token"].split()[2:] == ["••••ef", "(16", "chars)", "environment", "VWH_TOKEN"]
    assert lines["--port"].split()[2:] == ["9000", "file", f"{path}:2", "[listen]"]
    assert lines["--token-header"].split()[2:] == ["Signature", "file", f"{path}:5", "[step]"]
    assert lines["--delay"].split()[2:] == ["0.0", "default"]
    assert "env-token-abcdef" not in result.stdout

    overview = invoke("config")  # every command: only what is not a default
    assert overview.exit_code == 0
    rows = [line.split()[:2] for line in overview.stdout.splitlines()[1:]]
    assert ["listen", "--port"] in rows and ["check", "--token-header"] in rows
    assert ["listen", "--delay"] not in rows and ["history", "--store"] in rows  # VWH_STORE


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[listen]\nport = 9000\nprot = 1\n", 3, "[listen] prot: unknown key: `vwh listen`"),
        ("[listen]\nport = 70000\n", 2, "[listen] port: 70000 is not in the range 0<=x<=65535"),
        ('[check]\ntimeout = "slow"\n', 2, "[check] timeout: 'slow' is not a valid float"),
        ("[listen]\nforward-all = 'maybe'\n", 2, "[listen] forward-all: 'maybe' is not a valid"),
        ("[replay]\nto = ['a', 'b']\n", 2, "[replay] to: expected a single value"),
        ("\n[lisen]\nport = 1\n", 2, "unknown table [lisen]: use [step] or a command's name"),
        ("[step]\nport = 9000\n", 2, "[step] port: not a [step] setting"),
        ('[listen]\ntoken = "abc"\n', 2, "[listen] token: a secret in clear; move it out"),
        ('[listen]\nforward-token = "abc"\n', 2, 'forward-token-env = "VWH_FORWARD_TOKEN"'),
        ("[step]\nheader = ['Authorization: Bearer x']\n", 2, "value of Authorization is a"),
        ("[listen]\nport = \n", 2, "not valid TOML"),
    ],
)
def test_a_mistake_in_the_file_is_one_line_with_file_line_and_key(
    project: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, message: str
) -> None:
    path = write(project, text)
    monkeypatch.chdir(project / "src")
    for args in (("sample", "order"), ("config",)):  # whichever command runs
        result = invoke(*args)
        assert result.exit_code == 2, result
        assert result.stderr.startswith(f"vwh: error: {path}:{line}: ")
        assert message in result.stderr and result.stderr.count("\n") == 1
        assert result.stdout == ""
    assert invoke("--no-config", "sample", "order").exit_code == 0
    assert invoke("listen", "--help").exit_code == 0  # help never judges the file


def test_a_clear_secret_says_how_to_move_it(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project, '[check]\ntoken = "abc"\n')
    monkeypatch.chdir(project)
    stderr = invoke("check", "http://127.0.0.1:1/").stderr
    assert 'token-env = "VWH_TOKEN"' in stderr and 'token-file = "~/.config/vwh/token"' in stderr
    assert "abc" not in stderr


def test_a_token_file_others_can_read_is_refused_when_it_is_used(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(project, '[check]\ntoken-file = ".vwh-token"\ntimeout = 5\n')
    (project / ".vwh-token").chmod(0o640)
    monkeypatch.chdir(project)
    result = invoke("check", "http://127.0.0.1:1/")
    secret = project / ".vwh-token"
    assert result.exit_code == 2
    assert result.stderr == (
        f"vwh: error: {path}:2: [check] token-file: {secret} can be read by others"
        f" (mode 0640): chmod 600 {secret}\n"
    )
    # A flag (or the environment) gives the token: the file's is never read.
    port = free_port()
    given = invoke("check", f"http://127.0.0.1:{port}/", "--token", "t", "--only", "valid")
    assert given.exit_code == 6  # nothing listens there: the checks ran


def test_config_and_vwh_config_pick_another_file(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, "[listen]\nport = 9000\n")
    other = tmp_path / "elsewhere.toml"
    other.write_text("[listen]\nport = 9100\n")
    monkeypatch.chdir(project)

    def port(*args: str) -> Any:
        result = invoke(*args, "config", "--json", "listen")
        assert result.exit_code == 0, result.stderr
        rows = {r["option"]: r for r in json.loads(result.stdout)["settings"]}
        return rows["port"]["value"], rows["port"]["where"]

    assert port() == (9000, f"{project / 'vwh.toml'}:2 [listen]")
    assert port("--config", str(other)) == (9100, f"{other}:2 [listen]")
    monkeypatch.setenv("VWH_CONFIG", str(other))
    assert port() == (9100, f"{other}:2 [listen]")
    assert port("--no-config") == (8787, None)
    missing = invoke("--config", str(tmp_path / "nope.toml"), "sample", "order")
    assert missing.exit_code == 2 and "nope.toml (--config): no such file" in missing.stderr
    both = invoke("--config", str(other), "--no-config", "sample", "order")
    assert both.exit_code == 2 and "choose one" in both.stderr


def test_no_file_anywhere_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("config")
    assert result.exit_code == 0
    assert result.stdout.startswith("project file: none (no vwh.toml here")
    assert os.environ["VWH_STORE"] in result.stdout  # the environment still counts
