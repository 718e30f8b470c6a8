"""The receiving port's protocol: whole requests to the receiver, answers in order.

A real `vwh listen` and raw sockets; what the HTTP guard itself refuses is in
test_http_guard.py.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ListenerProcess, vwh_env
from vwh.store import CaptureStore

TOKEN = "s3cret-verifier-token"
TIMEOUT = 1.0  # VWH_CLIENT_TIMEOUT for these listeners
MAX_BODY = 1000


def delivery(order: str, *, close: bool = False) -> bytes:
    body = json.dumps({"orderId": order}).encode()
    return (
        b"POST /hooks/vendasta HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\n"
        b"Content-Length: %d\r\n%s\r\n%s"
        % (TOKEN.encode(), len(body), b"Connection: close\r\n" if close else b"", body)
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[ListenerProcess, Path]]:
    store = tmp_path / "store.sqlite3"
    env = vwh_env(VWH_STORE=str(store), VWH_CLIENT_TIMEOUT=str(TIMEOUT))
    with ListenerProcess("--token", TOKEN, "--max-body", str(MAX_BODY), env=env) as proc:
        yield proc, store
        if proc.proc is not None and proc.proc.poll() is None:
            assert proc.stop() == 0
    assert "Traceback" not in proc.stderr


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def kept(store: Path) -> list:  # type: ignore[type-arg]
    with CaptureStore(store) as captured:
        return list(captured.iter_all())


def test_a_long_pipeline_is_kept_and_answered_in_order(
    running: tuple[ListenerProcess, Path],
) -> None:
    """500 requests in one write: each is kept, and the answers come in request order,
    each with the id of its own request (answers are started one after another from the
    loop, never from inside the previous answer, so no pipeline is too deep)."""
    proc, store = running
    orders = [f"AG-1:ORD-{i:04d}" for i in range(500)]
    data = b"".join(delivery(o, close=i == len(orders) - 1) for i, o in enumerate(orders))
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(data)
        answer = read_all(sock)
    ids = [int(i) for i in re.findall(rb'"received":true,"id":(\d+)', answer)]
    assert len(ids) == len(orders) and answer.count(b"HTTP/1.1 200 OK") == len(orders)
    by_id = {r.id: r.ids.get("orderId") for r in kept(store)}
    assert [by_id[i] for i in ids] == orders


def test_a_body_declared_too_large_is_refused_at_once_and_kept(
    running: tuple[ListenerProcess, Path],
) -> None:
    """A sender that waits for 100 Continue before a body over --max-body gets the 413 at
    once (no 100 Continue, nothing read), and the request is kept without its body."""
    proc, store = running
    head = (
        b"POST /big HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\nExpect: 100-continue\r\n"
        b"Content-Length: 1000000000\r\n\r\n" % TOKEN.encode()
    )
    with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(head)
        answer = read_all(sock)  # the listener closes: the body will never be read
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer
    assert b"connection: close" in answer.lower() and took < TIMEOUT
    [record] = kept(store)
    assert (record.path, record.status, record.body, record.body_size) == (
        "/big",
        413,
        None,
        1_000_000_000,
    )


def test_a_body_that_grows_past_the_limit_is_counted_not_kept(
    running: tuple[ListenerProcess, Path],
) -> None:
    """Chunked, with no Content-Length to refuse early: read to the end, kept without
    the body, 413, and the connection stays usable."""
    proc, store = running
    chunk = b"x" * 600
    data = (
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        % TOKEN.encode()
        + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
        + b"0\r\n\r\n"
        + delivery("AG-1:ORD-AFTER", close=True)
    )
    with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as sock:
        sock.sendall(data)
        answer = read_all(sock)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"413", b"200"]
    big, after = kept(store)
    assert (big.status, big.body, big.body_size) == (413, None, 1800)
    assert after.ids == {"orderId": "AG-1:ORD-AFTER"}


def test_an_idle_kept_alive_connection_is_closed_after_the_client_timeout(
    running: tuple[ListenerProcess, Path],
) -> None:
    """After its answer, a kept-alive connection that sends nothing more is closed once
    the client timeout passes (idle connections must not pile up), and nothing else is
    kept: there was no further request."""
    proc, store = running
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(delivery("AG-1:ORD-IDLE"))
        answer = sock.recv(65536)
        answered = time.monotonic()
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert sock.recv(65536) == b""  # closed by the listener
        idle = time.monotonic() - answered
    assert TIMEOUT * 0.9 <= idle < TIMEOUT * 3
    assert [r.status for r in kept(store)] == [200]


def test_ctrl_c_while_a_body_arrives_keeps_it_and_says_so(tmp_path: Path) -> None:
    """Stopped while a body is still coming, the listener waits its grace period for it,
    then keeps the request as it came so far and answers the 503 the row says (the
    client timeout, 10 s, is longer than that grace)."""
    store = tmp_path / "store.sqlite3"
    proc = ListenerProcess("--token", TOKEN, env=vwh_env(VWH_STORE=str(store))).start()
    head = (
        b"POST /slow HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\nContent-Length: 100\r\n\r\n"
        % TOKEN.encode()
    )
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(head + b'{"orderId":')
        time.sleep(0.3)  # the head is read: the body is what the listener waits for
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGINT)
        answer = read_all(sock)
    assert proc.stop() == 0
    head_part, _, body = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 503 ")
    assert json.loads(body)["error"] == "listener stopped before answering"
    [record] = kept(store)
    assert (record.status, record.error, record.body) == (
        503,
        "listener stopped before answering",
        b'{"orderId":',
    )
    assert json.loads(body)["id"] == record.id
