"""The receiver app in-process (ASGI transport): fast checks of every answer it gives."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from pathlib import Path

import httpx
import pytest

from tests.helpers import ThreadedServer, raw_exchange, run_receiver, served_receiver
from tests.scripted import Scripted
from vwh.forward import ForwardSettings
from vwh.receiver import create_app
from vwh.receiver_settings import ReceiverSettings
from vwh.store import BatchWriter, CapturedRequest, CaptureStore
from vwh.webhook import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS

ORDER = b'{"orderId": "AG-1:ORD-2", "entityId": "AG-1:ORD-2", "accountId": "AG-1"}'


def post(client: httpx.AsyncClient, body: bytes, **headers: str) -> Awaitable[httpx.Response]:
    return client.post("/hooks/vendasta", content=body, headers=headers)


def test_right_token_is_accepted_and_kept(store_path: Path) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        r = await post(c, ORDER, **{"Verifier-Token": "s3cret"})
        assert r.status_code == 200
        assert r.json() == {"received": True, "id": 1}

    [rec] = run_receiver(store_path, ReceiverSettings(token="s3cret"), scenario)
    assert rec.verdict == "ok" and rec.status == 200 and rec.body == ORDER
    assert rec.ids["orderId"] == "AG-1:ORD-2" and rec.attempt == 1
    assert "s3cret" not in json.dumps(rec.headers) and "s3cret" not in rec.token_masked


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [({"Verifier-Token": "nope"}, "wrong"), ({}, "missing"), ({"X-Other": "s3cret"}, "missing")],
)
def test_wrong_or_missing_token_is_401_and_kept(
    store_path: Path, headers: dict[str, str], verdict: str
) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        r = await post(c, ORDER, **headers)
        assert r.status_code == 401
        assert verdict in r.json()["error"]

    [rec] = run_receiver(store_path, ReceiverSettings(token="s3cret"), scenario)
    assert rec.verdict == verdict and rec.rejected and rec.body == ORDER
    assert rec.attempt is None  # a rejected request is not a delivery


def test_reject_status_and_renamed_header(store_path: Path) -> None:
    settings = ReceiverSettings(token="s3cret", token_header="X-Signature", reject_status=403)

    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await post(c, ORDER, **{"x-signature": "s3cret"})).status_code == 200
        assert (await post(c, ORDER, **{"Verifier-Token": "s3cret"})).status_code == 403

    ok, rejected = run_receiver(store_path, settings, scenario)
    assert ok.verdict == "ok" and rejected.verdict == "missing"
    assert "s3cret" not in json.dumps(ok.headers)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "empty body"),
        (b'{"orderId": ', "invalid JSON"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b"[1]", "JSON array, not an object"),
        (b"7", "JSON number, not an object"),
    ],
)
def test_bad_bodies_are_400_and_kept(store_path: Path, body: bytes, error: str) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        r = await post(c, body, **{"Verifier-Token": "t"})
        assert r.status_code == 400
        assert error in r.json()["error"]

    [rec] = run_receiver(store_path, ReceiverSettings(token="t"), scenario)
    assert rec.body == body and error in (rec.error or "")


def test_wrong_token_wins_over_bad_body(store_path: Path) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await post(c, b"[", **{"Verifier-Token": "x"})).status_code == 401

    run_receiver(store_path, ReceiverSettings(token="t"), scenario)


def test_oversize_body_is_413_and_kept_without_body(store_path: Path) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await post(c, b'{"a":"' + b"x" * 200 + b'"}')).status_code == 413

        async def chunks():  # no Content-Length: the limit holds while streaming
            for _ in range(10):
                yield b"x" * 50

        r = await c.post("/", content=chunks())
        assert r.status_code == 413

    first, streamed = run_receiver(store_path, ReceiverSettings(max_body=100), scenario)
    assert first.body is None and first.body_size == 208 and first.status == 413
    assert streamed.body is None and streamed.body_size > 100


def test_other_methods_are_405_and_kept(store_path: Path) -> None:
    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.get("/hooks?x=1")
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        assert (await c.put("/hooks", content=ORDER)).status_code == 405

    get, put = run_receiver(store_path, ReceiverSettings(), scenario)
    assert (get.method, get.query) == ("GET", "x=1") and put.method == "PUT"


def test_scripted_status_delay_and_response_body(store_path: Path) -> None:
    settings = ReceiverSettings(status=202, delay=0.2, respond_body=b'{"next": "step"}')

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await post(c, ORDER)
        assert r.status_code == 202 and r.json() == {"next": "step"}

    [rec] = run_receiver(store_path, settings, scenario)
    assert rec.latency_ms >= 200


def test_fail_first_answers_503_per_distinct_body(store_path: Path) -> None:
    other = b'{"orderId": "AG-1:ORD-3"}'

    async def scenario(c: httpx.AsyncClient) -> list[int]:
        codes = [(await post(c, body)).status_code for body in (ORDER, ORDER, other, ORDER, other)]
        assert codes == [503, 503, 503, 200, 503]
        return codes

    recs = run_receiver(store_path, ReceiverSettings(fail_first=2), scenario)
    assert [r.attempt for r in recs] == [1, 2, 1, 3, 2]
    assert [r.is_resend for r in recs] == [False, True, False, True, True]


def test_resends_are_recognised_across_restarts(store_path: Path) -> None:
    async def once(c: httpx.AsyncClient) -> None:
        await post(c, ORDER)

    run_receiver(store_path, ReceiverSettings(), once)
    [_, again] = run_receiver(store_path, ReceiverSettings(), once)
    assert again.attempt == 2 and again.first_seen_at is not None


def test_save_writes_accepted_bodies_byte_for_byte(store_path: Path, tmp_path: Path) -> None:
    save = tmp_path / "saved"
    save.mkdir()

    async def scenario(c: httpx.AsyncClient) -> None:
        await post(c, ORDER, **{"Verifier-Token": "t"})
        await post(c, ORDER, **{"Verifier-Token": "wrong"})
        await post(c, b"[]", **{"Verifier-Token": "t"})

    run_receiver(store_path, ReceiverSettings(token="t", save_dir=save), scenario)
    assert [p.name for p in save.iterdir()] == ["vwh-000001.json"]
    assert (save / "vwh-000001.json").read_bytes() == ORDER


def test_store_failure_is_never_answered_2xx(store_path: Path) -> None:
    store = CaptureStore(store_path)
    writer = BatchWriter(store_path)
    app = create_app(ReceiverSettings(token="t"), writer, store)
    store._conn.execute("DROP TABLE requests")  # the store breaks under the listener

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vwh") as c:
            # A delivery reads the store (resend check); a rejected request only writes.
            return [await post(c, ORDER, **{"Verifier-Token": "t"}), await post(c, ORDER)]

    try:
        delivery, rejected = asyncio.run(go())
    finally:
        writer.close()
        store.close()
    assert delivery.status_code == 500
    assert "cannot read the store" in delivery.json()["error"]
    assert rejected.status_code == 500
    assert "cannot write to the store" in rejected.json()["error"]


# Against a real uvicorn server: what the sender gets on the wire, and what is kept.


def _kept(store_path: Path) -> list[CapturedRequest]:
    with CaptureStore(store_path) as store:
        return list(store.iter_all())


def test_an_unexpected_error_is_kept_and_answered_500(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(raw: bytes) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr("vwh.receiver.fingerprint", broken)
    with served_receiver(store_path, ReceiverSettings(token="t")) as served:
        r = httpx.post(served.url + "/x", content=ORDER, headers={"Verifier-Token": "t"})
        again = httpx.post(served.url + "/x", content=ORDER, headers={"Verifier-Token": "t"})
    assert r.status_code == 500 and again.status_code == 500  # the listener lives on
    assert r.json()["error"] == "internal error: RuntimeError: boom"
    [first, second] = _kept(store_path)
    assert first.status == 500 and first.error == "internal error: RuntimeError: boom"
    assert first.body == ORDER and r.json()["id"] == first.id
    assert [s.id for s in served.shown] == [first.id, second.id]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[" * 100_000, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"orderId": ' + b"9" * 5000 + b"}", f"number with more than {MAX_NUMBER_DIGITS} digits"),
    ],
)
def test_hostile_bodies_are_400_kept_and_shown(store_path: Path, body: bytes, error: str) -> None:
    with served_receiver(store_path, ReceiverSettings(token="t")) as served:
        r = httpx.post(served.url, content=body, headers={"Verifier-Token": "t"})
        ok = httpx.post(served.url, content=ORDER, headers={"Verifier-Token": "t"})
    assert (r.status_code, r.json()["error"]) == (400, error)
    assert ok.status_code == 200  # the listener survives
    [refused, accepted] = _kept(store_path)
    assert refused.body == body and refused.error == error and refused.status == 400
    assert refused.attempt is None and accepted.status == 200
    assert [s.id for s in served.shown] == [refused.id, accepted.id]


@pytest.mark.parametrize("forwarding", [False, True])
def test_a_body_cut_short_is_kept_as_such_never_accepted_or_forwarded(
    store_path: Path, forwarding: bool
) -> None:
    handler = Scripted(200)
    head = b"POST /hooks HTTP/1.1\r\nHost: x\r\nVerifier-Token: t\r\nContent-Length: 100\r\n\r\n"
    with ThreadedServer(handler) as down_the_line:
        forward = ForwardSettings(down_the_line.url + "/") if forwarding else None
        with served_receiver(store_path, ReceiverSettings(token="t", forward=forward)) as served:
            raw_exchange(served.port, head + ORDER[:21], close_after=0.5)
            r = httpx.post(served.url, content=ORDER, headers={"Verifier-Token": "t"})
    assert r.status_code == 200
    cut, whole = _kept(store_path)
    found = re.fullmatch(r"body cut short: (\d+) of 100 bytes", cut.error or "")
    assert found, cut.error
    assert cut.body == ORDER[: int(found.group(1))] and cut.body_size <= 21
    assert cut.status == 0 and cut.rejected and cut.attempt is None and cut.forward is None
    assert whole.attempt == 1  # the cut-short one was no delivery
    assert handler.count == (1 if forwarding else 0)  # only the whole one went on
    assert [s.id for s in served.shown] == [cut.id, whole.id]


def test_secret_query_parameters_and_headers_never_reach_the_store(store_path: Path) -> None:
    query = "a=1&token=QTOKEN-1&Access_Token=QTOKEN-2&api_key=QTOKEN-3&signature=QTOKEN-4&b=%20x"
    headers = {
        "Verifier-Token": "HTOKEN-0",
        "X-Auth-Token": "HTOKEN-1",
        "X-Api-Key": "HTOKEN-2",
        "Stripe-Signature": "HTOKEN-3",
        "X-Webhook-Secret": "HTOKEN-4",
        "Authorization": "Bearer HTOKEN-5",
        "Cookie": "session=HTOKEN-6",
        "X-Request-Id": "req-42",
    }
    handler = Scripted(200)
    with ThreadedServer(handler) as down_the_line:
        settings = ReceiverSettings(forward=ForwardSettings(down_the_line.url + "/"))
        with served_receiver(store_path, settings) as served:
            r = httpx.post(f"{served.url}/hooks?{query}", content=ORDER, headers=headers)
    assert r.status_code == 200
    [rec] = _kept(store_path)
    assert rec.query.startswith("a=1&token=•••• (8 chars)&Access_Token=•••• (8 chars)&")
    assert rec.query.endswith("&b=%20x") and rec.header("x-request-id") == "req-42"
    assert rec.forward is not None and "QTOKEN" not in rec.forward.url
    assert handler.received[0].path == "/hooks"  # the handler gets them all as they came
    assert handler.received[0].header("x-auth-token") == "HTOKEN-1"
    on_disk = b"".join(p.read_bytes() for p in store_path.parent.glob(store_path.name + "*"))
    assert b"req-42" in on_disk  # the file holds the request...
    assert b"QTOKEN" not in on_disk and b"HTOKEN" not in on_disk  # ...never its secrets


def test_a_non_ascii_token_is_compared_as_bytes(store_path: Path) -> None:
    with served_receiver(store_path, ReceiverSettings(token="Tö")) as served:
        utf8 = raw_exchange(served.port, _raw_post("Tö".encode()))
        latin1 = raw_exchange(served.port, _raw_post("Tö".encode("latin-1")))
    assert utf8.startswith(b"HTTP/1.1 200 ") and latin1.startswith(b"HTTP/1.1 401 ")
    assert [r.verdict for r in _kept(store_path)] == ["ok", "wrong"]


def _raw_post(token: bytes, body: bytes = ORDER) -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nVerifier-Token: %s\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (token, len(body), body)
    )


def test_what_the_listener_shows_is_what_the_store_kept(store_path: Path) -> None:
    """Requests never parsed as deliveries (cut short, not POST) show the ids their kept
    body carries, as `vwh history` does: one rule for the live line and the store."""
    head = b"POST /cut HTTP/1.1\r\nHost: x\r\nVerifier-Token: t\r\nContent-Length: 100\r\n\r\n"
    get = b"GET /get HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
    with served_receiver(store_path, ReceiverSettings(token="t")) as served:
        raw_exchange(served.port, head + ORDER, close_after=0.5)  # a whole object, cut short
        assert raw_exchange(served.port, get % len(ORDER) + ORDER).startswith(b"HTTP/1.1 405 ")
        r = httpx.post(served.url, content=ORDER, headers={"Verifier-Token": "t"})
    assert r.status_code == 200
    kept = _kept(store_path)
    assert [k.status for k in kept] == [0, 405, 200]
    assert all(k.ids["orderId"] == "AG-1:ORD-2" for k in kept)
    assert [s.to_json() for s in served.shown] == [k.to_json() for k in kept]


def test_a_refused_request_shows_what_the_store_kept(store_path: Path) -> None:
    """The same for a request the HTTP parser refused (kept through `keep_refused`)."""
    shown: list[CapturedRequest] = []
    CaptureStore(store_path).close()  # the schema; the writer only inserts
    writer = BatchWriter(store_path, on_commit=shown.extend)
    app = create_app(ReceiverSettings(token="t"), writer)
    try:
        asyncio.run(app.keep_refused(ORDER, len(ORDER), 400, "malformed HTTP: invalid method"))
    finally:
        writer.close()
    [kept] = _kept(store_path)
    assert kept.ids["orderId"] == "AG-1:ORD-2"
    assert [s.to_json() for s in shown] == [kept.to_json()]
