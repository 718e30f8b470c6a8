"""The running listener's output under hostile requests: inert, and it never stops.

A real `vwh listen` subprocess gets requests over a raw socket; its stdout is checked
byte for byte: no raw control character, every request a line, Ctrl-C a clean exit.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import free_port, listener, vwh_env, wait_for_port
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
    import fcntl
    import os
    import pty
    import struct
    import termios

    port = free_port()
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = vwh_env(TERM="xterm")
    del env["COLUMNS"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vwh", "listen", "--port", str(port)],
        stdout=follower, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    os.close(follower)
    screen = b""
    try:
        wait_for_port(port)
        statuses = send_hostile(port)
        screen = _read_until(leader, f"{COUNT} received".encode(), 15)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
        screen += _read_until(leader, None, 2)
        os.close(leader)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert all(200 <= s < 500 for s in statuses)
    text = screen.decode("utf-8")
    # Rich draws with its own escapes (cursor moves); none of the senders' may pass.
    for raw in ("\x1b]", "\x1b[31m", "\x1b[2J", "\x1b[5m", "\x07", "\x9b", "\x85", "\u202e"):
        assert raw not in text, raw
    assert "POST /\\x1b]0;" in text and "\\ud800" in text
    assert f"{COUNT} received" in text
    assert "POST /after" in text


def _read_until(fd: int, needle: bytes | None, timeout: float) -> bytes:
    """What the terminal shows until `needle` appears, it goes quiet, or time is up."""
    import os
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while (needle is None or needle not in data) and time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            if needle is None:
                break
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        data += chunk
    return data
