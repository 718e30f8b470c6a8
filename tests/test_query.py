from __future__ import annotations

from pathlib import Path

import pytest

from vwh.errors import UsageError
from vwh.query import RequestFilter, delete_matching, iter_matching, parse_since, select
from vwh.store import CapturedRequest, CaptureStore, ForwardResult


def _keep(store: CaptureStore, **fields: object) -> int:
    defaults: dict[str, object] = {"received_at": 1000.0, "method": "POST", "path": "/hooks"}
    record = CapturedRequest(**{**defaults, **fields})  # type: ignore[arg-type]
    return store.add(record)


@pytest.fixture
def store(tmp_path: Path) -> CaptureStore:
    s = CaptureStore(tmp_path / "q.sqlite3")
    _keep(s, verdict="ok", status=200, attempt=1, body=b'{"orderId":"AG-1:ORD-ABC"}')
    _keep(s, verdict="wrong", status=401, body=b'{"orderId":"AG-2"}')
    _keep(s, verdict="ok", status=503, attempt=2, body=b'{"accountId":"AG-3"}', received_at=2000.0)
    _keep(s, verdict="missing", status=401, path="/other/100%_done")
    _keep(s, verdict="not checked", status=400, error="invalid JSON", body=b"{")
    _keep(
        s,
        verdict="ok",
        status=200,
        attempt=1,
        body=b'{"accountId":"AG-4"}',
        forward=ForwardResult(url="http://127.0.0.1:1/", status=500),
    )
    return s


def _ids(records: list[CapturedRequest]) -> list[int | None]:
    return [r.id for r in records]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (RequestFilter(), [6, 5, 4, 3, 2, 1]),
        (RequestFilter(verdict="ok"), [6, 3, 1]),
        (RequestFilter(verdict="unchecked"), [5]),
        (RequestFilter(status="401"), [4, 2]),
        (RequestFilter(status="5xx"), [3]),
        (RequestFilter(status="2XX"), [6, 1]),
        (RequestFilter(path_prefix="/other"), [4]),
        (RequestFilter(grep="ord-abc"), [1]),
        (RequestFilter(grep="100%_"), [4]),
        (RequestFilter(grep="%"), [4]),
        (RequestFilter(resends=True), [3]),
        (RequestFilter(since=1500.0), [3]),
        (RequestFilter(until=1500.0, verdict="ok"), [6, 1]),
        (RequestFilter(outcome="accepted"), [6, 1]),
        (RequestFilter(outcome="rejected"), [5, 4, 2]),
        (RequestFilter(outcome="handler-failed"), [6]),
        (RequestFilter(verdict="ok", status="2xx", grep="AG-4"), [6]),
    ],
)
def test_each_filter_selects_exactly_its_rows(
    store: CaptureStore, flt: RequestFilter, expected: list[int]
) -> None:
    assert _ids(select(store, flt, limit=None)) == expected


def test_pages_by_id_both_ways(store: CaptureStore) -> None:
    assert _ids(select(store, limit=2)) == [6, 5]
    assert _ids(select(store, limit=2, before_id=5)) == [4, 3]
    assert _ids(select(store, limit=None, after_id=4, newest_first=False)) == [5, 6]
    assert _ids(list(iter_matching(store, RequestFilter(verdict="ok"), page=1))) == [1, 3, 6]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verdict": "fine"}, "unknown verdict 'fine'"),
        ({"status": "600"}, "bad status '600'"),
        ({"status": "5x"}, "bad status '5x'"),
        ({"outcome": "lost"}, "unknown filter 'lost'"),
    ],
)
def test_bad_filters_are_usage_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RequestFilter(**kwargs)  # type: ignore[arg-type]


def test_since_takes_durations_and_iso_times() -> None:
    assert parse_since("10m", now=10_000.0) == 9_400.0
    assert parse_since("1.5h", now=10_000.0) == 10_000.0 - 5400
    assert parse_since("2026-12-01T10:00:00Z") == 1796119200.0
    assert parse_since("2026-12-01T11:00:00+01:00") == 1796119200.0
    with pytest.raises(UsageError, match="bad time 'yesterday'"):
        parse_since("yesterday")


def test_iter_matching_newest_first_pages_down(store: CaptureStore) -> None:
    assert _ids(list(iter_matching(store, page=2, newest_first=True))) == [6, 5, 4, 3, 2, 1]
    assert _ids(list(iter_matching(store, RequestFilter(status="401"), newest_first=True))) == [
        4,
        2,
    ]


def test_delete_matching_drops_only_the_matches(store: CaptureStore) -> None:
    assert delete_matching(store, RequestFilter(until=1500.0)) == 5
    assert _ids(select(store, limit=None)) == [3]
    assert delete_matching(store) == 1
    assert store.count() == 0
