"""`vwh trigger` end to end: the fake Vendasta's API, and a real `vwh listen` for --wait."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.vendasta import RunningFake
from tests.helpers import FIXTURES, free_port, invoke, listener, run_vwh, vwh_env
from vwh.errors import ExitCode
from vwh.store import CapturedRequest, CaptureStore

ORDER_AUTOMATION = "Automation-7a416085-5668-467c-98ad-f903ad1c4187"
ACCOUNT_AUTOMATION = "Automation-3c1e9b52-0d7f-4b8e-9a61-5f2d4c8e7a10"
ORDER_ID = "AG-7PQTGLLXQQ:ORD-S548DKHMKX"
ACCOUNT_ID = "AG-7PQTGLLXQQ"
TOKEN = "s3cret-verifier-token"


def test_starts_a_run_with_the_documented_body(vendasta: RunningFake) -> None:
    result = invoke("trigger", ORDER_AUTOMATION, ORDER_ID, "--data", "region=west")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"started {ORDER_AUTOMATION} for {ORDER_ID} (202 Accepted)\n"
    expected = json.loads((FIXTURES / "api/automationRuns/request.json").read_text())
    assert vendasta.fake.runs == [expected]
    assert vendasta.fake.assertions[-1]["claims"]["scope"] == "business"


def test_data_file_then_data_pairs_and_json(vendasta: RunningFake, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text('{"region": "east", "vip": true, "seats": 3}')
    result = invoke(
        "trigger", ACCOUNT_AUTOMATION, ACCOUNT_ID, "--data-file", str(data),
        "--data", "region=north", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    sent = vendasta.fake.runs[0]["data"]["attributes"]
    assert sent == {"entityId": ACCOUNT_ID, "data": {"region": "north", "vip": True, "seats": 3}}
    printed = json.loads(result.stdout)
    assert printed["started"] is True and printed["attributes"] == sent


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Automation-x", "9YW9"], "bad entity id '9YW9'"),
        (["7a416085", ORDER_ID], "bad automation id '7a416085'"),
        ([ORDER_AUTOMATION, ORDER_ID, "--data", "region"], "--data 'region': expected KEY=VALUE"),
    ],
)
def test_bad_input_sends_nothing(vendasta: RunningFake, args: list[str], message: str) -> None:
    result = invoke("trigger", *args)
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr
    assert vendasta.fake.runs == [] and vendasta.fake.mints == 0


def test_a_nested_data_file_is_refused(vendasta: RunningFake, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text('{"region": {"name": "west"}}')
    result = invoke("trigger", ORDER_AUTOMATION, ORDER_ID, "--data-file", str(data))
    assert result.exit_code == ExitCode.USAGE
    assert "the trigger reads a flat object, but 'region' hold" in result.stderr


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vwh: error: "), stderr
    return lines[0]


def test_api_errors_are_one_line_with_the_fetch_exit_codes(vendasta: RunningFake) -> None:
    wrong_entity = invoke("trigger", ORDER_AUTOMATION, ACCOUNT_ID)
    assert wrong_entity.exit_code == ExitCode.USAGE
    assert "refused the run (422 Unprocessable Entity)" in _one_error_line(wrong_entity.stderr)
    assert "entityId must be an order id" in wrong_entity.stderr  # the API's own detail

    unknown = invoke("trigger", "Automation-00000000-0000-4000-8000-000000000000", ORDER_ID)
    assert unknown.exit_code == ExitCode.NOT_FOUND
    assert "no automation Automation-00000000" in _one_error_line(unknown.stderr)

    weak = vendasta.fake.issue_token(["order:read"])
    forbidden = invoke("trigger", ORDER_AUTOMATION, ORDER_ID, "--access-token", weak)
    assert forbidden.exit_code == ExitCode.FORBIDDEN
    assert "needs the business scope" in _one_error_line(forbidden.stderr)

    refused = invoke("trigger", ORDER_AUTOMATION, ORDER_ID, "--access-token", "not-a-token")
    assert refused.exit_code == ExitCode.UNAUTHORIZED
    assert "did not accept the access token" in _one_error_line(refused.stderr)
    assert vendasta.fake.runs == []


def test_unreachable_and_timeout(vendasta: RunningFake) -> None:
    token = vendasta.fake.issue_token(["business"])
    down = f"http://127.0.0.1:{free_port()}/platform"
    result = invoke("trigger", ORDER_AUTOMATION, ORDER_ID, "--access-token", token,
                    "--base-url", down)  # fmt: skip
    assert result.exit_code == ExitCode.UNREACHABLE
    assert "could not reach 127.0.0.1" in _one_error_line(result.stderr)

    vendasta.fake.delay = 3.0
    slow = invoke("trigger", ORDER_AUTOMATION, ORDER_ID, "--access-token", token,
                  "--timeout", "0.3")  # fmt: skip
    assert slow.exit_code == ExitCode.TIMEOUT
    assert "the run may have started all the same" in _one_error_line(slow.stderr)


def test_a_5xx_is_not_retried(vendasta: RunningFake) -> None:
    vendasta.fake.fail_next(503, 503)
    result = invoke("trigger", ORDER_AUTOMATION, ORDER_ID)
    assert result.exit_code == ExitCode.GAVE_UP
    assert "may or may not have started" in _one_error_line(result.stderr)
    assert len(vendasta.fake.script) == 1  # the second 503 was never asked for


def test_wait_shows_the_delivery_the_run_causes(vendasta: RunningFake, store_path: Path) -> None:
    with CaptureStore(store_path) as store:  # an earlier delivery for the same order
        body = json.dumps({"orderId": ORDER_ID, "note": "older"}).encode()
        store.add(CapturedRequest(received_at=time.time() - 60, method="POST", path="/", body=body))
    with listener("--token", TOKEN) as proc:
        vendasta.fake.webhook_step(ORDER_AUTOMATION, proc.url + "/hooks/vendasta", TOKEN)
        result = invoke("trigger", ORDER_AUTOMATION, ORDER_ID, "--wait", "--wait-timeout", "20")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#2  ")  # not the older request #1
    assert lines[1] == "POST /hooks/vendasta"
    assert f'  "orderId": "{ORDER_ID}",' in lines
    assert '  "marketId": "saskatoon",' in lines
    assert "token:   ok" in lines and "answer:  200 in" in result.stdout
    assert result.stderr.splitlines() == [
        f"started {ORDER_AUTOMATION} for {ORDER_ID} (202 Accepted); waiting for its delivery"
        f" in {store_path}"
    ]  # and no spinner: stderr is not a terminal


def test_wait_json_and_a_rejected_delivery(vendasta: RunningFake) -> None:
    with listener("--token", TOKEN) as proc:
        vendasta.fake.webhook_step(ACCOUNT_AUTOMATION, proc.url, "a-stale-token")
        result = invoke(
            "trigger", ACCOUNT_AUTOMATION, ACCOUNT_ID, "--wait", "--wait-timeout", "20", "--json"
        )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["ids"]["accountId"] == ACCOUNT_ID and record["verdict"] == "wrong"
    assert record["status"] == 401
    assert vendasta.fake.delivered[0][1] == 401
    assert "a-stale-token" not in result.stdout  # the store keeps it masked


def test_the_wait_running_out_is_exit_5_with_hints(vendasta: RunningFake) -> None:
    """Piped, as a real subprocess: the start line, then one error line, no spinner."""
    env = vwh_env(
        VWH_CREDENTIALS=str(FIXTURES / "credentials/rs256.json"),
        VWH_TOKEN_URL=vendasta.token_url,
        VWH_BASE_URL=vendasta.base_url,
    )
    result = run_vwh("trigger", ORDER_AUTOMATION, ORDER_ID, "--wait", "--wait-timeout", "0.5",
                     env=env)  # fmt: skip
    assert result.returncode == ExitCode.TIMEOUT
    started, error = result.stderr.splitlines()
    assert started.startswith(f"started {ORDER_AUTOMATION}")
    assert error.startswith(f"vwh: error: no delivery naming {ORDER_ID} reached ")
    assert "is `vwh listen` running on that store" in error and "webhook step" in error
    assert result.stdout == ""


def test_a_terminal_gets_a_spinner_with_the_elapsed_time(vendasta: RunningFake) -> None:
    import os
    import pty

    leader, follower = pty.openpty()
    env = vwh_env(
        TERM="xterm",
        VWH_CREDENTIALS=str(FIXTURES / "credentials/rs256.json"),
        VWH_TOKEN_URL=vendasta.token_url,
        VWH_BASE_URL=vendasta.base_url,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vwh", "trigger", ORDER_AUTOMATION, ORDER_ID,
         "--wait", "--wait-timeout", "2.5"],
        stdout=subprocess.PIPE, stderr=follower, env=env,
    )  # fmt: skip
    os.close(follower)
    screen = b""
    try:
        deadline = time.monotonic() + 30
        while b"vwh: error:" not in screen and time.monotonic() < deadline:
            try:
                screen += os.read(leader, 65536)
            except OSError:  # the process ended and closed the terminal
                break
    finally:
        proc.communicate(timeout=30)
        os.close(leader)
    text = screen.decode(errors="replace")
    assert proc.returncode == ExitCode.TIMEOUT
    assert f"waiting for a delivery naming {ORDER_ID}: 1 s of 2.5 s" in text
    assert "vwh: error: no delivery naming" in text
