"""The background resolver against the fake Vendasta: names, failures, cache, the store."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from tests.fakes.vendasta import RS256, RunningFake
from tests.helpers import FIXTURES, free_port
from vwh.api import VendastaClient
from vwh.auth import token_source
from vwh.resolve import Resolution, Resolver, read_resolved, wants_resolving
from vwh.store import CapturedRequest, CaptureStore
from vwh.webhook import body_ids, parse_body

ORDER_BODY = (FIXTURES / "payloads/order.json").read_bytes()
USER_BODY = (FIXTURES / "payloads/user.json").read_bytes()


class Collected:
    """What the resolver handed over, and a way to wait for it (bounded)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, Resolution]] = []
        self.changed = threading.Condition()

    def __call__(self, request_id: int, resolution: Resolution) -> None:
        with self.changed:
            self.items.append((request_id, resolution))
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 20) -> dict[int, Resolution]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.items) >= count, timeout), self.items
        return dict(self.items)


def kept(store_path: Path, *bodies: bytes, verdict: str = "ok") -> list[CapturedRequest]:
    records = []
    with CaptureStore(store_path) as store:
        for body in bodies:
            record = CapturedRequest(received_at=time.time(), method="POST", path="/", body=body)
            record.verdict, record.ids = verdict, body_ids(parse_body(body))
            store.add(record)
            records.append(record)
    return records


def client(vendasta: RunningFake) -> VendastaClient:
    source = token_source(credentials=RS256, token_url=vendasta.token_url)
    return VendastaClient(source, base_url=vendasta.base_url, env="prod", retries=0)


def test_resolves_names_keeps_them_and_caches_per_record(
    vendasta: RunningFake, store_path: Path
) -> None:
    records = kept(store_path, ORDER_BODY, ORDER_BODY)
    seen = Collected()
    resolver = Resolver(client(vendasta), store_path, seen).start()
    try:
        assert resolver.submit(records) == [1, 2]
        got = seen.wait_for(2)
    finally:
        resolver.close()
    assert (
        got[1]
        == got[2]
        == {
            "order": {
                "id": "AG-7PQTGLLXQQ:ORD-S548DKHMKX",
                "status": "processing",
                "currency": "USD",
            },
            "account": {"id": "AG-7PQTGLLXQQ", "name": "Patty's Irish Pub"},
            "automation": {
                "id": "Automation-7a416085-5668-467c-98ad-f903ad1c4187",
                "name": "Notify fulfilment when an order is processing",
                "status": "on",
            },
        }
    )
    assert resolver.lookups == 3  # one per record, not per delivery
    assert read_resolved(store_path, 1) == got[1]
    assert read_resolved(store_path, 99) is None
    with CaptureStore(store_path) as store:
        assert store.count() == 2  # the requests themselves untouched


def test_failures_are_short_and_do_not_stop_the_rest(
    vendasta: RunningFake, store_path: Path
) -> None:
    records = kept(store_path, USER_BODY)
    seen = Collected()
    resolver = Resolver(client(vendasta), store_path, seen).start()
    try:
        resolver.submit(records)
        got = seen.wait_for(1)[1]
    finally:
        resolver.close()
    assert got["user"]["name"] == "Bill Smith"
    assert got["automation"]["error"] == "not found in prod: a demo automation?"


def test_a_token_without_the_scope(vendasta: RunningFake, store_path: Path) -> None:
    token = vendasta.fake.issue_token(["order:read", "automation:read"])
    source = token_source(access_token=token)
    api = VendastaClient(source, base_url=vendasta.base_url, env="prod", retries=0)
    seen = Collected()
    resolver = Resolver(api, store_path, seen).start()
    try:
        resolver.submit(kept(store_path, ORDER_BODY))
        got = seen.wait_for(1)[1]
    finally:
        resolver.close()
    assert got["account"] == {"id": "AG-7PQTGLLXQQ", "error": "token lacks sales.account"}
    assert got["order"]["status"] == "processing"


def test_an_api_that_is_down_is_tried_again_later(vendasta: RunningFake, store_path: Path) -> None:
    token = vendasta.fake.issue_token(["order:read"])
    down = f"http://127.0.0.1:{free_port()}/platform"
    api = VendastaClient(token_source(access_token=token), base_url=down, retries=0)
    seen = Collected()
    resolver = Resolver(api, store_path, seen).start()
    try:
        resolver.submit(kept(store_path, ORDER_BODY))
        first = seen.wait_for(1)[1]
        resolver.submit(kept(store_path, ORDER_BODY))
        seen.wait_for(2)
    finally:
        resolver.close()
    assert first["order"] == {"id": "AG-7PQTGLLXQQ:ORD-S548DKHMKX", "error": "API unreachable"}
    assert resolver.lookups == 6  # transient: not cached
    assert json.loads(json.dumps(read_resolved(store_path, 1))) == first


def test_rejected_or_idless_deliveries_are_not_looked_up(store_path: Path) -> None:
    wrong, = kept(store_path, ORDER_BODY, verdict="wrong")  # fmt: skip
    nothing, = kept(store_path, b'{"partnerId": "9YW9"}')  # fmt: skip
    good, = kept(store_path, ORDER_BODY)  # fmt: skip
    assert [wants_resolving(r) for r in (wrong, nothing, good)] == [False, False, True]
