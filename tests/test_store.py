from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from vwh.errors import NotFoundError, StoreError
from vwh.store import BatchWriter, CapturedRequest, CaptureStore, ForwardResult
from vwh.store_filter import FingerprintFilter
from vwh.webhook import fingerprint


def _record(**kw: object) -> CapturedRequest:
    fields: dict[str, object] = {"received_at": 1000.0, "method": "POST", "path": "/hook"}
    fields.update(kw)
    return CapturedRequest(**fields)  # type: ignore[arg-type]


def test_add_get_and_recent_round_trip(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        body = b'{"orderId": "AG-1:ORD-2", "x": 1}'
        first = store.add(_record(body=body, body_size=len(body)))
        second = store.add(
            _record(
                headers=[("Verifier-Token", "•••• (6 chars)"), ("X-Empty", ""), ("A", "b: c")],
                forward=ForwardResult(
                    url="http://h/", status=500, body=b"boom", headers=[("a", "b")]
                ),
                reaction="resend",
            )
        )
        got = store.get(first)
        assert got.body == body
        assert got.ids == {"orderId": "AG-1:ORD-2"}  # derived from the kept body
        assert [r.id for r in store.recent(10)] == [second, first]
        assert store.get(second).headers == [
            ("Verifier-Token", "•••• (6 chars)"),
            ("X-Empty", ""),
            ("A", "b: c"),
        ]
        fwd = store.get(second).forward
        assert fwd is not None and fwd.status == 500 and fwd.body == b"boom"
        assert fwd.headers == [("a", "b")]
        assert store.count() == 2


def test_fingerprint_filter_never_forgets() -> None:
    seen = FingerprintFilter()
    fingerprints = [fingerprint(b"%d" % i) for i in range(5000)]
    assert [seen.add(fp) for fp in fingerprints].count(True) < 5  # rare false positives
    assert all(seen.add(fp) for fp in fingerprints)  # never a false "new"


def test_get_unknown_id_is_not_found(store_path: Path) -> None:
    with CaptureStore(store_path) as store, pytest.raises(NotFoundError, match="no kept request"):
        store.get(42)


def test_deliveries_of_counts_only_deliveries(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        store.add(_record(fingerprint=-7, attempt=1, received_at=5.0))
        store.add(_record(fingerprint=-7, attempt=2, received_at=9.0))
        store.add(_record(fingerprint=8, attempt=1))
        store.add(_record(fingerprint=-7))  # rejected: not a delivery
        assert store.deliveries_of(-7) == (2, 5.0)
        assert store.deliveries_of(0) == (0, None)


def test_batch_writer_commits_before_answering(store_path: Path) -> None:
    CaptureStore(store_path).close()
    writer = BatchWriter(store_path)

    async def burst() -> list[int]:
        return await asyncio.gather(*(writer.write(_record(path=f"/{i}")) for i in range(200)))

    try:
        ids = asyncio.run(burst())
    finally:
        writer.close()
    assert sorted(ids) == list(range(1, 201))
    # Another connection, as `vwh history` in another process, sees every row.
    reader = sqlite3.connect(store_path)
    assert reader.execute("SELECT count(*) FROM requests").fetchone()[0] == 200


def test_write_now_commits_without_an_event_loop(store_path: Path) -> None:
    CaptureStore(store_path).close()
    writer = BatchWriter(store_path)
    record = _record(status=0, error="listener stopped before answering")
    assert writer.write_now(record) == 1 == record.id
    writer.close()
    with CaptureStore(store_path) as store:
        assert store.recent(1)[0].error == "listener stopped before answering"


def test_unusable_paths_raise_store_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(StoreError, match="cannot open the store"):
        CaptureStore(not_a_dir / "store.sqlite3")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError, match=str(garbage)):
        CaptureStore(garbage)


def test_to_json_is_json_ready(store_path: Path) -> None:
    record = _record(body=b"\xff\x00", body_size=2)
    data = record.to_json()
    assert data["body"] == "\xff\x00"
    assert data["path"] == "/hook"


def test_an_older_store_gains_the_answer_check_column(tmp_path: Path) -> None:
    """A store written before --expect-response existed opens, keeps and reads verdicts."""
    path = tmp_path / "old.sqlite3"
    with CaptureStore(path) as store:
        store.add(CapturedRequest(received_at=1.0, method="POST", path="/old"))
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE requests DROP COLUMN answer_check")
    conn.commit()
    conn.close()
    with CaptureStore(path) as store:
        store.add(
            CapturedRequest(received_at=2.0, method="POST", path="/new", answer_check="ok (1 keys)")
        )
        old, new = list(store.iter_all())
    assert (old.path, old.answer_check) == ("/old", None)
    assert (new.path, new.answer_check) == ("/new", "ok (1 keys)")


def test_a_display_that_fails_stops_neither_the_writer_nor_later_displays(
    store_path: Path,
) -> None:
    CaptureStore(store_path).close()
    shown: list[int | None] = []
    failed = threading.Event()

    def show(records: list[CapturedRequest]) -> None:
        if any(r.path == "/bad" for r in records):
            failed.set()
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        shown.extend(r.id for r in records)

    writer = BatchWriter(store_path, on_commit=show)
    try:
        assert writer.write_now(_record(path="/bad")) == 1
        assert failed.wait(5)  # the display failed in the writer thread...
        assert writer.write_now(_record(path="/later")) == 2  # ...which goes on writing
    finally:
        writer.close()
    assert shown == [2]


def test_delete_goes_in_short_transactions_and_counts(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        for i in range(7):
            store.add(_record(received_at=1000.0 + i))
        assert store.delete("received_at < ?", (1003.0,), chunk=2) == 3
        assert [r.id for r in store.iter_all()] == [4, 5, 6, 7]
        assert store.delete(chunk=2) == 4
        assert store.count() == 0
        assert store.delete() == 0


def test_batch_writer_keeps_only_the_newest_n(store_path: Path) -> None:
    CaptureStore(store_path).close()  # the schema
    writer = BatchWriter(store_path, keep=5)

    async def burst(start: int) -> list[int]:
        return await asyncio.gather(
            *(writer.write(_record(path=f"/{start + i}")) for i in range(4))
        )

    try:
        for start in range(0, 40, 4):  # ten commits of four
            asyncio.run(burst(start))
        writer.write_now(_record(path="/last"))
    finally:
        writer.close()
    with CaptureStore(store_path) as store:
        kept = list(store.iter_all())
    assert [r.path for r in kept] == ["/36", "/37", "/38", "/39", "/last"]


def test_delete_spares_what_another_writer_keeps_meanwhile(store_path: Path) -> None:
    """A listener committing while a clear runs loses nothing it committed after it began."""
    other = CaptureStore(store_path)

    class Racing(CaptureStore):
        def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
            rows = super()._query(sql, params)
            if sql.startswith("SELECT max(id)"):
                other.add(_record(path="/during"))  # right after the clear looked
            return rows

    with Racing(store_path) as store:
        for _ in range(5):
            store.add(_record(path="/before"))
        assert store.delete(chunk=2) == 5
        assert [r.path for r in store.iter_all()] == ["/during"]
    other.close()
