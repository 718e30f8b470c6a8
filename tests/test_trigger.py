"""The run's body, its extra data, and finding its delivery in a listener's store."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import FIXTURES
from vwh.errors import InputError, TimeoutError_, UsageError
from vwh.store import CapturedRequest, CaptureStore
from vwh.trigger import AutomationRun, StoreWatch, names_entity, parse_data, wait_for_delivery

AUTOMATION = "Automation-7a416085-5668-467c-98ad-f903ad1c4187"
ORDER_ID = "AG-7PQTGLLXQQ:ORD-S548DKHMKX"


def test_the_body_is_the_specs_shape() -> None:
    run = AutomationRun(AUTOMATION, ORDER_ID, {"region": "west"}).checked()
    assert run.document() == json.loads((FIXTURES / "api/automationRuns/request.json").read_text())


@pytest.mark.parametrize(
    ("automation", "entity"),
    [("Automation-", ORDER_ID), ("automation-1", ORDER_ID), (AUTOMATION, "U-1"), (AUTOMATION, "")],
)
def test_ids_are_checked_before_anything_is_sent(automation: str, entity: str) -> None:
    with pytest.raises(UsageError):
        AutomationRun(automation, entity).checked()


def test_data_pairs_override_the_file(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text('{"a": "1", "b": 2}')
    assert parse_data(["a=x=y", "c="], data) == {"a": "x=y", "b": 2, "c": ""}
    for text in ("[1]", "{", '{"a": [1]}'):
        data.write_text(text)
        with pytest.raises(InputError):
            parse_data([], data)
    with pytest.raises(InputError):
        parse_data([], tmp_path / "missing.json")
    with pytest.raises(UsageError):
        parse_data(["=v"])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"orderId": ORDER_ID}, True),
        ({"entityId": ORDER_ID}, True),
        ({"accountId": ORDER_ID}, True),
        ({"userId": ORDER_ID}, False),
        ({"orderId": ORDER_ID + "X"}, False),
    ],
)
def test_names_entity(body: dict[str, str], named: bool) -> None:
    assert names_entity(json.dumps(body).encode(), ORDER_ID) is named
    assert names_entity(b"not json", ORDER_ID) is False


def _keep(path: Path, body: dict[str, str], received_at: float | None = None) -> None:
    record = CapturedRequest(
        received_at=received_at or time.time(),
        method="POST",
        path="/",
        body=json.dumps(body).encode(),
    )
    with CaptureStore(path) as store:
        store.add(record)


def test_waits_for_a_store_that_does_not_exist_yet(store_path: Path) -> None:
    watch = StoreWatch(store_path)
    watch.mark()  # nothing there: every request counts, if it arrives after `since`
    since = time.time()
    writer = threading.Timer(0.3, _keep, (store_path, {"orderId": ORDER_ID}))
    writer.start()
    try:
        found = wait_for_delivery(watch, ORDER_ID, since=since, timeout=20)
    finally:
        writer.join()
        watch.close()
    assert found.id == 1 and found.ids["orderId"] == ORDER_ID


def test_only_requests_after_the_trigger_count(store_path: Path) -> None:
    _keep(store_path, {"orderId": ORDER_ID})  # before the trigger
    watch = StoreWatch(store_path)
    watch.mark()
    since = time.time()
    _keep(store_path, {"accountId": "AG-OTHER"})  # after, but another entity
    ticks: list[float] = []
    with pytest.raises(TimeoutError_, match="is `vwh listen` running on that store"):
        wait_for_delivery(watch, ORDER_ID, since=since, timeout=0.3, on_tick=ticks.append)
    assert ticks and ticks == sorted(ticks)
    _keep(store_path, {"entityId": ORDER_ID})
    assert wait_for_delivery(watch, ORDER_ID, since=since, timeout=5).id == 3
    watch.close()
