"""`vwh history` and its filters, from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import invoke, run_vwh
from vwh.store import CapturedRequest, CaptureStore


@pytest.fixture
def kept(store_path: Path) -> Path:
    now = time.time()
    rows: list[dict[str, object]] = [
        {"verdict": "ok", "status": 200, "attempt": 1, "body": b'{"orderId":"AG-1:ORD-ABC"}'},
        {"verdict": "wrong", "status": 401, "body": b'{"orderId":"AG-2:ORD-X"}'},
        {"verdict": "ok", "status": 503, "attempt": 2, "body": b'{"orderId":"AG-1:ORD-ABC"}'},
        {"verdict": "missing", "status": 401, "path": "/other/x", "received_at": now - 7200},
        {"verdict": "not checked", "status": 400, "error": "invalid JSON", "body": b"{"},
        {"verdict": "ok", "status": 502, "attempt": 1, "query": "trace=zebra"},
    ]
    with CaptureStore(store_path) as store:
        for row in rows:
            fields: dict[str, object] = {"received_at": now, "method": "POST", "path": "/hooks"}
            store.add(CapturedRequest(**{**fields, **row}))  # type: ignore[arg-type]
    return store_path


def _ids(*args: str) -> list[int]:
    result = invoke("history", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line)["id"] for line in result.stdout.splitlines()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), [6, 5, 4, 3, 2, 1]),
        (("--verdict", "ok"), [6, 3, 1]),
        (("--verdict", "wrong"), [2]),
        (("--verdict", "missing"), [4]),
        (("--verdict", "unchecked"), [5]),
        (("--status", "401"), [4, 2]),
        (("--status", "5xx"), [6, 3]),
        (("--path", "/other"), [4]),
        (("--since", "1h"), [6, 5, 3, 2, 1]),
        (("--grep", "ord-abc"), [3, 1]),  # an id in the body, any case
        (("--grep", "ZEBRA"), [6]),  # the query
        (("--grep", "other/"), [4]),  # the path
        (("--resends",), [3]),
        (("--verdict", "ok", "--status", "2xx"), [1]),
        (("--limit", "2"), [6, 5]),
        (("-n", "2", "--all"), [6, 5, 4, 3, 2, 1]),
    ],
)
def test_each_filter(kept: Path, args: tuple[str, ...], expected: list[int]) -> None:
    assert _ids(*args) == expected


def test_since_a_local_time(kept: Path) -> None:
    an_hour_ago = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
    assert _ids("--since", an_hour_ago) == [6, 5, 3, 2, 1]


def test_all_pages_past_the_first_500(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        for _ in range(1203):
            store.add(CapturedRequest(received_at=1.0, method="POST", path="/p"))
    assert _ids("--all") == list(range(1203, 0, -1))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--verdict", "fine"), "unknown verdict 'fine'"),
        (("--status", "2x"), "bad status '2x'"),
        (("--since", "yesterday"), "bad time 'yesterday'"),
    ],
)
def test_bad_filters_are_one_line_and_exit_2(
    kept: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_vwh("history", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"vwh: error: {message}") and result.stderr.count("\n") == 1


def test_plain_lines_with_a_filter(kept: Path) -> None:
    result = run_vwh("history", "--status", "401")
    assert result.returncode == 0
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["#4", "#2"]
