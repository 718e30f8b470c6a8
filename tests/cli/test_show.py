"""`vwh history` and `vwh show` on hostile rows kept by a real listener: inert, exit 0."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import listener, vwh_env
from tests.hostile import HOSTILE_REQUESTS, assert_inert, run_vwh_bytes, send_hostile
from vwh.store import CaptureStore

COUNT = len(HOSTILE_REQUESTS) + 1


@pytest.fixture
def hostile_store(store_path: Path) -> Path:
    """A store holding every hostile request, as a real listener kept them."""
    with listener() as proc:
        send_hostile(proc.port)
        assert proc.stop() == 0
    return store_path


def test_history_lists_every_row_inert(hostile_store: Path) -> None:
    result = run_vwh_bytes("history", "--limit", "50")
    assert result.returncode == 0, result.stderr
    text = assert_inert(result.stdout)
    ids = [int(m) for m in re.findall(r"^\S+Z #(\d+) ", text, re.M)]
    assert ids == list(range(COUNT, 0, -1)) and len(text.splitlines()) == COUNT
    assert "/\\x1b]0;retitled\\x07" in text and "order=\\ud800" in text


def test_history_json_is_inert_and_equal_to_the_store(hostile_store: Path) -> None:
    result = run_vwh_bytes("history", "--limit", "50", "--json")
    assert result.returncode == 0, result.stderr
    lines = assert_inert(result.stdout).splitlines()
    with CaptureStore(hostile_store) as store:
        kept = [r.to_json() for r in store.recent(50)]
    assert [json.loads(line) for line in lines] == kept
    assert kept[-1]["ids"] == {"orderId": "\ud800"}


def test_history_table_on_a_terminal_is_inert(hostile_store: Path) -> None:
    import subprocess
    import sys

    env = vwh_env(TTY_COMPATIBLE="1", TERM="xterm")
    result = subprocess.run(
        [sys.executable, "-m", "vwh", "history", "--limit", "50"],
        capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode("utf-8")
    for raw in ("\x1b]", "\x1b[31m", "\x1b[2J", "\x07", "\x9b", "\x85", "\u202e", "\r"):
        assert raw not in text, raw
    assert "\\x1b]0;" in text and "\\ud800" in text


def test_show_every_row_plain_and_json(hostile_store: Path) -> None:
    with CaptureStore(hostile_store) as store:
        kept = {n: store.get(n).to_json() for n in range(1, COUNT + 1)}
    shown = {}
    for n in kept:
        plain = run_vwh_bytes("show", str(n))
        assert plain.returncode == 0, (n, plain.stderr)
        shown[n] = assert_inert(plain.stdout)
        as_json = run_vwh_bytes("show", str(n), "--json")
        assert as_json.returncode == 0, (n, as_json.stderr)
        assert json.loads(assert_inert(as_json.stdout)) == kept[n]
    assert '"orderId": "\\ud800"' in shown[1]
    assert "POST /\\x1b]0;retitled\\x07\n" in shown[3]
    assert "POST /a\\r\\n2026-01-01T00:00:00.000Z #999 POST /forged\n" in shown[4]
    assert "x-evil: \\x9b31m\\x85\xff\n" in shown[6]  # read as latin-1: ÿ is printable
    assert (
        "\\x1b]8;;https://evil.example\\x1b\\click\\x1b]8;;\\x1b\\\n#999 forged\\x7f\\x00"
        in (shown[7])
    )
    assert "\\x9b31m not UTF-8 \\xff\\x1b[5m" in shown[8]
