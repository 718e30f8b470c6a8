"""The listener's HTTP protocol against hostile clients: a real `vwh listen`, raw sockets."""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import ListenerProcess, vwh_env
from vwh.http_guard import MAX_HEAD_BYTES, OneWriteTransport, describe_refused
from vwh.store import CapturedRequest, CaptureStore
from vwh.webhook import mask_header_value

TOKEN = "s3cret-verifier-token"
TIMEOUT = 1.0  # VWH_CLIENT_TIMEOUT for these listeners
DELIVERY = (
    b"POST /hooks/vendasta HTTP/1.1\r\nHost: x\r\nVerifier-Token: " + TOKEN.encode() + b"\r\n"
    b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ListenerProcess, Path]]:
    """One listener for the module (starting one costs a second); tests read its store."""
    store = tmp_path_factory.mktemp("guard") / "store.sqlite3"
    env = vwh_env(VWH_STORE=str(store), VWH_CLIENT_TIMEOUT=str(TIMEOUT))
    with ListenerProcess("--token", TOKEN, env=env) as proc:
        yield proc, store
        code = proc.stop()
    assert code == 0 and "Traceback" not in proc.stderr


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send `data`, read until the server closes; the answer and the seconds it took."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(data)
        answer = b""
        while len(answer) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer, time.monotonic() - started


def last_kept(store: Path) -> CapturedRequest:
    with CaptureStore(store) as kept:
        [record] = kept.recent(1)
    return record


def kept_after(store: Path, before: int, wait: bool = False) -> list[CapturedRequest]:
    """Requests kept since there were `before`. A refusal is kept before it is answered,
    so no waiting; `wait` waits (up to 10 s) for one that the app keeps after a hang-up."""
    deadline = time.monotonic() + (10 if wait else 0)
    while True:
        with CaptureStore(store) as kept:
            records = [r for r in kept.iter_all() if (r.id or 0) > before]
        if records or time.monotonic() >= deadline:
            return records
        time.sleep(0.05)


def count(store: Path) -> int:
    with CaptureStore(store) as kept:
        return kept.count()


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


def test_a_delivery_still_works(running: tuple[ListenerProcess, Path]) -> None:
    proc, store = running
    answer, _ = exchange(proc.port, DELIVERY)
    assert status_of(answer) == 200
    assert last_kept(store).status == 200


def test_a_head_over_the_limit_is_431_and_kept_without_the_rest(
    running: tuple[ListenerProcess, Path],
) -> None:
    proc, store = running
    before = count(store)
    big = b"x" * (MAX_HEAD_BYTES + 1000)
    head = b"POST /big?a=1 HTTP/1.1\r\nVerifier-Token: " + TOKEN.encode() + b"\r\nX-Big: "
    answer, _ = exchange(proc.port, head + big + b"\r\n\r\n{}")
    assert status_of(answer) == 431 and answer.endswith(b"request head over 65536 bytes")
    [record] = kept_after(store, before)
    assert (record.method, record.path, record.query, record.status) == ("POST", "/big", "a=1", 431)
    assert record.error == "request head over 65536 bytes" and record.verdict == "ok"
    assert record.body is not None and len(record.body) < 4096 + 100  # a mask is longer
    assert record.body.startswith(b"POST /big?a=1 HTTP/1.1\r\nVerifier-Token: ")
    assert TOKEN.encode() not in record.body and record.body_size > MAX_HEAD_BYTES


def test_a_header_that_never_ends_is_cut_off_early(running: tuple[ListenerProcess, Path]) -> None:
    """50 MB of one header: the server stops reading long before, instead of keeping it."""
    proc, store = running
    before = count(store)
    sent = 0
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nX-Big: ")
        piece = b"a" * 65536
        deadline = time.monotonic() + 20
        with pytest.raises(OSError):  # the server closed: a reset or a broken pipe
            while sent < 50 * 1024 * 1024 and time.monotonic() < deadline:
                sock.sendall(piece)
                sent += len(piece)
    # What the kernel buffers on both sides, not 50 MB.
    assert sent < 16 * 1024 * 1024
    [record] = kept_after(store, before)
    assert record.status == 431 and record.body is not None and len(record.body) <= 4096


def test_more_than_100_header_fields_is_431(running: tuple[ListenerProcess, Path]) -> None:
    proc, store = running

    def with_fields(total: int) -> bytes:  # DELIVERY without Host has 3 fields
        fields = b"".join(b"X-%d: v\r\n" % i for i in range(total - 3))
        return DELIVERY.replace(b"Host: x\r\n", fields)

    before = count(store)
    assert status_of(exchange(proc.port, with_fields(100))[0]) == 200
    too_many, _ = exchange(proc.port, with_fields(101))
    assert status_of(too_many) == 431 and too_many.endswith(b"more than 100 header fields")
    ok, refused = kept_after(store, before)
    assert ok.status == 200 and len(ok.headers) == 100
    assert refused.status == 431 and refused.error == "more than 100 header fields"


@pytest.mark.parametrize(
    ("data", "method", "path", "reason"),
    [
        (b"GET /\x01 HTTP/1.1\r\n\r\n", "GET", "/\x01", "Invalid char in url path"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "", "", "Invalid method encountered"),
        (b"POST /h HTTP/1.1\r\nX-A: b\x00c\r\n\r\n", "POST", "/h", "Invalid header value char"),
        (b"POST /v HTTP/9.9\r\n\r\n", "POST", "/v", "Invalid HTTP version"),
    ],
    ids=["control-in-path", "tls-hello", "nul-in-header", "version"],
)
def test_a_request_the_parser_refuses_is_400_and_kept(
    running: tuple[ListenerProcess, Path], data: bytes, method: str, path: str, reason: str
) -> None:
    proc, store = running
    before = count(store)
    answer, _ = exchange(proc.port, data)
    assert status_of(answer) == 400
    assert answer.endswith(f"malformed HTTP: {reason}".encode())
    [record] = kept_after(store, before)
    assert (record.method, record.path, record.status) == (method, path, 400)
    assert record.error == f"malformed HTTP: {reason}"
    assert record.body == data


def test_a_head_that_stops_coming_is_408_after_the_timeout(
    running: tuple[ListenerProcess, Path],
) -> None:
    proc, store = running
    before = count(store)
    answer, took = exchange(proc.port, b"POST /slow HTTP/1.1\r\nVerifier-Token: guess\r\n")
    assert status_of(answer) == 408 and TIMEOUT * 0.9 <= took < TIMEOUT + 5
    [record] = kept_after(store, before)
    assert (record.path, record.status, record.verdict) == ("/slow", 408, "wrong")
    assert record.error == "request head not complete after 1s"
    assert b"guess" not in (record.body or b"")


def test_a_head_sent_a_byte_at_a_time_is_not_given_more_time(
    running: tuple[ListenerProcess, Path],
) -> None:
    """The head has one deadline in all, so trickling bytes (slowloris) does not reset it."""
    proc, store = running
    before = count(store)
    header = b"X-Pad: " + b"a" * 200  # 21 s at 0.1 s a byte
    answer = b""
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /trickle HTTP/1.1\r\n")
        for byte in header:
            if select.select([sock], [], [], 0.1)[0]:
                answer = sock.recv(4096)
                break
            sock.sendall(bytes([byte]))
        took = time.monotonic() - started
    assert status_of(answer) == 408 and took < TIMEOUT + 5
    [record] = kept_after(store, before)
    assert (record.method, record.path, record.status) == ("POST", "/trickle", 408)


def test_idle_and_stalled_connections_are_closed(running: tuple[ListenerProcess, Path]) -> None:
    proc, store = running
    before = count(store)
    idle, took = exchange(proc.port, b"")
    assert idle == b"" and TIMEOUT * 0.9 <= took < TIMEOUT + 5
    body = b"POST /cut HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b'{"a": 1}'
    stalled, took = exchange(proc.port, body)
    # No answer: the app has the request and keeps it as it got it, cut short.
    assert stalled == b"" and TIMEOUT * 0.9 <= took < TIMEOUT + 5
    assert [r.path for r in kept_after(store, before, wait=True)] == ["/cut"]


def test_a_slow_answer_is_not_a_slow_client(tmp_path: Path) -> None:
    """The timeout is the client's: a request being answered (--delay) is never cut."""
    env = vwh_env(VWH_STORE=str(tmp_path / "s.sqlite3"), VWH_CLIENT_TIMEOUT="0.5")
    with ListenerProcess("--delay", "1.5", env=env) as proc:
        answer, took = exchange(proc.port, DELIVERY)
        proc.stop()
    assert status_of(answer) == 200 and took >= 1.5


def test_a_body_that_breaks_chunked_encoding_closes_without_an_answer(
    running: tuple[ListenerProcess, Path],
) -> None:
    proc, store = running
    before = count(store)
    data = b"POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n"
    answer, took = exchange(proc.port, data)
    assert answer == b"" and took < TIMEOUT  # at once, not by the timeout
    assert [r.path for r in kept_after(store, before, wait=True)] == ["/chunked"]


def test_keep_alive_and_pipelining_still_work(running: tuple[ListenerProcess, Path]) -> None:
    proc, _ = running
    keep = DELIVERY.replace(b"Connection: close\r\n", b"")
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(keep + keep + DELIVERY)  # three in one write
        answer = b""
        while answer.count(b"HTTP/1.1 200") < 3:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_an_answer_leaves_in_one_write_and_no_head_is_held_past_its_response() -> None:
    wire = RecordingTransport()
    transport = OneWriteTransport(wire)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert wire.writes == []  # held for its body
    transport.write(b"{}")
    assert wire.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # informational: at once
    assert wire.writes[-1] == b"HTTP/1.1 100 Continue\r\n\r\n"
    transport.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")  # a HEAD: no body comes
    transport.flush()  # the protocol flushes at the end of every response
    assert wire.writes[-1] == b"HTTP/1.1 405 Method Not Allowed\r\n\r\n"
    transport.write(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    transport.close()
    assert wire.writes[-1].startswith(b"HTTP/1.1 503") and wire.closed
    assert transport.get_extra_info("peername") == "info:peername"


def test_head_and_expect_continue_requests_get_their_answers_at_once(
    running: tuple[ListenerProcess, Path],
) -> None:
    """A HEAD answer has no body and a 100 Continue is not the answer: neither is held."""
    proc, _ = running
    with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as sock:
        sock.sendall(b"HEAD /hooks HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 405") and head.endswith(b"\r\n\r\n")
        body = b'{"orderId":"ORD-CONTINUE"}'
        sock.sendall(
            b"POST /hooks HTTP/1.1\r\nHost: x\r\nVerifier-Token: " + TOKEN.encode()
            + b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )  # fmt: skip
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while b'"received":true' not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "refused",
    [
        b"POST /refused\x1b HTTP/1.1\r\n\r\n",
        b"POST /refused HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
    ],
    ids=["malformed", "head-too-large"],
)
def test_a_refusal_after_pipelined_requests_is_answered_after_them(
    running: tuple[ListenerProcess, Path], refused: bytes
) -> None:
    """Answers go out in request order (RFC 9112 9.3.2): the requests before the refused
    one get their own answers first, as kept, and the refusal comes last. The refused
    one is kept as itself, not as the first request of the read it came in."""
    proc, store = running
    before = count(store)
    keep = DELIVERY.replace(b"Connection: close\r\n", b"")
    answer, _ = exchange(proc.port, keep + keep + refused)
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    kept = kept_after(store, before)
    assert statuses == [200, 200, 400 if b"\x1b" in refused else 431]
    assert sorted(r.status for r in kept) == statuses  # each kept as answered
    [refusal] = [r for r in kept if r.status >= 400]
    assert refusal.path.startswith("/refused") and refusal.method == "POST"
    assert refusal.body is not None and refusal.body.startswith(b"POST /refused")


def test_describe_refused_masks_secrets_in_fields_and_bytes() -> None:
    raw = (
        b"POST /p?q=1 HTTP/1.1\r\nVerifier-Token: " + TOKEN.encode() + b"\r\nX-A: b\x00\r\n\r\nrest"
    )
    head = describe_refused(raw, _masking({"verifier-token"}), "verifier-token")
    assert (head.method, head.path, head.query, head.token) == ("POST", "/p", "q=1", TOKEN.encode())
    assert head.headers[0][0] == "verifier-token" and TOKEN not in head.headers[0][1]
    assert head.headers[1] == ("x-a", "b\x00")
    assert TOKEN.encode() not in head.raw and head.raw.endswith(b"X-A: b\x00\r\n\r\nrest")
    assert describe_refused(b"\x16\x03", _masking(set()), "t").method == ""


def _masking(configured: set[str]) -> Callable[[str, str], str]:
    names = frozenset(configured)
    return lambda name, value: mask_header_value(name, value, names)


def test_describe_refused_masks_only_the_secret_cookie() -> None:
    raw = b"POST /p HTTP/1.1\r\nCookie: theme=dark; vwh_token=" + TOKEN.encode() + b"\r\n\r\n"
    head = describe_refused(raw, _masking({"vwh_token"}), "")
    assert head.token is None and (b"cookie", b"theme=dark; vwh_token=" + TOKEN.encode()) in (
        head.fields
    )
    [(name, value)] = head.headers
    assert name == "cookie" and value.startswith("theme=dark; vwh_token=••••")
    assert TOKEN.encode() not in head.raw and b"theme=dark" in head.raw


def test_parallel_refusals_leave_the_server_answering(
    running: tuple[ListenerProcess, Path],
) -> None:
    proc, _ = running
    errors: list[BaseException] = []

    def hostile() -> None:
        try:
            for _ in range(20):
                exchange(proc.port, b"\x00\xff garbage\r\n\r\n")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hostile) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert status_of(exchange(proc.port, DELIVERY)[0]) == 200


def test_a_refused_request_keeps_no_secret_of_its_query_or_headers(
    running: tuple[ListenerProcess, Path],
) -> None:
    proc, store = running
    before = count(store)
    data = (
        b"POST /q?access_token=hunter2-query-secret&page=2 HTTP/1.1\r\n"
        b"X-Auth-Token: hunter2-header-secret\r\nX-A: b\x00c\r\n\r\n"
    )
    answer, _ = exchange(proc.port, data)
    assert status_of(answer) == 400
    [record] = kept_after(store, before)
    assert record.query.startswith("access_token=") and record.query.endswith("&page=2")
    kept = store.read_bytes() + b"".join(p.read_bytes() for p in store.parent.glob("*-wal"))
    assert b"hunter2" not in kept and b"page=2" in kept


@pytest.mark.parametrize(
    ("place", "request_line", "field"),
    [
        (
            ("--token-query", "sig"),
            b"POST /q?sig=" + TOKEN.encode() + b"&page=2 HTTP/1.1\r\n",
            b"X-A: b\x00c\r\n",
        ),
        (
            ("--token-cookie", "vwh_token"),
            b"POST /q?page=2 HTTP/1.1\r\n",
            b"Cookie: theme=dark; vwh_token=" + TOKEN.encode() + b"\r\nX-A: b\x00c\r\n",
        ),
    ],
    ids=["query", "cookie"],
)
def test_a_refused_request_masks_a_token_query_or_cookie_and_judges_it(
    tmp_path: Path, place: tuple[str, str], request_line: bytes, field: bytes
) -> None:
    store = tmp_path / "store.sqlite3"
    env = vwh_env(VWH_STORE=str(store), VWH_CLIENT_TIMEOUT=str(TIMEOUT))
    with ListenerProcess("--token", TOKEN, *place, env=env) as proc:
        answer, _ = exchange(proc.port, request_line + field + b"\r\n")
        assert status_of(answer) == 400
        [record] = kept_after(store, 0)
    assert record.verdict == "ok"  # the token was in its place, right
    assert record.query.endswith("page=2")
    if place[0] == "--token-cookie":  # the other cookies stay readable
        assert ("cookie", "theme=dark; vwh_token=••••en (21 chars)") in record.headers
    kept = store.read_bytes() + b"".join(p.read_bytes() for p in store.parent.glob("*-wal"))
    assert TOKEN.encode() not in kept and b"page=2" in kept
