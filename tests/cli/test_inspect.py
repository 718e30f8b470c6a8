"""`vwh inspect`: the inspector over a store alone, as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.handlers import PATH, TOKEN, correct
from tests.helpers import FIXTURES, ListenerProcess, ThreadedServer, run_vwh
from vwh.store import CapturedRequest, CaptureStore

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()


def inspect_process(*args: str) -> ListenerProcess:
    proc = ListenerProcess()
    proc.args = ["inspect", "--ui-port", "0", *args]
    return proc


def test_a_missing_store_is_one_error_line(tmp_path: Path) -> None:
    result = run_vwh("inspect", "--store", str(tmp_path / "none.sqlite3"))
    assert result.returncode == 9
    assert result.stderr.startswith("vwh: error: no store at ") and result.stderr.count("\n") == 1


def test_inspect_serves_a_store_and_replays_to_the_given_target(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        store.add(CapturedRequest(0.0, "POST", "/hook", body=ORDER, body_size=len(ORDER)))
    with ThreadedServer(correct()) as handler:
        proc = inspect_process("--to", handler.url, "--token", TOKEN)
        with proc:
            url = re.search(r"inspector: (http://\S+)", proc.stderr_so_far()).group(1)  # type: ignore[union-attr]
            base, _, secret = url.partition("/?token=")
            auth = {"Authorization": f"Bearer {secret}"}
            info = httpx.get(base + "/api/info", headers=auth, timeout=10).json()
            detail = httpx.get(base + "/api/requests/1", headers=auth, timeout=10).json()
            body = {"target": handler.url + PATH}
            sent = httpx.post(base + "/api/requests/1/replay", json=body, headers=auth, timeout=30)
            code = proc.stop()
    assert code == 0 and "Traceback" not in proc.stderr
    assert info["live"] is False and info["store"] == str(store_path)
    assert detail["replay_target"] == handler.url + "/hook"  # --to, the kept path appended
    assert sent.json()["outcome"] == "delivered"  # the handler checked --token
    assert TOKEN not in proc.stderr


def test_inspect_replays_with_the_token_in_the_query_parameter_given(store_path: Path) -> None:
    from tests.handlers import make_handler

    with CaptureStore(store_path) as store:
        store.add(CapturedRequest(0.0, "POST", "/hook", body=ORDER, body_size=len(ORDER)))
    with ThreadedServer(make_handler(place=("query", "sig"))) as handler:
        proc = inspect_process("--to", handler.url, "--token", TOKEN, "--token-query", "sig")
        with proc:
            url = re.search(r"inspector: (http://\S+)", proc.stderr_so_far()).group(1)  # type: ignore[union-attr]
            base, _, secret = url.partition("/?token=")
            auth = {"Authorization": f"Bearer {secret}"}
            body = {"target": handler.url + PATH}
            sent = httpx.post(base + "/api/requests/1/replay", json=body, headers=auth, timeout=30)
            code = proc.stop()
    assert code == 0 and "Traceback" not in proc.stderr
    assert sent.json()["outcome"] == "delivered"  # the handler found the token in ?sig=
    assert "query parameter sig" in proc.stderr and TOKEN not in proc.stderr
