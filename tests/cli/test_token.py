"""`vwh token` end to end, against the fake Vendasta under real uvicorn."""

from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path

from tests.fakes.vendasta import ES256, RS256, RunningFake
from tests.helpers import invoke, run_vwh, vwh_env
from vwh.errors import ExitCode

ORDER_ID = "AG-7PQTGLLXQQ:ORD-S548DKHMKX"


def test_prints_bearer_and_the_token(vendasta: RunningFake) -> None:
    result = invoke("token", "order:read", "sales.account")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1
    kind, token = result.stdout.split()
    assert kind == "Bearer"
    assert token in vendasta.fake.tokens
    assert vendasta.fake.tokens[token].scopes == {"order:read", "sales.account"}
    assert vendasta.fake.assertions[0]["claims"]["scope"] == "order:read sales.account"
    assert token not in result.stderr


def test_default_scopes(vendasta: RunningFake) -> None:
    assert invoke("token").exit_code == 0
    assert vendasta.fake.assertions[0]["claims"]["scope"] == "profile email"


def test_json_adds_scopes_and_expiry(vendasta: RunningFake) -> None:
    result = invoke("token", "order:read", "--json")
    data = json.loads(result.stdout)
    assert data["token_type"] == "Bearer"
    assert data["access_token"] in vendasta.fake.tokens
    assert data["scopes"] == ["order:read"]
    assert 3590 <= data["expires_in"] <= 3600
    assert data["expires_at"].endswith("+00:00")


def test_the_token_is_cached_and_shared_with_fetch(
    vendasta: RunningFake, isolated_env: Path
) -> None:
    first = invoke("token", "order:read").stdout
    assert invoke("token", "order:read").stdout == first
    assert invoke("fetch", ORDER_ID).exit_code == 0  # fetch asks for order:read too
    assert vendasta.fake.mints == 1
    (cached,) = (isolated_env / ".cache/vwh/tokens").glob("*.json")
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600


def test_a_new_token_after_expiry(vendasta: RunningFake) -> None:
    vendasta.fake.token_lifetime = 1
    first = invoke("token", "order:read").stdout
    assert invoke("token", "order:read").stdout == first
    time.sleep(0.6)
    assert invoke("token", "order:read").stdout != first
    assert vendasta.fake.mints == 2


def test_es256(vendasta: RunningFake) -> None:
    result = invoke("token", "order:read", "--credentials", str(ES256))
    assert result.exit_code == 0, result.stderr
    assert vendasta.fake.assertions[0]["header"] == {
        "alg": "ES256",
        "kid": "vwh-test-es256-key-1",
        "typ": "JWT",
    }


def test_check_shows_whom_the_token_belongs_to(vendasta: RunningFake) -> None:
    result = invoke("token", "--check")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "sub: throwaway-rs256@vwh-fixtures.iam.example.invalid" in lines
    assert "scopes: profile email" in lines
    assert lines[-1] == "expires: in 59 min"
    for token in vendasta.fake.tokens:
        assert token not in result.stdout + result.stderr


def test_check_json(vendasta: RunningFake) -> None:
    data = json.loads(invoke("token", "--check", "--json").stdout)
    assert data["user_info"]["email"] == "throwaway-rs256@vwh-fixtures.iam.example.invalid"
    assert data["scopes"] == ["profile", "email"]
    assert "access_token" not in data


def test_check_a_token_minted_elsewhere(vendasta: RunningFake) -> None:
    token = vendasta.fake.issue_token(["profile"])
    result = invoke("token", "--check", "--access-token", token)
    assert result.exit_code == 0, result.stderr
    assert "sub: elsewhere" in result.stdout
    assert token not in result.stdout + result.stderr


def test_check_a_token_without_profile_scope(vendasta: RunningFake) -> None:
    result = invoke("token", "order:read", "--check")
    assert result.exit_code == ExitCode.FORBIDDEN
    assert "lacks the scope to read user-info: one of profile, email, openid" in result.stderr


def test_an_access_token_is_printed_back(vendasta: RunningFake) -> None:
    result = invoke("token", "--access-token", "Bearer abc.def")
    assert result.stdout == "Bearer abc.def\n"


def test_the_token_endpoint_refusal(vendasta: RunningFake) -> None:
    vendasta.fake.register(RS256, granted=["profile"])
    result = invoke("token", "order:read")
    assert result.exit_code == ExitCode.UNAUTHORIZED
    host = vendasta.url.removeprefix("http://")
    assert result.stderr == (
        f"vwh: error: the token endpoint {host} refused the assertion: invalid_scope:"
        " scope not granted to this account: order:read (HTTP 400 Bad Request)\n"
    )
    assert result.stdout == ""


def test_several_default_files(vendasta: RunningFake, isolated_env: Path, monkeypatch) -> None:
    monkeypatch.delenv("VWH_CREDENTIALS")
    directory = isolated_env / ".config/api-gateway"
    directory.mkdir(parents=True)
    shutil.copy(RS256, directory / "one.json")
    shutil.copy(ES256, directory / "two.json")
    result = invoke("token")
    assert result.exit_code == ExitCode.CREDENTIALS
    assert "several credentials files" in result.stderr


def test_in_a_subprocess_like_a_script(vendasta: RunningFake) -> None:
    env = vwh_env(VWH_CREDENTIALS=str(RS256), VWH_TOKEN_URL=vendasta.token_url)
    result = run_vwh("token", "order:read", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Bearer fake-at-")
    assert result.stderr == ""


def test_a_slow_token_endpoint(vendasta: RunningFake) -> None:
    vendasta.fake.token_delay = 0.5
    result = invoke("token", "--timeout", "0.2")
    assert result.exit_code == ExitCode.TIMEOUT
    assert result.stderr.endswith("did not answer within 0.2 s\n")


def _as_a_plain_user() -> list[str]:
    """Root reads any file; without that power a mode-000 file is unreadable to it too."""
    import os

    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to test permissions as root"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_an_unreadable_credentials_file_is_a_credentials_error(
    tmp_path: Path, isolated_env: Path
) -> None:
    import subprocess
    import sys

    unreadable = tmp_path / "key.json"
    shutil.copy(RS256, unreadable)
    unreadable.chmod(0)
    default_dir = isolated_env / ".config" / "api-gateway"
    default_dir.mkdir(parents=True)
    shutil.copy(RS256, default_dir / "key.json")
    for args in (("--credentials", str(unreadable)), ()):
        if not args:
            default_dir.chmod(0)  # the default directory itself cannot be listed
        result = subprocess.run(
            [*_as_a_plain_user(), sys.executable, "-m", "vwh", "token", *args],
            capture_output=True,
            text=True,
            env=vwh_env(),
            timeout=60,
        )
        assert result.returncode == ExitCode.CREDENTIALS, result.stderr
        assert result.stderr.count("\n") == 1
        assert "cannot read (Permission denied)" in result.stderr
    default_dir.chmod(0o700)
