"""`vwh listen --forward-to` as a user runs it: a real listener in front of real handlers.

What the sender received, what the handler received (bytes equal), and what was kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.helpers import FIXTURES, ThreadedServer, free_port, listener, run_vwh
from tests.test_forward import RawServer, RecordingHandler
from vwh.store import CaptureStore

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()
TOKEN = "s3cret-verifier-token"


def post(
    url: str, body: bytes = ORDER, token: str | None = TOKEN, **headers: str
) -> httpx.Response:
    if token is not None:
        headers["Verifier-Token"] = token
    return httpx.post(url, content=body, headers=headers, timeout=10)


def test_sender_gets_what_the_handler_did_and_both_sides_are_kept(store_path: Path) -> None:
    handler = RecordingHandler()
    with (
        ThreadedServer(handler) as server,
        listener("--token", TOKEN, "--forward-to", server.url + "/") as proc,
    ):
        ok = post(proc.url + "/webhooks/ok?run=1", **{"X-Trace": "t1", "Upgrade": "h2c"})
        bad = post(proc.url + "/webhooks/bad")
        boom = post(proc.url + "/webhooks/boom")
        proc.stop()
    assert (ok.status_code, bad.status_code, boom.status_code) == (200, 400, 500)
    assert ok.content == b'{"status": "processed",\n "next": "fulfil"}'  # byte for byte
    assert ok.headers["x-handler"] == "yes"
    assert bad.content == b'{"error": "unknown order"}' and boom.content == b"Internal Server Error"

    first = handler.seen[0]
    assert (first.method, first.path, first.query) == ("POST", "/webhooks/ok", "run=1")
    assert first.body == ORDER  # bytes equal at the handler
    assert first.header("verifier-token") == TOKEN and first.header("x-trace") == "t1"
    assert first.header("upgrade") is None and first.header("connection") is None
    assert [s.body for s in handler.seen] == [ORDER] * 3

    lines = proc.stdout.splitlines()
    assert "status=200" in lines[0] and "handler=200" in lines[0] and "next=done" in lines[0]
    assert "status=400" in lines[1] and "handler=400" in lines[1] and "next=dropped" in lines[1]
    assert "status=500" in lines[2] and "handler=500" in lines[2] and "next=resend" in lines[2]
    assert f"forward: {server.url}/ (the request's path appended" in proc.stderr
    assert "3 forwarded, 0 without handler answer" in proc.stderr

    with CaptureStore(store_path) as store:
        kept = list(store.iter_all())
    assert [(r.status, r.reaction) for r in kept] == [
        (200, "done"),
        (400, "dropped"),
        (500, "resend"),
    ]
    shown = json.loads(run_vwh("show", "1", "--json").stdout)
    assert shown["status"] == 200 and shown["reaction"] == "done"
    assert shown["forward"]["url"] == f"{server.url}/webhooks/ok?run=1"
    assert shown["forward"]["status"] == 200
    assert shown["forward"]["body"] == '{"status": "processed",\n "next": "fulfil"}'
    assert "abcdef" not in json.dumps(shown)  # the handler's Set-Cookie is masked
    text = run_vwh("show", "1").stdout
    assert '"orderId": "AG-7PQTGLLXQQ:ORD-S548DKHMKX"' in text  # the request side
    assert f"forwarded to {server.url}/webhooks/ok?run=1" in text  # and the handler side
    assert "handler answered 200 in" in text and '"next": "fulfil"' in text
    assert "Vendasta would: done (it got a 2xx)" in text
    assert TOKEN not in proc.stdout + proc.stderr + text


def test_late_handler_is_504_and_would_be_resent() -> None:
    handler = RecordingHandler()
    with (
        ThreadedServer(handler) as server,
        listener(
            "--forward-to", server.url + "/hooks/slow", "--forward-timeout", "0.5", "--json"
        ) as proc,
    ):
        r = post(proc.url + "/anything")
        proc.stop()
    assert r.status_code == 504
    assert r.json()["error"] == "handler too slow: no answer within 0.5s"
    ready, event = [json.loads(line) for line in proc.stdout.splitlines()]
    assert ready["event"] == "ready"
    assert event["status"] == 504 and event["reaction"] == "resend"
    assert event["forward"]["status"] is None
    assert event["forward"]["error"] == "handler too slow: no answer within 0.5s"
    assert handler.seen[0].path == "/hooks/slow"  # an exact --forward-to ignores the path


def test_handler_closing_the_connection_is_502() -> None:
    with RawServer(lambda request: None) as raw, listener("--forward-to", raw.url + "/h") as proc:
        r = post(proc.url)
        proc.stop()
    assert raw.requests[0].endswith(b"\r\n\r\n" + ORDER)
    assert r.status_code == 502
    assert r.json()["error"].startswith(
        "handler broke the connection: the server closed the connection without answering"
    )
    assert "handler=broken" in proc.stdout and "next=resend" in proc.stdout


def test_handler_down_then_up_without_restarting_vwh() -> None:
    port = free_port()
    with listener("--forward-to", f"http://127.0.0.1:{port}/") as proc:
        down = post(proc.url + "/a")
        handler = RecordingHandler()
        with ThreadedServer(handler, port=port):
            up = post(proc.url + "/b")
        proc.stop()
    assert f"warning: handler down: connection refused at 127.0.0.1:{port}" in proc.stderr
    assert down.status_code == 502 and down.json()["error"] == "handler down: connection refused"
    assert up.status_code == 200 and [s.path for s in handler.seen] == ["/b"]
    first, second = proc.stdout.splitlines()
    assert "handler=down" in first and "handler_error='handler down: connection refused'" in first
    assert "handler=200" in second and "next=done" in second
    assert "2 forwarded, 1 without handler answer" in proc.stderr


def test_rejected_not_forwarded_unless_forward_all() -> None:
    handler = RecordingHandler()
    with ThreadedServer(handler) as server:
        url = server.url + "/"
        with listener("--token", TOKEN, "--forward-to", url, "--forward-token", "other") as p:
            wrong = post(p.url + "/w", token="guess")
            bad = post(p.url + "/b", body=b'{"orderId": ')
            good = post(p.url + "/g")
            p.stop()
        assert (wrong.status_code, bad.status_code, good.status_code) == (401, 400, 200)
        assert [s.path for s in handler.seen] == ["/g"]  # rejected ones never reached it
        assert handler.seen[0].header("verifier-token") == "other"  # --forward-token
        assert "handler=not-sent next=dropped" in p.stdout.splitlines()[0]
        assert "Verifier-Token replaced with" in p.stderr and "other" not in p.stderr

        with listener("--token", TOKEN, "--forward-to", url, "--forward-all") as p:
            wrong = post(p.url + "/bad", token="guess")
            p.stop()
        assert wrong.status_code == 400 and wrong.json() == {"error": "unknown order"}
        assert handler.seen[-1].header("verifier-token") == "guess"  # its own rejection, seen


def test_fail_first_makes_vwh_answer_503_while_the_handler_gets_every_delivery() -> None:
    handler = RecordingHandler()
    with (
        ThreadedServer(handler) as server,
        listener("--fail-first", "1", "--forward-to", server.url + "/ok") as proc,
    ):
        codes = [post(proc.url).status_code for _ in range(2)]
        proc.stop()
    assert codes == [503, 200]
    assert [s.body for s in handler.seen] == [ORDER, ORDER]
    first, second = proc.stdout.splitlines()
    assert "status=503" in first and "handler=200" in first and "next=resend" in first
    assert "status=200" in second and "resend=2" in second and "next=done" in second
    assert "503 to the first 1 of each body" in proc.stderr


def test_forward_options_are_checked() -> None:
    alone = run_vwh("listen", "--port", str(free_port()), "--forward-all", timeout=15)
    assert alone.returncode == 2
    assert alone.stderr.strip() == "vwh: error: --forward-all needs --forward-to URL"
    bad = run_vwh("listen", "--forward-to", "localhost:8000/x", timeout=15)
    assert bad.returncode == 2 and "bad --forward-to 'localhost:8000/x'" in bad.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    loop = run_vwh("listen", "--port", str(port), "--forward-to", url, timeout=15)
    assert loop.returncode == 2 and "is this listener itself" in loop.stderr


def test_two_listeners_forwarding_to_each_other_stop_at_508(tmp_path: Path) -> None:
    """A loop is caught by the Via header each listener adds (RFC 9110 7.6.3)."""
    port_a, port_b = free_port(), free_port()
    store_a, store_b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    a = listener(
        "--forward-to", f"http://127.0.0.1:{port_b}/", "--store", str(store_a), port=port_a
    )
    b = listener(
        "--forward-to", f"http://127.0.0.1:{port_a}/", "--store", str(store_b), port=port_b
    )
    with a as proc_a, b as proc_b:
        r = post(proc_a.url)
        proc_a.stop()
        proc_b.stop()
    assert r.status_code == 508
    with CaptureStore(store_a) as sa, CaptureStore(store_b) as sb:
        kept_a, kept_b = list(sa.iter_all()), list(sb.iter_all())
    assert len(kept_a) == 2 and len(kept_b) == 1  # once round, then refused
    # The refused one is kept first: the first arrival waited for it to be answered.
    looped, first = kept_a
    assert looped.status == 508 and looped.forward is None
    assert looped.error == "forward loop: this request already passed through this listener"
    assert looped.body == ORDER and looped.header("via") is not None
    assert kept_b[0].forward is not None and kept_b[0].forward.status == 508
    assert first.forward is not None and first.forward.status == 508 and first.error is None


# --expect-response: each handler answer judged as the Send a webhook step reads it.
def _answering_by_case() -> object:
    """A handler that answers each body's "case" the way that case names."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    answers: dict[str, object] = {
        "right": {"dealId": "D-1", "amount": 3},
        "missing": {"amount": 3},
        "mistyped": {"dealId": "D-1", "amount": "3"},
        "nested": {"dealId": {"id": "D-1"}, "amount": 3},
        "not-json": b"thanks",
    }

    async def hook(request: Request) -> Response:
        answer = answers[json.loads(await request.body())["case"]]
        if isinstance(answer, bytes):
            return Response(answer, media_type="text/plain")
        return JSONResponse(answer)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def test_expect_response_judges_every_handler_answer(store_path: Path) -> None:
    cases = ["right", "missing", "mistyped", "nested", "not-json"]
    with ThreadedServer(_answering_by_case()) as handler:
        args = (
            "--forward-to",
            handler.url + "/hook",
            "--expect-response",
            "dealId:string,amount:number",
        )
        with listener(*args) as proc:
            for case in cases:
                body = json.dumps({"accountId": "AG-1", "case": case}).encode()
                assert httpx.post(proc.url + "/hook", content=body, timeout=10).status_code == 200
            proc.stop()
    with CaptureStore(store_path) as store:
        checks = [r.answer_check for r in store.iter_all()]
    assert checks[0] == "ok (2 keys)"
    assert checks[1] == "dealId is missing: later steps get no dealId"
    assert checks[2] == "amount is a string, declared number: later steps get the wrong amount"
    assert (checks[3] or "").startswith("dealId holds a JSON object")
    assert (checks[4] or "").startswith("the answer is not a JSON object")
    lines = proc.stdout.splitlines()
    assert "response_data='ok (2 keys)'" in lines[0]
    assert "response_data='dealId is missing" in lines[1]
    assert "expect: the handler's answers to hold dealId:string, amount:number" in proc.stderr
    shown = run_vwh("show", "3")
    assert "response data: amount is a string, declared number" in shown.stdout
    as_json = json.loads(run_vwh("show", "2", "--json").stdout)
    assert as_json["answer_check"].startswith("dealId is missing")
