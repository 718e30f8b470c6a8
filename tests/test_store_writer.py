from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from vwh import store_writer
from vwh.errors import StoreError
from vwh.store import CapturedRequest, CaptureStore
from vwh.store_writer import BatchWriter, StoreEvent


def _record(n: int) -> CapturedRequest:
    return CapturedRequest(received_at=float(n), method="POST", path=f"/{n}")


def _paths(store: Path) -> list[str]:
    with sqlite3.connect(store) as conn:
        return [row[0] for row in conn.execute("SELECT path FROM requests ORDER BY id")]


def test_one_request_at_a_time_is_committed_without_waiting_for_the_thread(
    store_path: Path,
) -> None:
    writer = BatchWriter(store_path)

    async def one_at_a_time() -> list[int]:
        ids = []
        for n in range(3):
            step = writer.write(_record(n))
            with pytest.raises(StopIteration) as done:  # finished without suspending
                step.send(None)
            ids.append(done.value.value)
            await asyncio.sleep(0)  # the next request comes in a later loop turn
        return ids

    try:
        assert asyncio.run(one_at_a_time()) == [1, 2, 3]
        assert _paths(store_path) == ["/0", "/1", "/2"]  # on disk before the answer
    finally:
        writer.close()


def test_submit_calls_back_once_each_when_on_disk_at_once_alone_or_at_the_turns_end(
    store_path: Path,
) -> None:
    """The listener's protocol answers from `submit`'s callback, each record's once and
    only when it is on disk: at once, inside submit, for a record that comes alone (or
    first in a turn after a turn that had one); at the end of its turn for the others."""
    writer = BatchWriter(store_path)
    calls: list[tuple[int, StoreError | None, int]] = []  # record, error, rows on disk then

    def committed(n: int):  # type: ignore[no-untyped-def]
        return lambda error: calls.append((n, error, len(_paths(store_path))))

    async def traffic() -> list[list[int]]:
        seen_inside = []
        for turn in ([0], [1, 2, 3], [4, 5, 6]):
            for n in turn:
                writer.submit(_record(n), committed(n))
            seen_inside.append([n for n, *_ in calls])
            await asyncio.sleep(0)  # the turn ends
        await asyncio.sleep(0)
        return seen_inside

    try:
        inside = asyncio.run(traffic())
    finally:
        writer.close()
    # Alone: at once. After a lone turn the first of a burst goes at once too (nothing
    # says more will come); after a burst, a whole turn waits for its end.
    assert inside == [[0], [0, 1], [0, 1, 2, 3]]
    assert [(n, error) for n, error, _ in calls] == [(n, None) for n in range(7)]
    assert all(on_disk > n for n, _, on_disk in calls)


def test_solo_and_burst_writes_are_shown_once_each_in_id_order(store_path: Path) -> None:
    shown: list[int] = []
    writer = BatchWriter(store_path, on_commit=lambda rs: shown.extend(int(r.id or 0) for r in rs))

    async def traffic() -> list[int]:
        ids = []
        for round_ in range(20):
            if round_ % 3 == 0:  # a burst in one turn: one commit at the turn's end
                ids += await asyncio.gather(*(writer.write(_record(n)) for n in range(30)))
            else:
                ids.append(await writer.write(_record(round_)))
        return ids

    try:
        ids = asyncio.run(traffic())
    finally:
        writer.close()
    assert sorted(ids) == list(range(1, len(ids) + 1))
    assert shown == sorted(ids)


def _traced(writer: BatchWriter) -> list[tuple[str, str]]:
    """The writer's transactions as (thread name, statement), as SQLite runs them."""
    seen: list[tuple[str, str]] = []

    def trace(statement: str) -> None:
        if statement.startswith(("BEGIN", "INSERT")):
            seen.append((threading.current_thread().name, statement.split()[0]))

    writer._conn.set_trace_callback(trace)
    return seen


def test_a_burst_is_one_transaction_on_the_loop_at_the_end_of_its_turn(
    store_path: Path,
) -> None:
    writer = BatchWriter(store_path)
    seen = _traced(writer)

    async def burst() -> list[int]:
        await writer.write(_record(0))  # alone: committed as it is written
        await asyncio.sleep(0)
        return list(await asyncio.gather(*(writer.write(_record(n)) for n in range(1, 31))))

    try:
        ids = asyncio.run(burst())
        assert ids == list(range(2, 32))
        assert _paths(store_path) == [f"/{n}" for n in range(31)]
        loop_thread = threading.current_thread().name
        # One INSERT for the first; then one transaction (one BEGIN) for all thirty.
        assert seen[0] == (loop_thread, "INSERT")
        assert [entry for entry in seen[1:] if entry[1] == "BEGIN"] == [(loop_thread, "BEGIN")]
    finally:
        writer.close()


def test_a_burst_while_the_thread_holds_the_store_waits_for_it_in_arrival_order(
    store_path: Path,
) -> None:
    """The loop never waits for the store's lock (a checkpoint holds it while it
    fsyncs): what comes meanwhile is committed by the thread, in order."""
    writer = BatchWriter(store_path)
    seen = _traced(writer)
    held = threading.Event()
    release = threading.Event()

    def checkpoint_like() -> None:
        with writer._lock:
            held.set()
            release.wait(5)

    async def traffic() -> tuple[list[int], list[int]]:
        holder = threading.Thread(target=checkpoint_like)
        holder.start()
        held.wait(5)
        waiting = asyncio.gather(*(writer.write(_record(n)) for n in range(10)))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # not on disk, so not answered
        release.set()
        first = list(await waiting)
        holder.join()
        later = list(await asyncio.gather(*(writer.write(_record(n)) for n in range(10, 20))))
        return first, later

    try:
        first, later = asyncio.run(traffic())
        assert first == list(range(1, 11)) and later == list(range(11, 21))
        assert _paths(store_path) == [f"/{n}" for n in range(20)]
        begins = [thread for thread, statement in seen if statement == "BEGIN"]
        assert begins == ["vwh-store-writer", threading.current_thread().name]
    finally:
        writer.close()


def test_a_deleted_file_is_recreated_said_once_and_written_again(store_path: Path) -> None:
    events: list[StoreEvent] = []
    writer = BatchWriter(store_path, on_event=events.append)

    async def go() -> list[int]:
        first = await writer.write(_record(1))
        for suffix in ("", "-wal", "-shm"):
            os.unlink(f"{store_path}{suffix}")
        return [first, await writer.write(_record(2)), await writer.write(_record(3))]

    try:
        assert asyncio.run(go()) == [1, 1, 2]  # ids of the fresh file
    finally:
        writer.close()
    assert _paths(store_path) == ["/2", "/3"]
    assert [e.kind for e in events] == ["recreated"]
    assert oct(store_path.stat().st_mode & 0o777) == oct(0o600)


def test_no_file_no_answer_until_it_can_write_again(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    store = folder / "store.sqlite3"
    events: list[StoreEvent] = []
    writer = BatchWriter(store, on_event=events.append)

    async def go() -> None:
        await writer.write(_record(1))
        for suffix in ("", "-wal", "-shm"):
            os.unlink(f"{store}{suffix}")
        folder.rmdir()
        for n in (2, 3):
            with pytest.raises(StoreError, match="cannot create the store"):
                await writer.write(_record(n))
        folder.mkdir()
        assert await writer.write(_record(4)) == 1

    try:
        asyncio.run(go())
    finally:
        writer.close()
    assert [e.kind for e in events] == ["failing", "recreated"]
    assert "answering 500 until it can write again" in events[0].message
    assert "again" in events[1].message
    assert CaptureStore.open_existing(store).count() == 1


def _delivery(n: int, fingerprints: random.Random) -> CapturedRequest:
    """A kept delivery as the listener writes it: a body of about 550 bytes, and a
    fingerprint, so the side index (and its delete trigger) has work to do."""
    record = _record(n)
    record.body = b'{"orderId": "AG-7PQTGLLXQQ:ORD-S548DKHMKX", "pad": "' + b"x" * 500 + b'"}'
    record.fingerprint, record.attempt = fingerprints.getrandbits(62), 1
    return record


async def _deliveries(
    writer: BatchWriter, rows: int, per_commit: int, fingerprints: random.Random
) -> None:
    """`rows` deliveries, `per_commit` to a loop turn (one commit each), in order."""
    for start in range(0, rows, per_commit):
        batch = [_delivery(n, fingerprints) for n in range(start, start + per_commit)]
        await asyncio.gather(*(writer.write(record) for record in batch))
        await asyncio.sleep(0)  # the next commit in a later loop turn


def _wal_pages(writer: BatchWriter) -> float:
    page_size = writer._conn.execute("PRAGMA page_size").fetchone()[0]
    return os.path.getsize(f"{writer.path}-wal") / (page_size + 24)


@pytest.mark.parametrize(
    ("rows", "per_commit", "keep"),
    [
        (6000, 1, None),  # one at a time: the commit cap
        (24000, 64, None),  # bursts: the cap on changed rows
        (24000, 64, 20000),  # --keep: each commit deletes too, and so does the trigger
    ],
)
def test_the_wal_stays_near_sqlites_default_size_however_rows_come(
    store_path: Path,
    rows: int,
    per_commit: int,
    keep: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checkpoints come after so many changed rows or so many commits: either way the
    WAL stays near SQLite's own bound of 1,000 pages instead of growing with the
    store, and the commit that makes one due wakes the thread for it: it never waits
    for the thread's next round of showing requests, however long that is."""
    monkeypatch.setattr(store_writer, "_SHOW_EVERY", 30.0)
    fingerprints = random.Random(1)
    if keep is not None:  # a full store: every commit ages rows out
        with CaptureStore(store_path) as store:
            for n in range(keep):
                store.add(_delivery(n, fingerprints))
    writer = BatchWriter(store_path, keep=keep)
    try:
        asyncio.run(_deliveries(writer, rows, per_commit, fingerprints))
        wal_pages = _wal_pages(writer)
    finally:
        writer.close()
    # Without the commit cap the first run leaves about 4,000 pages; without the cap on
    # changed rows the second about 5,200; without the wake-up about 8,000 and 5,200;
    # counting inserted rows only, the third about 3,800.
    assert wal_pages <= 2_000
    assert len(_paths(store_path)) == (rows if keep is None else keep)


def test_a_display_that_blocks_holds_up_neither_answers_nor_upkeep(store_path: Path) -> None:
    """A paused terminal (Ctrl-S) or a full pipe stops the display and nothing else:
    every request is still answered, and the writer still indexes and checkpoints."""
    release = threading.Event()
    shown: list[int] = []

    def paused_display(records: list[CapturedRequest]) -> None:
        release.wait(60)
        shown.extend(int(r.id or 0) for r in records)

    writer = BatchWriter(store_path, on_commit=paused_display)
    fingerprints = random.Random(2)
    rows = 190 * 64
    unindexed_at_most = store_writer._MAINTAIN_CHANGES

    def indexed_up_to() -> int:
        with sqlite3.connect(store_path) as conn:
            return int(conn.execute("SELECT upto FROM fingerprint_index_upto").fetchone()[0])

    try:
        # Answered while the display waits:
        asyncio.run(asyncio.wait_for(_deliveries(writer, rows, 64, fingerprints), 30))
        deadline = time.monotonic() + 10
        while indexed_up_to() < rows - unindexed_at_most and time.monotonic() < deadline:
            time.sleep(0.05)
        assert indexed_up_to() >= rows - unindexed_at_most  # the upkeep went on
        assert _wal_pages(writer) <= 2_000
    finally:
        release.set()
        writer.close()
    assert shown == list(range(1, rows + 1))  # then shown, every one, in order
