"""Forwarding as a library: the receiver app in-process, real handlers on loopback.

The sender talks to the app over httpx.ASGITransport (fast, no listener process);
the forwarder talks to real servers, since its client is real sockets: a recording
ASGI handler under uvicorn, and raw socket servers for what no ASGI server does
(closing without an answer, chunked or close-delimited answers, 100 Continue).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from tests.helpers import ThreadedServer, free_port, run_receiver
from tests.scripted import KeepAliveCloser
from vwh.cli.listen_view import plain_line, request_details, request_table
from vwh.errors import UsageError
from vwh.forward import (
    KEPT_BODY_LIMIT,
    Failure,
    Forwarder,
    ForwardSettings,
    failure_of,
    handler_label,
    probe,
)
from vwh.listener import Listener, ListenStats
from vwh.receiver_settings import ReceiverSettings
from vwh.store import CapturedRequest, ForwardResult

ORDER = b'{"orderId": "AG-1:ORD-2", "entityId": "AG-1:ORD-2", "accountId": "AG-1"}'
TOKEN = "s3cret-token"


@dataclass
class Seen:
    """One request as the handler received it."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


class RecordingHandler:
    """A developer's handler: records each request; the last path segment picks the answer.

    .../ok -> 200 JSON, .../bad -> 400, .../boom -> 500, .../slow -> 200 after 1.5 s,
    .../big -> 200 with a 100 KiB body, anything else -> 200 echoing the path.
    """

    SLOW_SECONDS = 1.5

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = scope["query_string"].decode()
        with self._lock:
            self.seen.append(Seen(scope["method"], scope["path"], query, headers, body))
        kind = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        status, answer = 200, json.dumps({"handled": scope["path"]}).encode()
        extra: list[tuple[bytes, bytes]] = []
        if kind == "ok":
            answer = b'{"status": "processed",\n "next": "fulfil"}'
            extra = [(b"set-cookie", b"session=abcdef0123456789"), (b"x-handler", b"yes")]
        elif kind == "bad":
            status, answer = 400, b'{"error": "unknown order"}'
        elif kind == "boom":
            status, answer = 500, b"Internal Server Error"
        elif kind == "slow":
            await asyncio.sleep(self.SLOW_SECONDS)
        elif kind == "big":
            answer = b"x" * (100 * 1024)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(answer)),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    @property
    def count(self) -> int:
        return len(self.seen)


class RawServer:
    """A socket server that reads one request per connection and answers with raw bytes.

    `answer(request)` returns the bytes to write, or None to close without answering.
    """

    def __init__(self, answer: Callable[[bytes], bytes | None]) -> None:
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.requests: list[bytes] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            conn, _ = self.sock.accept()
            with conn:
                request = _read_request(conn)
                if self._stop or not request:
                    continue
                self.requests.append(request)
                reply = self.answer(request)
                if reply is not None:
                    conn.sendall(reply)


def _read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += conn.recv(65536)
    return data


@pytest.fixture(scope="module")
def handler() -> Iterator[tuple[RecordingHandler, str]]:
    """One recording handler for the module; each test looks at what it added."""
    app = RecordingHandler()
    with ThreadedServer(app) as server:
        yield app, server.url


def forwarding(url: str, **kw: Any) -> ReceiverSettings:
    forward_kw = {k: kw.pop(k) for k in ("token", "timeout", "forward_all") if k in kw}
    if "listen_token" in kw:
        kw["token"] = kw.pop("listen_token")
    return ReceiverSettings(forward=ForwardSettings(url, **forward_kw), **kw)


# -- the request the handler gets -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "query", "target"),
    [
        ("http://h:1/webhooks/vendasta", b"/anything", b"", b"/webhooks/vendasta"),
        ("http://h:1/webhooks/vendasta", b"/", b"a=1&b=2", b"/webhooks/vendasta?a=1&b=2"),
        ("http://h:1/hook?key=k", b"/x", b"a=1", b"/hook?key=k&a=1"),
        ("http://h:1/hook?key=k", b"/x", b"", b"/hook?key=k"),
        ("http://h:1", b"/orders/AG-1:ORD-2", b"", b"/orders/AG-1:ORD-2"),
        ("http://h:1/", b"/", b"", b"/"),
        ("http://h:1/api/", b"/orders%20new", b"x=%2F", b"/api/orders%20new?x=%2F"),
        ("http://h:1/api/", b"/", b"", b"/api/"),
    ],
)
def test_path_rule_exact_unless_trailing_slash(
    url: str, path: bytes, query: bytes, target: bytes
) -> None:
    forwarder = Forwarder(ForwardSettings(url), "Verifier-Token")
    assert forwarder.target(path, query) == target


def test_outgoing_headers_drop_hop_by_hop_and_swap_a_good_token() -> None:
    forwarder = Forwarder(ForwardSettings("http://h:1/", token="new"), "Verifier-Token", b"vwh-1")
    incoming = [
        (b"host", b"tunnel.example"),
        (b"content-length", b"10"),
        (b"connection", b"keep-alive, x-private"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"te", b"trailers"),
        (b"upgrade", b"h2c"),
        (b"proxy-authorization", b"Basic eA=="),
        (b"x-private", b"hop"),
        (b"verifier-token", b"old"),
        (b"content-type", b"application/json"),
        (b"x-extra", b"kept"),
    ]
    swapped = forwarder.outgoing_headers(incoming, replace_token=True)
    assert swapped == [
        (b"content-type", b"application/json"),
        (b"x-extra", b"kept"),
        (b"verifier-token", b"new"),
        (b"via", b"1.1 vwh-1"),  # RFC 9110 7.6.3: how listeners forwarding to each other stop
    ]
    as_is = forwarder.outgoing_headers(incoming, replace_token=False)
    assert (b"verifier-token", b"old") in as_is and (b"verifier-token", b"new") not in as_is


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://h/x", "bad --forward-to"),
        ("http:///x", "bad --forward-to"),
        ("http://h:99999/", "port"),
    ],
)
def test_bad_forward_urls(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ForwardSettings(url)


def test_label_and_failure() -> None:
    assert handler_label(ForwardResult("u", status=404)) == "404"
    down = ForwardResult("u", error="handler down: connection refused")
    assert handler_label(down) == "down" and failure_of(down) is Failure.DOWN
    assert Failure.TIMEOUT.gateway_status == 504 and Failure.BROKEN.gateway_status == 502


# -- what the sender gets, what the handler gets, what is kept ------------------------


def test_handler_answer_goes_back_and_both_sides_are_kept(
    store_path: Path, handler: tuple[RecordingHandler, str]
) -> None:
    app, url = handler
    before = app.count
    settings = forwarding(url + "/", listen_token=TOKEN)

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.post(
            "/hooks/ok?run=7",
            content=ORDER,
            headers={"Verifier-Token": TOKEN, "X-Trace": "t1", "Connection": "keep-alive"},
        )
        assert r.status_code == 200
        assert r.content == b'{"status": "processed",\n "next": "fulfil"}'
        assert r.headers["x-handler"] == "yes" and r.headers["set-cookie"].startswith("session=")

    [rec] = run_receiver(store_path, settings, scenario)
    [seen] = app.seen[before:]
    assert (seen.method, seen.path, seen.query, seen.body) == ("POST", "/hooks/ok", "run=7", ORDER)
    assert seen.header("verifier-token") == TOKEN and seen.header("x-trace") == "t1"
    assert seen.header("content-length") == str(len(ORDER))
    assert rec.status == 200 and rec.reaction == "done"
    fwd = rec.forward
    assert fwd is not None and fwd.url == f"{url}/hooks/ok?run=7"
    assert fwd.status == 200 and fwd.error is None and fwd.latency_ms is not None
    assert fwd.body == b'{"status": "processed",\n "next": "fulfil"}'
    cookie = dict(fwd.headers)["set-cookie"]
    assert "abcdef" not in cookie and cookie.startswith("••••")
    assert TOKEN not in json.dumps(rec.to_json())


@pytest.mark.parametrize(
    ("path", "status", "reaction"), [("bad", 400, "dropped"), ("boom", 500, "resend")]
)
def test_handler_errors_go_back_as_they_are(
    store_path: Path, handler: tuple[RecordingHandler, str], path: str, status: int, reaction: str
) -> None:
    _, url = handler

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.post(f"/{path}", content=ORDER)
        assert r.status_code == status

    [rec] = run_receiver(store_path, forwarding(url + "/"), scenario)
    assert rec.status == status and rec.forward and rec.forward.status == status
    assert rec.reaction == reaction


def test_slow_handler_is_504_and_would_be_resent(
    store_path: Path, handler: tuple[RecordingHandler, str]
) -> None:
    _, url = handler

    async def scenario(c: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        r = await c.post("/slow", content=ORDER)
        assert r.status_code == 504 and time.perf_counter() - started < 1.2
        assert r.json()["error"] == "handler too slow: no answer within 0.3s"

    [rec] = run_receiver(store_path, forwarding(url + "/", timeout=0.3), scenario)
    assert rec.reaction == "resend" and rec.forward and rec.forward.status is None
    assert failure_of(rec.forward) is Failure.TIMEOUT


def test_handler_down_then_up_without_a_restart(store_path: Path) -> None:
    port = free_port()
    assert probe(ForwardSettings(f"http://127.0.0.1:{port}/")) == "connection refused"

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.post("/first", content=ORDER)
        assert r.status_code == 502
        assert r.json()["error"] == "handler down: connection refused"
        with ThreadedServer(RecordingHandler(), port=port):
            r = await c.post("/second", content=ORDER)
            assert r.status_code == 200 and r.json() == {"handled": "/second"}

    down, up = run_receiver(store_path, forwarding(f"http://127.0.0.1:{port}/"), scenario)
    assert down.status == 502 and down.reaction == "resend" and down.forward
    assert handler_label(down.forward) == "down"
    assert up.status == 200 and up.reaction == "done"


def test_big_answer_goes_back_whole_and_is_kept_truncated(
    store_path: Path, handler: tuple[RecordingHandler, str]
) -> None:
    _, url = handler

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.post("/big", content=ORDER)
        assert r.status_code == 200 and r.content == b"x" * (100 * 1024)

    [rec] = run_receiver(store_path, forwarding(url + "/"), scenario)
    assert rec.forward and rec.forward.body == b"x" * KEPT_BODY_LIMIT
    assert f"(truncated: first {KEPT_BODY_LIMIT} of {100 * 1024} bytes kept)" in request_details(
        rec
    )


def test_rejected_requests_stay_unless_forward_all(
    store_path: Path, handler: tuple[RecordingHandler, str]
) -> None:
    app, url = handler
    before = app.count

    async def scenario(c: httpx.AsyncClient) -> None:
        assert (
            await c.post("/bad-token", content=ORDER, headers={"Verifier-Token": "x"})
        ).status_code == 401
        assert (
            await c.post("/bad-body", content=b"[1]", headers={"Verifier-Token": TOKEN})
        ).status_code == 400
        assert (await c.get("/get")).status_code == 405

    kept = run_receiver(store_path, forwarding(url + "/", listen_token=TOKEN), scenario)
    assert app.count == before
    assert [r.forward for r in kept] == [None, None, None]
    assert [r.reaction for r in kept] == ["dropped"] * 3

    async def all_of_them(c: httpx.AsyncClient) -> None:
        r = await c.post("/bad-token", content=ORDER, headers={"Verifier-Token": "x"})
        assert r.status_code == 200 and r.json() == {"handled": "/bad-token"}  # its own answer
        assert (await c.get("/get")).status_code == 200

    settings = forwarding(url + "/", listen_token=TOKEN, token="other", forward_all=True)
    wrong, get = run_receiver(store_path, settings, all_of_them)[-2:]
    sent = app.seen[before:]
    assert [s.method for s in sent] == ["POST", "GET"]
    assert sent[0].header("verifier-token") == "x"  # a wrong token is never swapped for a good one
    assert wrong.verdict == "wrong" and wrong.status == 200 and wrong.forward
    assert get.method == "GET" and get.reaction == "done"


def test_forward_token_replaces_a_good_token(
    store_path: Path, handler: tuple[RecordingHandler, str]
) -> None:
    app, url = handler
    before = app.count

    async def scenario(c: httpx.AsyncClient) -> None:
        await c.post("/t", content=ORDER, headers={"Verifier-Token": TOKEN})

    run_receiver(
        store_path, forwarding(url + "/", listen_token=TOKEN, token="handler-token"), scenario
    )
    [seen] = app.seen[before:]
    assert [v for k, v in seen.headers if k == "verifier-token"] == ["handler-token"]


def test_scripted_answers_win_but_the_handler_is_still_called(
    store_path: Path, handler: tuple[RecordingHandler, str]
) -> None:
    app, url = handler
    before = app.count

    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await c.post("/ok", content=ORDER)).status_code == 503  # --fail-first 1
        assert (await c.post("/ok", content=ORDER)).status_code == 200  # the handler's answer

    first, second = run_receiver(store_path, forwarding(url + "/", fail_first=1), scenario)
    assert app.count == before + 2
    assert first.status == 503 and first.reaction == "resend"
    assert first.forward and first.forward.status == 200
    assert second.status == 200 and second.attempt == 2

    async def status_given(c: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        r = await c.post("/boom", content=b'{"n": 1}')
        assert r.status_code == 202 and r.json()["received"] is True
        assert time.perf_counter() - started >= 0.2  # --delay: not answered before

    rec = run_receiver(store_path, forwarding(url + "/", status=202, delay=0.2), status_given)[-1]
    assert rec.forward and rec.forward.status == 500 and rec.reaction == "done"


# -- the client against servers that misbehave ----------------------------------------


def _ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize(
    ("answer", "status", "body", "error"),
    [
        (
            lambda r: None,
            502,
            None,
            "handler broke the connection: the server closed the connection without answering",
        ),
        (lambda r: b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort", 502, None, "cut short"),
        (lambda r: b"garbage\r\n\r\n", 502, None, "not valid HTTP"),
        (
            lambda r: (
                b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
                b"4\r\nchun\r\n3\r\nked\r\n0\r\n\r\n"
            ),
            201,
            b"chunked",
            None,
        ),
        (lambda r: b"HTTP/1.0 200 OK\r\n\r\nuntil close", 200, b"until close", None),
        (lambda r: b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(b"after"), 200, b"after", None),
        (lambda r: b"HTTP/1.1 799 Odd\r\ncontent-length: 0\r\n\r\n", 502, None, "status 799"),
    ],
    ids=["closed", "cut-short", "garbage", "chunked", "close-delimited", "100-continue", "799"],
)
def test_misbehaving_handlers(
    store_path: Path,
    answer: Callable[[bytes], bytes | None],
    status: int,
    body: bytes | None,
    error: str | None,
) -> None:
    with RawServer(answer) as raw:

        async def scenario(c: httpx.AsyncClient) -> None:
            r = await c.post("/", content=ORDER)
            assert r.status_code == status
            if body is not None:
                assert r.content == body

        [rec] = run_receiver(store_path, forwarding(raw.url + "/hook"), scenario)
        assert raw.requests[0].startswith(b"POST /hook HTTP/1.1\r\nhost: 127.0.0.1:")
        assert raw.requests[0].endswith(b"\r\n\r\n" + ORDER)
    assert rec.forward is not None
    if error is None:
        assert rec.forward.error is None and rec.forward.status == status
    else:
        assert rec.forward.error is not None and error in rec.forward.error
        assert rec.reaction == "resend"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_kept_connections_the_handler_closed_when_idle_are_retried_fresh(
    store_path: Path, concurrency: int
) -> None:
    """The outbound client's stale-connection rule holds for forwarding too: a handler
    that closes idle kept-alive connections never costs a delivery a 502."""
    groups, size = 4, 4 * concurrency

    with KeepAliveCloser("idle", idle=0.05) as closer:

        async def scenario(c: httpx.AsyncClient) -> None:
            for group in range(groups):
                if group:
                    await asyncio.sleep(0.15)  # the kept connections idle past 0.05 s
                for start in range(0, size, concurrency):
                    sent = [
                        c.post("/", content=b'{"g": %d, "n": %d}' % (group, n))
                        for n in range(start, start + concurrency)
                    ]
                    answers = await asyncio.gather(*sent)
                    assert [(r.status_code, r.content) for r in answers] == [(200, b"ok")] * len(
                        sent
                    )

        kept = run_receiver(store_path, forwarding(closer.url + "/"), scenario)
    assert [(r.status, r.forward and r.forward.status) for r in kept] == [(200, 200)] * (
        groups * size
    )
    assert closer.count == groups * size == len(set(closer.bodies))  # one request each
    assert closer.closed_unread > 0  # kept connections the handler had closed were tried


def test_forwarding_to_itself_is_refused(store_path: Path) -> None:
    port = free_port()
    settings = forwarding(f"http://localhost:{port}/")
    with pytest.raises(UsageError, match="this listener itself"):
        Listener(settings, "127.0.0.1", port, store_path)


# -- how it shows ---------------------------------------------------------------------


def _record(**kw: Any) -> CapturedRequest:
    base: dict[str, Any] = {
        "received_at": 1_700_000_000.0,
        "method": "POST",
        "path": "/hooks",
        "verdict": "ok",
        "status": 200,
        "id": 4,
        "reaction": "done",
    }
    return CapturedRequest(**{**base, **kw})


def test_plain_line_table_and_details_show_the_handler_side() -> None:
    answered = _record(
        forward=ForwardResult(
            "http://h/x", 500, 3.25, [("content-type", "text/plain")], b"boom\n!"
        ),
        status=500,
        reaction="resend",
    )
    down = _record(
        id=5,
        status=502,
        reaction="resend",
        forward=ForwardResult(
            "http://h/x", latency_ms=0.5, error="handler down: connection refused"
        ),
    )
    skipped = _record(id=6, verdict="wrong", status=401, reaction="dropped")
    assert plain_line(answered).endswith(
        "handler=500 handler_ms=3.2 next=resend handler_body='boom !'"
    )
    assert plain_line(down).endswith(
        "handler=down handler_ms=0.5 next=resend handler_error='handler down: connection refused'"
    )
    assert plain_line(skipped).endswith("handler=not-sent next=dropped")
    assert "handler" not in plain_line(_record(reaction=None))

    stats = ListenStats(forwarding=True)
    for r in (answered, down, skipped):
        stats.add(r)
    console = Console(width=160, record=True, color_system=None)
    console.print(request_table([answered, down, skipped], stats, forwarding=True))
    text = console.export_text()
    assert "handler said" in text and "boom !" in text
    assert "down" in text and "connection refused" in text and "not sent" in text
    assert "2 forwarded, 1 without handler answer" in text

    details = request_details(answered)
    assert "forwarded to http://h/x" in details and "handler answered 500 in 3.2 ms" in details
    assert "Vendasta would: resend it (5xx, no answer in time, or a broken connection)" in details
    assert "handler: handler down: connection refused after 0.5 ms" in request_details(down)
    assert any(line.startswith("not forwarded") for line in request_details(skipped))
