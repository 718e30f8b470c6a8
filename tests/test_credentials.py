"""Service-account credentials files: loading, checking, finding the default one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fakes.vendasta import CREDENTIALS, ES256, RS256
from vwh.credentials import (
    env_for_token_url,
    find_default_credentials,
    load_credentials,
    parse_credentials,
)
from vwh.errors import CredentialsError, ExitCode


def private_key_of(path: Path) -> str:
    return json.loads(path.read_text())["private_key"]


@pytest.mark.parametrize(
    ("path", "alg", "env"), [(RS256, "RS256", "prod"), (ES256, "ES256", "demo")]
)
def test_loads_a_good_file(path: Path, alg: str, env: str) -> None:
    account = load_credentials(path)
    assert account.alg == alg
    assert account.kid == json.loads(path.read_text())["assertionHeaderData"]["kid"]
    assert account.iss == account.sub == account.client_email
    assert account.aud.startswith("https://iam-")
    assert account.env == env
    assert account.path == path


def test_the_private_key_is_never_in_the_repr() -> None:
    account = load_credentials(RS256)
    body = private_key_of(RS256).splitlines()[1]
    assert "PRIVATE KEY" not in repr(account)
    assert body not in repr(account)
    assert "signing_key" not in repr(account)


def test_a_missing_file_names_the_file() -> None:
    with pytest.raises(CredentialsError) as err:
        load_credentials(CREDENTIALS / "nope.json")
    assert "nope.json: no such file" in str(err.value)
    assert err.value.exit_code == ExitCode.CREDENTIALS


def test_a_directory_is_not_a_file() -> None:
    with pytest.raises(CredentialsError, match="is a directory"):
        load_credentials(CREDENTIALS)


def test_not_json_says_where() -> None:
    with pytest.raises(CredentialsError) as err:
        load_credentials(CREDENTIALS / "not-json.txt")
    assert "not-json.txt: not JSON (Expecting value at line 1 column 1)" in str(err.value)


def test_missing_fields_are_listed() -> None:
    with pytest.raises(CredentialsError) as err:
        load_credentials(CREDENTIALS / "missing-fields.json")
    message = str(err.value)
    assert "missing-fields.json: missing or empty: token_uri, assertionPayloadData.aud" in message
    assert "assertionPayloadData.sub" in message


def test_an_unusable_key_is_named_but_not_shown() -> None:
    with pytest.raises(CredentialsError) as err:
        load_credentials(CREDENTIALS / "bad-key.json")
    assert "bad-key.json: private_key is not a usable PEM private key" in str(err.value)
    assert "Tm90IGEga2V5" not in str(err.value)


def test_a_key_that_does_not_suit_the_alg() -> None:
    with pytest.raises(CredentialsError) as err:
        load_credentials(CREDENTIALS / "alg-mismatch.json")
    assert "alg is ES256 but private_key is not a P-256 EC key" in str(err.value)
    assert private_key_of(RS256).splitlines()[1] not in str(err.value)


def good() -> dict:
    return json.loads(RS256.read_text())


def test_an_unsupported_alg() -> None:
    data = good()
    data["assertionHeaderData"]["alg"] = "HS256"
    with pytest.raises(CredentialsError, match="alg is 'HS256'; vwh signs with RS256 or ES256"):
        parse_credentials(data)


def test_not_a_service_account() -> None:
    data = good()
    data["type"] = "authorized_user"
    with pytest.raises(CredentialsError, match="not 'service_account'"):
        parse_credentials(data)


def test_not_an_object() -> None:
    with pytest.raises(CredentialsError, match="not a JSON object"):
        parse_credentials(["a list"])


def test_token_uri_must_be_a_url() -> None:
    data = good()
    data["token_uri"] = "sso-api-prod.apigateway.co/oauth2/token"
    with pytest.raises(CredentialsError, match="is not an http"):
        parse_credentials(data)


def test_optional_fields_fall_back() -> None:
    data = good()
    del data["client_email"], data["private_key_id"]
    account = parse_credentials(data)
    assert account.client_email == data["assertionPayloadData"]["iss"]
    assert account.private_key_id == data["assertionHeaderData"]["kid"]


def test_env_for_token_url() -> None:
    assert env_for_token_url("https://sso-api-prod.apigateway.co/oauth2/token") == "prod"
    assert env_for_token_url("https://SSO-API-DEMO.apigateway.co/oauth2/token") == "demo"
    assert env_for_token_url("http://127.0.0.1:8080/oauth2/token") is None


def test_default_dir_empty_means_none(isolated_env: Path) -> None:
    assert find_default_credentials() is None
    (isolated_env / ".config/api-gateway").mkdir(parents=True)
    assert find_default_credentials() is None


def test_default_dir_with_one_file_uses_it(isolated_env: Path) -> None:
    directory = isolated_env / ".config/api-gateway"
    directory.mkdir(parents=True)
    shutil.copy(ES256, directory / "partner.json")
    (directory / "notes.txt").write_text("not a candidate")
    assert find_default_credentials() == directory / "partner.json"


def test_default_dir_with_several_files_asks_to_choose(isolated_env: Path) -> None:
    directory = isolated_env / ".config/api-gateway"
    directory.mkdir(parents=True)
    shutil.copy(ES256, directory / "a.json")
    shutil.copy(RS256, directory / "b.json")
    with pytest.raises(CredentialsError, match=r"several credentials files .* --credentials FILE"):
        find_default_credentials()
