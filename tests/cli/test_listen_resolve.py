"""`vwh listen --resolve` as a real subprocess on loopback, against the fake Vendasta."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.fakes.vendasta import RS256, RunningFake
from tests.helpers import (
    FIXTURES,
    ListenerProcess,
    TerminalListener,
    free_port,
    invoke,
    listener,
    vwh_env,
)
from vwh.errors import ExitCode
from vwh.store import CaptureStore

ORDER = (FIXTURES / "payloads/order.json").read_bytes()
TOKEN = "s3cret-verifier-token"
AUTOMATION_NAME = "Notify fulfilment when an order is processing"


def api_env(vendasta: RunningFake, **extra: str) -> dict[str, str]:
    return vwh_env(
        VWH_CREDENTIALS=str(RS256),
        VWH_TOKEN_URL=vendasta.token_url,
        VWH_BASE_URL=vendasta.base_url,
        **extra,
    )


def deliver(proc: ListenerProcess, body: bytes = ORDER) -> httpx.Response:
    return httpx.post(
        proc.url + "/hooks/vendasta", content=body, headers={"Verifier-Token": TOKEN}, timeout=10
    )


def wait_for_output(proc: ListenerProcess, needle: str, count: int = 1, timeout: float = 20) -> str:
    """stdout so far, once `needle` appears `count` times (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = b"".join(proc._out).decode(errors="replace")
        if text.count(needle) >= count:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} x{count} not printed within {timeout}s: {text!r}")


def test_plain_lines_get_a_follow_up_line_and_show_keeps_it(
    vendasta: RunningFake, store_path: Path
) -> None:
    with listener("--token", TOKEN, "--resolve", env=api_env(vendasta)) as proc:
        assert deliver(proc).status_code == 200
        wait_for_output(proc, " resolved ")
        assert proc.stop() == 0
    request_line, resolved_line = proc.stdout.splitlines()
    assert " #1 POST /hooks/vendasta token=ok status=200 " in request_line
    assert resolved_line.endswith(
        ' #1 resolved order="processing USD" account="Patty\'s Irish Pub"'
        f' automation="{AUTOMATION_NAME}"'
    )
    assert "  resolve: order, account, user and automation names from" in proc.stderr

    shown = invoke("show", "1")
    assert shown.exit_code == 0
    assert "resolved (vwh listen --resolve):" in shown.stdout
    assert "  account AG-7PQTGLLXQQ: name: Patty's Irish Pub" in shown.stdout
    as_json = json.loads(invoke("show", "1", "--json").stdout)
    assert as_json["resolved"]["order"]["currency"] == "USD"


def test_json_gets_a_follow_up_object_joined_by_id(vendasta: RunningFake) -> None:
    with listener("--token", TOKEN, "--resolve", "--json", env=api_env(vendasta)) as proc:
        deliver(proc)
        deliver(proc, b'{"userId": "U-a6d23f70-fd09-43d2-91d2-a12c032caaa1"}')
        wait_for_output(proc, '"resolved": ', count=2)
        proc.stop()
    ready, *objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert ready["event"] == "ready"
    requests = [o for o in objects if "event" not in o]
    resolved = {o["id"]: o["resolved"] for o in objects if o.get("event") == "resolved"}
    assert [r["id"] for r in requests] == [1, 2]
    assert resolved[1]["account"]["name"] == "Patty's Irish Pub"
    assert resolved[2] == {
        "user": {
            "id": "U-a6d23f70-fd09-43d2-91d2-a12c032caaa1",
            "name": "Bill Smith",
            "email": "bill@example.com",
        }
    }


def test_a_slow_api_adds_no_latency_to_the_answers(vendasta: RunningFake) -> None:
    """Each lookup takes 5 s; the senders get their answers at once all the same."""
    vendasta.fake.delay = 5.0
    with listener("--token", TOKEN, "--resolve", env=api_env(vendasta)) as proc:
        started = time.monotonic()
        timings = []
        for i in range(5):
            body = json.dumps({"orderId": f"AG-7PQTGLLXQQ:ORD-{i:010d}"}).encode()
            sent = time.monotonic()
            answer = deliver(proc, body)
            timings.append(time.monotonic() - sent)
            assert (answer.status_code, answer.json()["received"]) == (200, True)
        # The lines do not wait either: the writer thread prints them within moments
        # of the commits, long before the first 5 s lookup can have come back.
        printed = wait_for_output(proc, "token=ok status=200", count=5, timeout=4)
        if time.monotonic() - started < 5.0:  # the first lookup cannot have come back yet
            assert " resolved " not in printed
        wait_for_output(proc, " resolved ", count=5, timeout=40)
        proc.stop()
    assert max(timings) < 2.0, timings  # a fraction of one 5 s lookup
    assert proc.stdout.count('order_error="not found"') == 5  # the fake has none of them


def test_an_api_that_is_down_loses_nothing(vendasta: RunningFake, store_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    env = vwh_env(VWH_ACCESS_TOKEN="some-token", VWH_BASE_URL=down + "/platform")
    with listener("--token", TOKEN, "--resolve", env=env) as proc:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: deliver(proc), range(40)))
        wait_for_output(proc, 'order_error="API unreachable"', count=40, timeout=40)
        assert proc.stop() == 0
    assert [a.status_code for a in answers] == [200] * 40
    with CaptureStore(store_path) as store:
        assert store.count() == 40
    assert "stopped: 40 received, 40 accepted" in proc.stderr
    assert proc.stdout.count('order_error="API unreachable"') == 40


def test_api_options_need_resolve_and_credentials_are_checked_first(
    vendasta: RunningFake, tmp_path: Path
) -> None:
    result = invoke("listen", "--env", "demo", "--port", "0")
    assert result.exit_code == ExitCode.USAGE
    assert "--env needs --resolve" in result.stderr
    missing = invoke("listen", "--resolve", "--credentials", str(tmp_path / "nope.json"))
    assert missing.exit_code == ExitCode.CREDENTIALS
    assert "vwh listening" not in missing.stderr


def test_the_live_table_gains_the_names(vendasta: RunningFake) -> None:
    args = ("--token", TOKEN, "--resolve")
    with TerminalListener(*args, rows=20, columns=160, env=api_env(vendasta)) as term:
        assert httpx.post(
            f"http://127.0.0.1:{term.port}/", content=ORDER, headers={"Verifier-Token": TOKEN}
        ).is_success
        term.read_until(b"Patty's Irish Pub", 20)
    screen = term.screen
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.decode(errors="replace"))
    assert term.proc.returncode == 0
    row = next(line for line in text.splitlines() if "Patty's" in line)
    assert "resolved" in text  # the column's header
    assert "AG-7PQTGLLXQQ:ORD-S548DKHMKX" in row  # beside the ids, in the row itself
    assert "processing USD; Patty's Irish Pub; Notify fulfil" in row, row
