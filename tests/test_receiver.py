"""The receiver app in-process (ASGI transport): fast checks of every answer it gives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path

import httpx
import pytest

from tests.helpers import run_receiver
from vwh.receiver import ReceiverSettings, create_app
from vwh.store import BatchWriter, CaptureStore

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
