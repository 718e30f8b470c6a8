"""The running listener's output under hostile requests: inert, and it never stops.

A real `vwh listen` subprocess gets requests over a raw socket; its stdout is checked
byte for byte: no raw control character, every request a line, Ctrl-C a clean exit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import TerminalListener, listener, vwh_env
from tests.hostile import HOSTILE_REQUESTS, assert_inert, send_hostile
from vwh.store import CaptureStore

COUNT = len(HOSTILE_REQUESTS) + 1  # and the normal request after them


def test_plain_lines_stay_inert_and_later_requests_still_print(store_path: Path) -> None:
    with listener() as proc:
        send_hostile(proc.port)
        code = proc.stop()
    assert code == 0, proc.stderr
    assert "unexpected error" not in proc.stderr
    text = assert_inert(proc.stdout_bytes)
    lines = text.splitlines()
    assert [int(m) for m in re.findall(r"^\S+Z #(\d+) ", text, re.M)] == list(range(1, COUNT + 1))
    assert len(lines) == COUNT  # no forged line: the CRLF in the path stayed in its line
    assert "POST /after " in lines[-1]
    assert "order=\\ud800" in lines[0]
    assert "POST /\\x1b]0;retitled\\x07 " in lines[2]
    assert "/a\\r\\n2026-01-01T00:00:00.000Z #999 POST /forged" in lines[3]
    assert f"stopped: {COUNT} received" in proc.stderr


def test_json_lines_stay_inert_valid_and_equal_to_what_was_kept(store_path: Path) -> None:
    with listener("--json") as proc:
        send_hostile(proc.port)
        code = proc.stop()
    assert code == 0, proc.stderr
    ready, *lines = assert_inert(proc.stdout_bytes).splitlines()
    assert json.loads(ready)["event"] == "ready"
    assert len(lines) == COUNT
    shown = [json.loads(line) for line in lines]
    with CaptureStore(store_path) as store:
        assert shown == [store.get(n).to_json() for n in range(1, COUNT + 1)]
    assert shown[0]["ids"] == {"orderId": "\ud800"}
    assert shown[2]["path"] == "/\x1b]0;retitled\x07"
    assert ["x-evil", "\x9b31m\x85\xff"] in shown[5]["headers"]


def test_live_table_on_a_terminal_stays_inert(store_path: Path) -> None:
    """The hostile rows reach the live table escaped, and rows after them still appear."""
    with TerminalListener(rows=30, columns=100, env=vwh_env()) as term:
        statuses = send_hostile(term.port)
        term.read_until(f"{COUNT} received".encode(), 15)
    assert term.proc.returncode == 0, term.stderr
    assert all(200 <= s < 500 for s in statuses)
    text = term.screen.decode("utf-8")
    # Rich draws with its own escapes (cursor moves); none of the senders' may pass.
    for raw in ("\x1b]", "\x1b[31m", "\x1b[2J", "\x1b[5m", "\x07", "\x9b", "\x85", "\u202e"):
        assert raw not in text, raw
    assert "POST /\\x1b]0;" in text and "\\ud800" in text
    assert f"{COUNT} received" in text
    assert "POST /after" in text
