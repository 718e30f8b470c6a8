from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from vwh import store_schema, store_writer
from vwh.query import RequestFilter
from vwh.store import BatchWriter, CapturedRequest, CaptureStore
from vwh.store_schema import index_fingerprints


def _delivery(fp: int, attempt: int = 1, at: float = 1000.0) -> CapturedRequest:
    return CapturedRequest(
        received_at=at, method="POST", path="/hook", fingerprint=fp, attempt=attempt
    )


def _mark(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT upto FROM fingerprint_index_upto").fetchone()[0])
    finally:
        conn.close()


def _index_now(store: CaptureStore) -> None:
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        while index_fingerprints(conn):
            pass
    finally:
        conn.close()


def _timeline(store: CaptureStore, fp: int) -> list[int | None]:
    where, params = RequestFilter(fingerprint=fp).where()
    return [r.id for r in store.find(where, tuple(params), newest_first=False)]


def test_the_deliveries_of_a_body_are_found_on_both_sides_of_the_mark(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        store.add(_delivery(-7, 1, at=5.0))
        store.add(_delivery(8))
        _index_now(store)
        assert _mark(store_path) == 2
        store.add(_delivery(-7, 2, at=9.0))  # after the mark: found by the scan
        store.add(CapturedRequest(received_at=1.0, method="POST", path="/", fingerprint=-7))
        assert store.deliveries_of(-7) == (2, 5.0)  # the rejected row is no delivery
        assert _timeline(store, -7) == [1, 3]
        _index_now(store)
        assert _mark(store_path) == 4
        assert store.deliveries_of(-7) == (2, 5.0)
        assert _timeline(store, -7) == [1, 3]


def test_a_freed_id_given_again_is_still_found(store_path: Path) -> None:
    """Deleting the newest rows frees their ids: the mark comes down with them."""
    with CaptureStore(store_path) as store:
        for fp in (1, 2, 3):
            store.add(_delivery(fp))
        _index_now(store)
        assert _mark(store_path) == 3
        assert store.delete("id >= ?", (2,)) == 2
        assert _mark(store_path) == 1
        again = store.add(_delivery(99))
        assert again == 2  # SQLite gave the freed id again
        assert _timeline(store, 99) == [2]
        assert _timeline(store, 2) == []  # the deleted row left the side table too
        conn = sqlite3.connect(store_path)
        assert conn.execute("SELECT fingerprint, id FROM fingerprint_index").fetchall() == [(1, 1)]
        conn.close()


def test_a_store_from_before_the_side_table_moves_its_index_there(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    with CaptureStore(path) as store:
        for i, fp in enumerate((5, -5, 5)):
            store.add(_delivery(fp, attempt=1 + (i == 2)))
    conn = sqlite3.connect(path)  # as vwh wrote it before: an index on requests, no side table
    conn.executescript(
        "DROP TABLE fingerprint_index; DROP TABLE fingerprint_index_upto;"
        " DROP TRIGGER requests_unindex;"
        " CREATE INDEX requests_fingerprint ON requests (fingerprint); PRAGMA user_version=1;"
    )
    conn.close()
    with CaptureStore(path) as store:
        assert store.deliveries_of(5) == (2, 1000.0)
        assert _timeline(store, 5) == [1, 3]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA index_list(requests)").fetchall() == []
    assert conn.execute("SELECT count(*) FROM fingerprint_index").fetchone()[0] == 3
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    assert _mark(path) == 3


def test_the_listener_indexes_in_its_thread_not_in_its_commits(store_path: Path) -> None:
    """No index on requests: a commit writes its rows; the thread indexes them later."""
    CaptureStore(store_path).close()
    writer = BatchWriter(store_path)
    count = store_writer._MAINTAIN_CHANGES + 10

    async def burst() -> list[int]:
        return await asyncio.gather(*(writer.write(_delivery(i)) for i in range(count)))

    try:
        asyncio.run(burst())
    finally:
        writer.close()
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA index_list(requests)").fetchall() == []
    indexed = conn.execute("SELECT count(*) FROM fingerprint_index").fetchone()[0]
    conn.close()
    assert indexed >= store_writer._MAINTAIN_CHANGES
    assert _mark(store_path) == indexed


def test_none_and_bytes_are_kept_as_null_and_blob(store_path: Path) -> None:
    """The identity adapters that spare sqlite3 its failed lookups change no value."""
    with CaptureStore(store_path) as store:
        body = b"\xff\x00not utf-8"
        rid = store.add(CapturedRequest(received_at=1.0, method="POST", path="/", body=body))
        assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
        conn = sqlite3.connect(store_path)
        kinds = conn.execute(
            "SELECT typeof(body), typeof(error), typeof(forward_body) FROM requests WHERE id = ?",
            (rid,),
        ).fetchone()
        conn.close()
        assert kinds == ("blob", "null", "null")
        assert store.get(rid).body == body


def test_rows_of_short_runs_are_indexed_when_the_writer_closes(store_path: Path) -> None:
    """A run that stops before its first checkpoint leaves no unindexed tail behind."""
    CaptureStore(store_path).close()
    for run in range(3):
        writer = BatchWriter(store_path)

        async def few(writer: BatchWriter = writer, run: int = run) -> list[int]:
            return await asyncio.gather(*(writer.write(_delivery(run * 100 + i)) for i in range(5)))

        try:
            asyncio.run(few())
        finally:
            writer.close()
        assert _mark(store_path) == 5 * (run + 1)


def test_rows_written_without_indexing_are_indexed_when_a_listener_opens(
    store_path: Path,
) -> None:
    with CaptureStore(store_path) as store:  # as `vwh trigger` or an older vwh writes
        for fp in range(4):
            store.add(_delivery(fp))
    assert _mark(store_path) == 0
    BatchWriter(store_path).close()
    assert _mark(store_path) == 4


def test_two_processes_moving_the_old_index_at_once_both_open_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process moves the index between our look and our copy: we look again
    under the write lock, find it gone, and open the store all the same."""
    path = tmp_path / "v1.sqlite3"
    with CaptureStore(path) as store:
        store.add(_delivery(5))
    conn = sqlite3.connect(path)
    conn.executescript(
        "DELETE FROM fingerprint_index; UPDATE fingerprint_index_upto SET upto = 0;"
        " CREATE INDEX requests_fingerprint ON requests (fingerprint);"
    )
    conn.close()
    looked = store_schema._has_old_index
    raced: list[bool] = []

    def look_then_lose_the_race(conn: sqlite3.Connection) -> bool:
        found = looked(conn)
        if found and not raced:  # the other process migrates right after our first look
            raced.append(True)
            CaptureStore(path).close()
        return found

    monkeypatch.setattr(store_schema, "_has_old_index", look_then_lose_the_race)
    with CaptureStore(path) as store:
        assert store.deliveries_of(5) == (1, 1000.0)
    assert raced == [True]
