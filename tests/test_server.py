"""The listener's server under resource pressure: a real `vwh listen` under a low fd limit."""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import ListenerProcess, vwh_env
from vwh.errors import UsageError
from vwh.server import client_timeout
from vwh.store import CaptureStore

FD_LIMIT = 64
DELIVERY = b"POST /after HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def test_idle_connections_past_the_fd_limit_cost_one_warning_and_then_time_out(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.sqlite3"
    env = vwh_env(VWH_STORE=str(store), VWH_CLIENT_TIMEOUT="2")
    idle: list[socket.socket] = []
    with ListenerProcess(env=env, preexec_fn=_limit_fds) as proc:
        try:
            # Twice the limit: the server runs out of descriptors and the rest queue.
            for _ in range(2 * FD_LIMIT):
                idle.append(socket.create_connection(("127.0.0.1", proc.port), timeout=10))
            time.sleep(3)  # the accept loop meets the limit for a few seconds (was ~15 MB)
            # A delivery queued behind them is answered once idle ones time out (2 s).
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", proc.port), timeout=60) as sock:
                sock.sendall(DELIVERY)
                answer = sock.recv(65536)
            waited = time.monotonic() - started
            # The server closed the idle connections itself: each reads end of file.
            closed = 0
            for sock in idle:
                if select.select([sock], [], [], 30)[0]:
                    with contextlib.suppress(OSError):
                        closed += sock.recv(1) == b""
        finally:
            for sock in idle:
                sock.close()
        code = proc.stop()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert waited < 40 and closed == len(idle)
    assert code == 0 and "stopped: 1 received, 1 accepted" in proc.stderr
    # Warnings, not a traceback per attempt (that was ~5 MB a second).
    assert "Traceback" not in proc.stderr and len(proc.stderr) < 4096
    warnings = [line for line in proc.stderr.splitlines() if "out of file descriptors" in line]
    assert 1 <= len(warnings) <= 10
    assert f"ulimit -n is {FD_LIMIT}" in warnings[0] and "failed accept attempt" in warnings[0]
    with CaptureStore(store) as kept:
        assert [r.path for r in kept.iter_all()] == ["/after"]  # idle ones are not requests


def test_ctrl_c_while_out_of_descriptors_stops_cleanly(tmp_path: Path) -> None:
    env = vwh_env(VWH_STORE=str(tmp_path / "store.sqlite3"))
    with ListenerProcess(env=env, preexec_fn=_limit_fds) as proc:
        idle = [socket.create_connection(("127.0.0.1", proc.port)) for _ in range(2 * FD_LIMIT)]
        try:
            time.sleep(2)  # out of descriptors for two seconds: two accept retries
            code = proc.stop()
        finally:
            for sock in idle:
                sock.close()
    assert code == 0 and "stopped: 0 received" in proc.stderr
    assert "out of file descriptors" in proc.stderr and "Traceback" not in proc.stderr


def test_client_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert client_timeout() == 10.0
    monkeypatch.setenv("VWH_CLIENT_TIMEOUT", "2.5")
    assert client_timeout() == 2.5
    for bad in ("0", "-1", "soon", "nan", "inf"):
        monkeypatch.setenv("VWH_CLIENT_TIMEOUT", bad)
        with pytest.raises(UsageError, match="VWH_CLIENT_TIMEOUT"):
            client_timeout()
