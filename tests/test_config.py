"""The project file as a library: found upwards, read with each key's line, secrets named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vwh.config import (
    Setting,
    find_project_file,
    is_secret_option,
    load_project_file,
    mask_entry,
    secret_entry,
    secret_ref,
)
from vwh.errors import ConfigError, ExitCode

FILE = """\
# the team's settings
[step]
token-header = "Signature"
header = [
  "X-Env: test",
]

[listen]
"port" = 9000
token-env = "VWH_TOKEN_STAGING"
"""


def test_found_in_the_nearest_parent_and_not_above_a_nearer_one(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (tmp_path / "vwh.toml").write_text(FILE)
    assert find_project_file(deep) == tmp_path / "vwh.toml"
    (tmp_path / "a" / "vwh.toml").write_text("")
    assert find_project_file(deep) == tmp_path / "a" / "vwh.toml"
    (deep / "vwh.toml").mkdir()  # a directory of that name is not the file
    assert find_project_file(deep) == tmp_path / "a" / "vwh.toml"


def test_each_key_knows_its_table_and_line(tmp_path: Path) -> None:
    path = tmp_path / "vwh.toml"
    path.write_text(FILE)
    project = load_project_file(path)
    lines = {(s.table, s.key): s.line for t in project.tables.values() for s in t.values()}
    assert lines == {
        ("step", "token-header"): 3,
        ("step", "header"): 4,
        ("listen", "port"): 9,
        ("listen", "token-env"): 10,
    }
    assert project.tables["step"]["header"].value == ["X-Env: test"]
    assert project.table_lines == {"step": 2, "listen": 8}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[listen]\nport = 9000\nport = 9001\n", ":3: not valid TOML: "),
        ("[listen]\nport = \n", ":2: not valid TOML: "),
        ('token-header = "X"\n', ":1: token-header: a key outside any table"),
    ],
)
def test_a_broken_file_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "vwh.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_project_file(path)
    assert str(caught.value).startswith(f"{path}{expected}")
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("token", True),
        ("forward-token", True),
        ("access-token", True),
        ("api-key", True),
        ("token-header", False),
        ("token-query", False),
        ("token-cookie", False),
        ("credentials", False),
        ("port", False),
    ],
)
def test_which_options_are_secrets(name: str, secret: bool) -> None:
    assert is_secret_option(name) is secret


def test_header_entries_that_carry_a_secret_are_named_and_masked() -> None:
    assert secret_entry("Authorization: Bearer abc") == "Authorization"
    assert secret_entry("access_token=abc") == "access_token"
    assert secret_entry("X-Env: test") is None
    assert mask_entry("X-Api-Key: 0123456789abcdef") == "X-Api-Key: ••••ef (16 chars)"
    assert mask_entry("X-Env: test") == "X-Env: test"


def _setting(tmp_path: Path, key: str, value: object) -> Setting:
    return Setting(tmp_path / "vwh.toml", "listen", key, value, 7)


def test_a_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = secret_ref(_setting(tmp_path, "token-env", "VWH_TOKEN_STAGING"))
    assert found is not None
    name, ref = found
    assert name == "token"
    with pytest.raises(ConfigError, match=r"vwh.toml:7: \[listen\] token-env: .* is not set"):
        ref.resolve()
    monkeypatch.setenv("VWH_TOKEN_STAGING", "from-env")
    assert ref.resolve() == "from-env"
    assert secret_ref(_setting(tmp_path, "port-env", "X")) is None  # port is no secret
    with pytest.raises(ConfigError, match="not the token") as caught:
        secret_ref(_setting(tmp_path, "token-env", "s3cret-token!"))  # the token, by mistake
    assert "s3cret" not in str(caught.value)


def test_a_secret_from_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    os.chmod(secret, 0o644)
    found = secret_ref(_setting(tmp_path, "token-file", "token"))  # relative to vwh.toml
    assert found is not None
    with pytest.raises(ConfigError, match=r"mode 0644\): chmod 600 .*token$"):
        found[1].resolve()
    os.chmod(secret, 0o600)
    assert found[1].resolve() == "from-file"
    missing = secret_ref(_setting(tmp_path, "token-file", "nope"))
    assert missing is not None
    with pytest.raises(ConfigError, match="no such file"):
        missing[1].resolve()
