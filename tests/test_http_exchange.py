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


def start(tmp_path: Path, *args: str, timeout: float | None = None) -> tuple[ListenerProcess, Path]:
    store = tmp_path / "store.sqlite3"
    env = vwh_env(VWH_STORE=str(store))
    if timeout is not None:
        env["VWH_CLIENT_TIMEOUT"] = str(timeout)
    return ListenerProcess("--token", TOKEN, *args, env=env).start(), store


def read_answers(sock: socket.socket, count: int) -> bytes:
    """Read until `count` whole answers (each ends with its JSON body's `}`) came."""
    answer = b""
    while len(re.findall(rb"HTTP/1\.1 [2-5]\d\d ", answer)) < count or not answer.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def test_a_head_read_while_an_answer_is_owed_gets_its_100_continue_after_it(
    tmp_path: Path,
) -> None:
    """Pipelined behind a delayed answer, a sender that waits for 100 Continue gets it
    once that answer is out, then sends its body and gets its own answer."""
    proc, store = start(tmp_path, "--delay", "1")
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(delivery("AG-1:ORD-FIRST"))
            time.sleep(0.2)
            body = json.dumps({"orderId": "AG-1:ORD-SECOND"}).encode()
            sock.sendall(
                b"POST /hooks/vendasta HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\n"
                b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (TOKEN.encode(), len(body))
            )
            first = b""
            while not first.endswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
                chunk = sock.recv(65536)
                assert chunk, first
                first += chunk
            sock.sendall(body)
            second = read_answers(sock, 1)
    finally:
        assert proc.stop() == 0
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 ")
    assert [r.ids["orderId"] for r in kept(store)] == ["AG-1:ORD-FIRST", "AG-1:ORD-SECOND"]


def test_a_slow_answer_is_not_cut_by_the_client_timeout_of_the_next_request(
    tmp_path: Path,
) -> None:
    """While a --delay answer is owed, the next request's head and part of its body wait
    unread: the client timeout (1 s) counts neither against the owed answer (2 s)."""
    proc, store = start(tmp_path, "--delay", "2", timeout=1)
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(delivery("AG-1:ORD-SLOW") + delivery("AG-1:ORD-NEXT")[:-5])
            answer = read_answers(sock, 1)
    finally:
        assert proc.stop() == 0
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert [r.status for r in kept(store)][:1] == [200]


def test_a_large_body_sent_anyway_gets_its_413_and_the_connection_goes_on(
    running: tuple[ListenerProcess, Path],
) -> None:
    """A sender that does not wait for 100 Continue sends the whole body: it is read and
    dropped (no reset loses the 413), and the next request on the connection is served."""
    proc, store = running
    big = b"x" * (2 * 1024 * 1024)
    head = b"POST /big HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\nContent-Length: %d\r\n\r\n" % (
        TOKEN.encode(),
        len(big),
    )
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(head + big + delivery("AG-1:ORD-AFTER-BIG"))
        answer = read_answers(sock, 2)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"413", b"200"]
    after = len(delivery("AG-1:ORD-AFTER-BIG").partition(b"\r\n\r\n")[2])
    assert [(r.status, r.body_size) for r in kept(store)] == [(413, len(big)), (200, after)]


def test_stopping_answers_every_request_already_read_and_keeps_each_as_answered(
    tmp_path: Path,
) -> None:
    """Ctrl-C with three pipelined requests behind a --delay answer: the first is answered
    when its delay ends, the two not started are kept and answered 503 at once (no wait
    may start once stopping), in order, and the last answer closes the connection."""
    proc, store = start(tmp_path, "--delay", "1")
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(b"".join(delivery(f"AG-1:ORD-STOP{i}") for i in range(3)))
        time.sleep(0.4)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGINT)
        answer = read_all(sock)
    assert proc.stop() == 0
    statuses = [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    assert statuses == [200, 503, 503]
    assert answer.count(b"connection: close") == 1 and answer.rfind(
        b"connection: close"
    ) > answer.rfind(b"HTTP/1.1 ")
    rows = kept(store)
    assert [r.status for r in rows] == statuses
    assert [r.ids["orderId"] for r in rows] == [f"AG-1:ORD-STOP{i}" for i in range(3)]
    ids = [int(i) for i in re.findall(rb'"id":(\d+)', answer)]
    assert ids == [r.id for r in rows]


def test_nothing_after_an_answer_that_closes_is_read_or_kept(
    running: tuple[ListenerProcess, Path],
) -> None:
    """An HTTP/1.0 request is answered with `connection: close`; a request sent after it
    on the same connection is not processed (RFC 9112 9.6), so none is kept as answered
    while its sender never got the answer."""
    proc, store = running
    first = delivery("AG-1:ORD-HTTP10").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    first = first.replace(b"Host: x\r\n", b"Host: x\r\nConnection: keep-alive\r\n")
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(first + delivery("AG-1:ORD-AFTER-CLOSE"))
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 ") == 1 and b"connection: close" in answer
    assert [r.ids["orderId"] for r in kept(store)] == ["AG-1:ORD-HTTP10"]


def test_a_sender_that_does_not_read_its_answers_is_not_buffered_without_bound(
    tmp_path: Path,
) -> None:
    """Large answers to a pipeline its sender does not read: the listener stops reading
    once the answers it owes fill the socket, so it neither reads nor keeps more, and
    goes on, in order, as the sender reads."""
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps({"pad": "x" * 500_000}))
    proc, store = start(tmp_path, "--respond", str(answer_file))
    total = 60
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(20)
            sock.connect(("127.0.0.1", proc.port))
            sock.sendall(b"".join(delivery(f"AG-1:ORD-P{i:03d}") for i in range(total)))
            time.sleep(1.0)
            while_unread = len(kept(store))
            got = 0
            buffered = b""
            while got < total:
                chunk = sock.recv(1 << 20)
                assert chunk
                buffered += chunk
                got += buffered.count(b"HTTP/1.1 200 ")
                buffered = buffered[-16:]
    finally:
        assert proc.stop() == 0
    assert while_unread < total // 2  # held back, not all answered into memory
    assert [r.ids["orderId"] for r in kept(store)] == [f"AG-1:ORD-P{i:03d}" for i in range(total)]


def test_answers_are_dated_and_a_204_has_no_content(tmp_path: Path) -> None:
    proc, _ = start(tmp_path, "--status", "204")
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(delivery("AG-1:ORD-204", close=True))
            answer = read_all(sock)
    finally:
        assert proc.stop() == 0
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 ") and body == b""
    assert b"content-length" not in head.lower()
    assert re.search(rb"\r\ndate: \w{3}, \d{2} \w{3} \d{4} ", head)


def test_a_huge_content_length_costs_only_its_own_request(
    running: tuple[ListenerProcess, Path],
) -> None:
    """A Content-Length beyond what SQLite can store (2^64 - 1) is kept as the largest
    size it can hold and refused 413; the requests committed with it are unharmed."""
    proc, store = running
    huge = (
        b"POST /huge HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\nExpect: 100-continue\r\n"
        b"Content-Length: 18446744073709551615\r\n\r\n" % TOKEN.encode()
    )
    socks = [socket.create_connection(("127.0.0.1", proc.port), timeout=10) for _ in range(8)]
    try:
        for i, sock in enumerate(socks[:-1]):
            sock.sendall(delivery(f"AG-1:ORD-H{i}", close=True))
        socks[-1].sendall(huge)
        answers = [read_all(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert [a[9:12] for a in answers] == [b"200"] * 7 + [b"413"]
    by_path = {r.path: r for r in kept(store)}
    rows = kept(store)
    assert len(rows) == 8 and by_path["/huge"].body_size == 2**63 - 1


def test_the_token_header_is_read_without_trailing_whitespace_and_an_absolute_target_kept(
    running: tuple[ListenerProcess, Path],
) -> None:
    proc, store = running
    body = b'{"orderId":"AG-1:ORD-WS"}'
    data = (
        b"POST http://127.0.0.1 HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s \t\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (TOKEN.encode(), len(body), body)
    )
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(data)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 ")
    [record] = kept(store)
    assert (record.verdict, record.path) == ("ok", "/")


def test_a_broken_body_behind_an_owed_answer_closes_only_after_that_answer(
    tmp_path: Path,
) -> None:
    """A pipelined request whose chunked body breaks is kept cut short, and the
    connection closes, but only once the answer owed to the request before it is out:
    no row says 200 for an answer that never left."""
    proc, store = start(tmp_path, "--delay", "0.5")
    broken = (
        b"POST /broken HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n" % TOKEN.encode()
    )
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(delivery("AG-1:ORD-BEFORE-BROKEN") + broken)
            answer = read_all(sock)
    finally:
        assert proc.stop() == 0
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200"]
    first, second = kept(store)
    assert (first.status, second.path, second.status) == (200, "/broken", 0)
    assert second.error is not None and second.error.startswith("body cut short")


def test_requests_queued_behind_an_answer_longer_than_the_grace_are_all_kept_and_answered(
    tmp_path: Path,
) -> None:
    """Ctrl-C while 12 pipelined requests wait behind a 5 s --delay: uvicorn's 2 s grace
    ends first, and then every one of them is still kept and answered 503, in order."""
    proc, store = start(tmp_path, "--delay", "5")
    total = 12
    with socket.create_connection(("127.0.0.1", proc.port), timeout=15) as sock:
        sock.sendall(b"".join(delivery(f"AG-1:ORD-Q{i:02d}") for i in range(total)))
        time.sleep(0.4)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGINT)
        answer = read_all(sock)
    assert proc.stop() == 0
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"503"] * total
    assert answer.count(b"connection: close") == 1
    rows = kept(store)
    assert [r.ids["orderId"] for r in rows] == [f"AG-1:ORD-Q{i:02d}" for i in range(total)]
    assert {r.status for r in rows} == {503}


def test_an_early_413_at_shutdown_is_one_answer_and_one_row(tmp_path: Path) -> None:
    """A head over --max-body waiting behind a --delay answer when Ctrl-C comes: it gets
    its 413 once that answer is out, closing the connection, and is kept once."""
    proc, store = start(tmp_path, "--delay", "1", "--max-body", "100")
    big_head = (
        b"POST /big HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\nContent-Length: 1000\r\n\r\n"
        % TOKEN.encode()
    )
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(delivery("AG-1:ORD-FIRST") + big_head)
        time.sleep(0.3)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGINT)
        answer = read_all(sock)
    assert proc.stop() == 0
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"413"]
    assert answer.endswith(b"}") and answer.count(b"connection: close") == 1
    assert [(r.path, r.status) for r in kept(store)] == [("/hooks/vendasta", 200), ("/big", 413)]


def test_the_rest_of_a_read_after_a_closing_answer_is_neither_kept_nor_refused(
    running: tuple[ListenerProcess, Path],
) -> None:
    """An early 413 to a sender waiting for 100 Continue closes the connection; what
    followed in the same read (a body sent anyway, a request, then bytes that are no
    HTTP) is not read: nothing of it is kept as answered or refused."""
    proc, store = running
    head = (
        b"POST /big HTTP/1.1\r\nHost: x\r\nVerifier-Token: %s\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % (TOKEN.encode(), MAX_BODY + 1)
    )
    rest = b"x" * (MAX_BODY + 1) + delivery("AG-1:ORD-NOT-READ") + b"GARBAGE\r\n\r\n"
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(head + rest)
        answer = read_all(sock)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"413"]
    assert [(r.path, r.status) for r in kept(store)] == [("/big", 413)]


def test_a_refusal_behind_answers_its_sender_reads_slowly_still_goes_out(
    tmp_path: Path,
) -> None:
    """Malformed bytes after a request whose large answer fills the socket: the refusal
    waits for that answer, and goes out (closing) once the sender reads it."""
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps({"pad": "x" * 5_000_000}))
    proc, store = start(tmp_path, "--respond", str(answer_file), timeout=3)
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", proc.port))
            sock.sendall(delivery("AG-1:ORD-BIG-ANSWER") + b"GARBAGE\r\n\r\n")
            time.sleep(1.0)
            answer = read_all(sock)
    finally:
        assert proc.stop() == 0
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"400"]
    assert [r.status for r in kept(store)] == [200, 400]


def test_requests_read_from_a_sender_that_left_without_reading_are_kept(
    tmp_path: Path,
) -> None:
    """A sender pipelines five requests, reads none of their large answers, and leaves:
    all five were read, so all five are kept."""
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps({"pad": "x" * 2_000_000}))
    proc, store = start(tmp_path, "--respond", str(answer_file))
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", proc.port))
            sock.sendall(b"".join(delivery(f"AG-1:ORD-LEFT{i}") for i in range(5)))
            time.sleep(0.5)
        deadline = time.monotonic() + 5
        while len(kept(store)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert proc.stop() == 0
    assert [r.ids["orderId"] for r in kept(store)] == [f"AG-1:ORD-LEFT{i}" for i in range(5)]
