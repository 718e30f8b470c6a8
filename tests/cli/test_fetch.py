"""`vwh fetch` end to end, against the fake Vendasta under real uvicorn."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.vendasta import CREDENTIALS, ES256, RS256, RunningFake
from tests.helpers import FIXTURES, CliResult, free_port, invoke, run_vwh, vwh_env
from vwh.errors import ExitCode
from vwh.store import CapturedRequest, CaptureStore

ORDER_ID = "AG-7PQTGLLXQQ:ORD-S548DKHMKX"
USER_ID = "U-a6d23f70-fd09-43d2-91d2-a12c032caaa1"
AUTOMATION_ID = "Automation-7a416085-5668-467c-98ad-f903ad1c4187"
ORDER_PAYLOAD = FIXTURES / "payloads/order.json"


def doc(name: str) -> dict:
    return json.loads((FIXTURES / "api" / f"{name}.json").read_text())


def secrets_absent(vendasta: RunningFake, *results: CliResult) -> None:
    """No token the fake issued, and no private key, in anything vwh printed."""
    key_line = json.loads(RS256.read_text())["private_key"].splitlines()[1]
    for result in results:
        for text in (result.stdout, result.stderr):
            assert key_line not in text
            for token in vendasta.fake.tokens:
                assert token not in text


def test_fetch_an_order_by_id(vendasta: RunningFake) -> None:
    result = invoke("fetch", ORDER_ID)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"orders {ORDER_ID}  [processing]"
    assert "  currencyCode: USD" in lines
    assert (
        "    - MP-ee4ea8e2a6a54e3e8ebb6a2ed5a38b5f:EDITION-F7JZ5TV8  x1  49.99 USD  monthly"
        in lines
    )
    assert "    - A-3X4K9QFZ2M  x3  12.50 USD  onetime" in lines
    assert "relationships:" in lines
    assert "  businessLocation: businessLocations AG-7PQTGLLXQQ" in lines
    assert f"  salesPerson: users {USER_ID}" in lines
    assert f"{ORDER_ID}: fetching the order" in result.stderr
    secrets_absent(vendasta, result)


@pytest.mark.parametrize(
    ("args", "title"),
    [
        (["account", "AG-7PQTGLLXQQ"], "salesAccounts AG-7PQTGLLXQQ"),
        (["business", "AG-7PQTGLLXQQ"], "businessLocations AG-7PQTGLLXQQ"),
        (["user", USER_ID], f"users {USER_ID}"),
        (["automation", AUTOMATION_ID], f"automations {AUTOMATION_ID}  [on]"),
        (["orders", ORDER_ID], f"orders {ORDER_ID}  [processing]"),
    ],
)
def test_fetch_each_kind(vendasta: RunningFake, args: list[str], title: str) -> None:
    result = invoke("fetch", *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == title
    assert "fetching the" not in result.stderr  # the kind was given, nothing to say


def test_a_bare_account_id_says_what_it_chose(vendasta: RunningFake) -> None:
    result = invoke("fetch", "AG-7PQTGLLXQQ")
    assert result.exit_code == 0
    assert "AG-7PQTGLLXQQ: fetching the sales account (say `business`" in result.stderr


def test_an_id_of_unknown_shape_is_a_usage_error(vendasta: RunningFake) -> None:
    result = invoke("fetch", "9YW9")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("vwh: error: cannot tell what kind of record '9YW9' is")


def test_json_is_the_document_as_received(vendasta: RunningFake) -> None:
    result = invoke("fetch", ORDER_ID, "--json")
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == doc("order")


def test_fields_asks_for_a_sparse_fieldset(vendasta: RunningFake) -> None:
    result = invoke("fetch", "user", USER_ID, "--fields", "email,displayName", "--json")
    assert json.loads(result.stdout)["data"]["attributes"] == {
        "displayName": "Bill Smith",
        "email": "bill@example.com",
    }


def test_from_a_payload_fetches_everything_it_names(vendasta: RunningFake) -> None:
    result = invoke("fetch", "--from", str(ORDER_PAYLOAD), "--json")
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert docs == [doc("order"), doc("account"), doc("automation")]
    assert "names: order AG-7PQTGLLXQQ:ORD-S548DKHMKX, sales account AG-7PQTGLLXQQ" in result.stderr
    assert vendasta.fake.mints == 3  # one per scope: order:read, sales.account, automation:read


def test_from_stdin(vendasta: RunningFake) -> None:
    result = invoke("fetch", "--from", "-", "--json", input=ORDER_PAYLOAD.read_text())
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_from_a_file_that_is_not_a_body(vendasta: RunningFake, tmp_path: Path) -> None:
    bad = tmp_path / "body.json"
    bad.write_text("[1, 2]")
    result = invoke("fetch", "--from", str(bad))
    assert result.exit_code == ExitCode.USAGE
    assert "body.json: JSON array, not an object" in result.stderr
    bad.write_text('{"partnerId": "9YW9"}')
    result = invoke("fetch", "--from", str(bad))
    assert "names no orderId, accountId, userId or automationId" in result.stderr


def test_a_partial_failure_prints_what_it_got(vendasta: RunningFake) -> None:
    result = invoke("fetch", "--from", str(FIXTURES / "payloads/user.json"))
    assert result.exit_code == ExitCode.NOT_FOUND
    titles = [line for line in result.stdout.splitlines() if line and not line[0].isspace()]
    assert titles[0] == "salesAccounts AG-7PQTGLLXQQ"
    assert f"users {USER_ID}" in titles
    assert "failed: automation Automation-3e9b1a2c" in result.stderr
    assert result.stderr.rstrip().endswith("vwh: error: 1 of 3 records could not be fetched")


def test_from_history(vendasta: RunningFake, store_path: Path) -> None:
    body = ORDER_PAYLOAD.read_bytes()
    with CaptureStore(store_path) as store:
        kept = store.add(CapturedRequest(received_at=0.0, method="POST", path="/", body=body))
    result = invoke("fetch", "--from-history", str(kept), "--json")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["data"]["type"] for line in result.stdout.splitlines()] == [
        "orders",
        "salesAccounts",
        "automations",
    ]
    assert f"kept request {kept} names:" in result.stderr
    missing = invoke("fetch", "--from-history", "999")
    assert missing.exit_code == ExitCode.NOT_FOUND
    assert "no kept request with id 999" in missing.stderr


def test_nothing_or_too_much_to_fetch(vendasta: RunningFake) -> None:
    for args in ([], [ORDER_ID, "--from", str(ORDER_PAYLOAD)]):
        result = invoke("fetch", *args)
        assert result.exit_code == ExitCode.USAGE
        assert "name what to fetch" in result.stderr


def test_one_mint_serves_many_runs_and_the_cache_is_private(
    vendasta: RunningFake, isolated_env: Path
) -> None:
    results = [invoke("fetch", ORDER_ID) for _ in range(3)]
    assert [r.exit_code for r in results] == [0, 0, 0]
    assert vendasta.fake.mints == 1
    cached = list((isolated_env / ".cache/vwh/tokens").glob("*.json"))
    assert len(cached) == 1
    assert stat.S_IMODE(cached[0].stat().st_mode) == 0o600
    secrets_absent(vendasta, *results)


def test_scope_override(vendasta: RunningFake) -> None:
    assert invoke("fetch", ORDER_ID, "--scope", "order").exit_code == 0
    assert vendasta.fake.assertions[-1]["claims"]["scope"] == "order"


def test_es256_credentials(vendasta: RunningFake) -> None:
    result = invoke("fetch", ORDER_ID, "--credentials", str(ES256))
    assert result.exit_code == 0, result.stderr
    assert vendasta.fake.assertions[0]["header"]["alg"] == "ES256"


def test_default_credentials_from_the_api_gateway_dir(
    vendasta: RunningFake, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VWH_CREDENTIALS")
    directory = isolated_env / ".config/api-gateway"
    directory.mkdir(parents=True)
    shutil.copy(ES256, directory / "service-account.json")
    result = invoke("fetch", ORDER_ID)
    assert result.exit_code == 0, result.stderr
    assert vendasta.fake.assertions[0]["header"]["alg"] == "ES256"


def test_an_access_token_from_the_environment(
    vendasta: RunningFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VWH_ACCESS_TOKEN", vendasta.fake.issue_token(["order:read"]))
    result = invoke("fetch", ORDER_ID)
    assert result.exit_code == 0, result.stderr
    assert vendasta.fake.mints == 0
    secrets_absent(vendasta, result)


# ---- one line, one exit code, per failure -----------------------------------


def one_line_error(result: CliResult, code: ExitCode) -> str:
    assert result.exit_code == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vwh: error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_401(vendasta: RunningFake) -> None:
    result = invoke("fetch", ORDER_ID, "--access-token", "expired-or-foreign-token-123456")
    line = one_line_error(result, ExitCode.UNAUTHORIZED)
    assert "did not accept the access token (expired or revoked?" in line
    assert "expired-or-foreign-token-123456" not in result.stderr


def test_403(vendasta: RunningFake) -> None:
    token = vendasta.fake.issue_token(["sales.account"])
    line = one_line_error(invoke("fetch", ORDER_ID, "--access-token", token), ExitCode.FORBIDDEN)
    assert "lacks the scope to read orders: one of order:read, order" in line


def test_404(vendasta: RunningFake) -> None:
    line = one_line_error(invoke("fetch", "AG-1:ORD-MISSING"), ExitCode.NOT_FOUND)
    assert f"no order AG-1:ORD-MISSING at {vendasta.base_url}" in line


def test_429_then_ok(vendasta: RunningFake) -> None:
    vendasta.fake.fail_next((429, {"Retry-After": "0"}), (503, {"Retry-After": "0"}))
    result = invoke("fetch", ORDER_ID, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == doc("order")


def test_5xx_gave_up(vendasta: RunningFake) -> None:
    vendasta.fake.fail_next(*[(503, {"Retry-After": "0"})] * 3)
    line = one_line_error(invoke("fetch", ORDER_ID, "--retries", "2"), ExitCode.GAVE_UP)
    assert "answered 503 Service Unavailable 3 times; gave up" in line


def test_unreachable(vendasta: RunningFake) -> None:
    port = free_port()
    result = invoke("fetch", ORDER_ID, "--base-url", f"http://127.0.0.1:{port}/platform")
    line = one_line_error(result, ExitCode.UNREACHABLE)
    assert line.startswith(f"vwh: error: could not reach 127.0.0.1:{port}: ")


def test_timeout(vendasta: RunningFake) -> None:
    vendasta.fake.delay = 0.5
    line = one_line_error(invoke("fetch", ORDER_ID, "--timeout", "0.2"), ExitCode.TIMEOUT)
    assert line.endswith("did not answer within 0.2 s")


def test_token_endpoint_refusal(vendasta: RunningFake) -> None:
    vendasta.fake.register(RS256, granted=["profile"])
    line = one_line_error(invoke("fetch", ORDER_ID), ExitCode.UNAUTHORIZED)
    assert "refused the assertion: invalid_scope: scope not granted to this account" in line


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope.json", "nope.json: no such file"),
        ("not-json.txt", "not-json.txt: not JSON"),
        ("missing-fields.json", "missing-fields.json: missing or empty: token_uri"),
        ("bad-key.json", "bad-key.json: private_key is not a usable PEM private key"),
    ],
)
def test_bad_credentials(vendasta: RunningFake, name: str, message: str) -> None:
    result = invoke("fetch", ORDER_ID, "--credentials", str(CREDENTIALS / name))
    assert message in one_line_error(result, ExitCode.CREDENTIALS)
    assert "PRIVATE KEY" not in result.stderr


def test_no_credentials_at_all(vendasta: RunningFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VWH_CREDENTIALS")
    line = one_line_error(invoke("fetch", ORDER_ID), ExitCode.CREDENTIALS)
    assert "no credentials: give --access-token, or --credentials FILE" in line


def test_demo_credentials_default_to_demo() -> None:
    from vwh.api import API_URLS
    from vwh.cli.api_options import ApiOptions, Env

    assert ApiOptions(credentials=ES256).client().base_url == API_URLS["demo"]
    assert ApiOptions(credentials=RS256).client().base_url == API_URLS["prod"]
    assert ApiOptions(env=Env.prod, credentials=ES256).client().base_url == API_URLS["prod"]


# ---- the real thing, in a subprocess ----------------------------------------


def test_command_modules_import_nothing_heavy() -> None:
    """`vwh --help` stays fast: httpx, jwt, cryptography and rich load only when a command runs."""
    code = (
        "import sys, vwh.cli.fetch, vwh.cli.token, vwh.cli.api_options;"
        "print(sorted(m for m in ('httpx', 'jwt', 'cryptography', 'rich', 'vwh.api', 'vwh.auth')"
        " if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_terminal_80_columns_wide(vendasta: RunningFake) -> None:
    env = vwh_env(
        COLUMNS="80",
        TTY_COMPATIBLE="1",
        VWH_CREDENTIALS=str(RS256),
        VWH_TOKEN_URL=vendasta.token_url,
        VWH_BASE_URL=vendasta.base_url,
    )
    result = run_vwh("fetch", "--from", str(ORDER_PAYLOAD), env=env)
    assert result.returncode == 0, result.stderr
    text = ANSI.sub("", result.stdout)
    assert max(len(line) for line in text.splitlines()) <= 80
    for expected in ("49.99 USD", "12.50 USD", "Unit price", "relationships", "AG-7PQTGLLXQQ"):
        assert expected in text
    assert f"users {USER_ID}" in text
    assert "Traceback" not in result.stderr
    for token in vendasta.fake.tokens:
        assert token not in result.stdout + result.stderr


HOSTILE_USER = "U-0ddba11-hostile"  # fixtures/api-hostile/user.json: escapes in every field


def test_api_data_reaches_the_screen_inert(vendasta: RunningFake) -> None:
    from tests.hostile import assert_inert, run_vwh_bytes

    vendasta.fake.load_records(FIXTURES / "api-hostile")  # gone at the next reset

    env = vwh_env(
        VWH_CREDENTIALS=str(RS256), VWH_TOKEN_URL=vendasta.token_url, VWH_BASE_URL=vendasta.base_url
    )
    plain = run_vwh_bytes("fetch", "user", HOSTILE_USER, env=env)
    assert plain.returncode == 0, plain.stderr
    text = assert_inert(plain.stdout)
    assert text.startswith(f"users {HOSTILE_USER}  [\\x1b[32mfine]\n")
    assert "  displayName: \\x1b]0;retitled\\x07Mallory \\x1b[31mRed\\x1b[0m\n" in text
    assert "  familyName: line\\r\\n  email: forged@example.com\n" in text  # no forged line
    assert "  ke\\x1b[5my: a key with an escape\n" in text
    assert "  languageLocaleCode: \\ud800\n" in text
    assert "  partner: partners 9YW9\\x1b[8m\n" in text

    as_json = run_vwh_bytes("fetch", "user", HOSTILE_USER, "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    hostile = json.loads((FIXTURES / "api-hostile" / "user.json").read_text())
    assert json.loads(assert_inert(as_json.stdout)) == hostile

    terminal = run_vwh_bytes(
        "fetch", "user", HOSTILE_USER, env={**env, "TTY_COMPATIBLE": "1", "TERM": "xterm"}
    )
    assert terminal.returncode == 0, terminal.stderr
    drawn = terminal.stdout.decode("utf-8")
    for raw in ("\x1b]", "\x1b[31m", "\x1b[2J", "\x1b[5m", "\x1b[8m", "\x07", "\x9b", "\u202e"):
        assert raw not in drawn, raw
    assert "\\x1b]0;retitled" in ANSI.sub("", drawn)
