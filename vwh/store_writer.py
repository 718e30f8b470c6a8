"""The listener's writes: `await write(r)` returns once r is on disk, in the store's file.

Commits run on the event loop itself. When requests come one at a time
(Vendasta's usual pace) each is committed as it is written: a one-row INSERT in
WAL mode without fsync costs far less than a round trip through a thread. When a
loop turn brings several, they are committed together at the end of the turn, in
one transaction. Handing them to a thread instead costs more than it saves: the
hand-offs and the fight for the GIL (taken back after every row SQLite writes)
cost more CPU than the overlap wins (bench/bench_listen.py, concurrency 64). The
writer thread commits only what comes while it holds the store itself, during a
WAL checkpoint (which fsyncs, so it never runs on the loop).

After each commit the file at the store's path is compared with the one written
to (device and inode): a store deleted or replaced while vwh runs is noticed,
said once (`on_event`), started afresh and the rows written again there, so no
answer goes out for a row that is not in the file at that path. When no file can
be made there, writes fail (the sender gets a 5xx) until one can.

`on_commit` gets every committed record, in id order, in a display thread of its
own: showing requests there keeps that work, and a slow or paused terminal, off the
event loop and off the writer thread, whose commits and upkeep never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vwh.captured import CapturedRequest
from vwh.errors import StoreError
from vwh.store_file import Identity, connect, create_private, identity, store_error
from vwh.store_schema import (
    INSERT,
    index_fingerprints,
    init_schema,
    to_row,
    write_transaction,
)

CommitCallback = Callable[[list[CapturedRequest]], None]
# Called on the loop once a record is committed (None) or could not be (the error).
Committed = Callable[[StoreError | None], None]


@dataclass(frozen=True)
class StoreEvent:
    """Something the user should hear about once: the file vanished, or cannot be written."""

    kind: str  # "recreated", "replaced", "failing", "recovered"
    message: str


EventCallback = Callable[[StoreEvent], None]
_Item = tuple[CapturedRequest, Committed | None]
_STOP = None  # tells the writer thread to finish
_WAKE = "wake"  # tells the writer thread there are records to show, or maintenance is due
# The thread's maintenance comes after this many changed rows or commits, whichever
# first: it indexes the new rows' fingerprints and copies the WAL into the database
# file (two fsyncs). Rows as SQLite counts them: inserted, and with --keep also those
# aged out and their side-index entries (the delete trigger's). A commit writes at
# least one page and a changed row up to one, so the WAL stays near SQLite's default
# of 1,000 pages (up to about 2,000 on a store of a million rows, where the side
# index's pages are far apart). Done this seldom, a page of the side index or of the
# table's tail is written once for many rows, not once per few: against indexing
# every 300 rows and checkpointing every 3,000, 10% more requests at concurrency 64
# (paired rounds of bench_listen's load). The price: a resend lookup scans up to
# about 3,000 unindexed rows (0.3 ms with bodies of 200 bytes, 5 ms with 5 KB), only
# when the Bloom filter says maybe and the tracker's LRU does not know the body.
_MAINTAIN_CHANGES = 3000
_MAINTAIN_COMMITS = 800
_SHOW_EVERY = 0.02  # seconds: while requests keep coming, show them in batches this often
_ATTEMPTS = 3  # a file replaced during each of these commits: give up on this batch


class BatchWriter:
    """Commits on the loop, one per request or one per loop turn; see the module."""

    def __init__(
        self,
        path: Path | str,
        on_commit: CommitCallback | None = None,
        on_event: EventCallback | None = None,
        keep: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.keep = keep
        self._path_text = str(self.path)  # for the stat per commit, without Path's overhead
        self.on_commit = on_commit
        self.on_event = on_event
        self._lock = threading.Lock()  # held for each transaction, on the loop or the thread
        self._conn, self._identity = self._open()
        self._index_backlog()
        self._stale = False  # the file at the path may not be the one open
        self._unmaintained_changes = 0  # rows changed since the last maintenance
        self._unmaintained_commits = 0  # commits since the last maintenance
        self._maintenance_asked = False  # a commit woke the thread to index and checkpoint
        self._failing = False  # said that it cannot write; say when it can again
        self._switched: str | None = None  # a new file, not yet said
        self._pending: list[_Item] = []
        self._in_flight = 0  # batches handed to the thread, not yet resolved (loop only)
        self._turn_writes = 0  # writes in this event-loop turn
        self._solo = True  # the last turn with writes had one: requests come one at a time
        self._to_show: list[CapturedRequest] = []  # committed outside the thread, to show
        self._asleep = False  # the thread waits for a wake-up, not polling _to_show
        self._queue: queue.SimpleQueue[_Batch | str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="vwh-store-writer", daemon=True)
        self._shown: queue.SimpleQueue[list[CapturedRequest] | None] = queue.SimpleQueue()
        self._display: threading.Thread | None = None
        if on_commit is not None:
            self._display = threading.Thread(
                target=self._show_batches, name="vwh-display", daemon=True
            )
            self._display.start()
        self._thread.start()

    def submit(self, record: CapturedRequest, committed: Committed) -> None:
        """Commit `record`, then call `committed` on the loop: at once when the record
        comes alone, else at the end of this loop turn with the rest of the turn's.

        The listener's protocol answers from `committed`: no task, no future.
        """
        loop = asyncio.get_running_loop()
        self._turn_writes += 1
        if self._turn_writes == 1:
            loop.call_soon(self._end_turn, loop)
            if self._solo and not self._in_flight and self._lock.acquire(blocking=False):
                try:
                    error = self._commit_or_error([record])
                finally:
                    self._lock.release()
                if error is None:
                    self._show(record)
                committed(error)
                return
        self._pending.append((record, committed))

    async def write(self, record: CapturedRequest) -> int:
        """Commit `record`; its id once it is on disk, or the StoreError."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def committed(error: StoreError | None) -> None:
            if future.done():  # the waiter was cancelled: the record is kept all the same
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(int(record.id or 0))

        self.submit(record, committed)
        return await future

    def write_now(self, record: CapturedRequest) -> int | None:
        """Keep a record now, blocking, without awaiting; None when it could not be kept.

        For a request cut short by shutdown: its task is being cancelled, so it can
        no longer await; the loop is stopping, so blocking it briefly costs nothing.
        """
        try:
            with self._lock:
                self._commit([record])
        except StoreError:
            return None
        self._show(record)
        return record.id

    def close(self) -> None:
        """Commit everything handed over so far, then stop the thread."""
        if self._pending:
            self._queue.put(_Batch(self._pending, None))
            self._pending = []
        self._queue.put(_STOP)
        self._thread.join()
        if self._display is not None:  # everything committed is shown before close returns
            self._shown.put(None)
            self._display.join()
        self._index_backlog()
        self._conn.close()

    def _index_backlog(self) -> None:
        """Index every row after the side table's mark: those of a run that stopped
        before its next maintenance, or of writers that do not index (an older vwh)."""
        with contextlib.suppress(sqlite3.Error):
            while index_fingerprints(self._conn):
                pass

    def _end_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """After a turn's writes: commit what waits in one transaction, on the loop.

        Only when the thread is busy with the store (a checkpoint, or a batch of
        its own) does the batch go to the thread instead: the loop never waits for
        the lock, and ids stay in arrival order.
        """
        self._solo = self._turn_writes == 1
        self._turn_writes = 0
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._in_flight += 1  # until _resolve
        if self._in_flight > 1 or not self._lock.acquire(blocking=False):
            self._queue.put(_Batch(batch, loop))
            return
        records = [record for record, _ in batch]
        try:
            error = self._commit_or_error(records)
        finally:
            self._lock.release()
        self._resolve(batch, error)
        if error is None:
            self._to_show.extend(records)
            self._wake_display()

    def _show(self, record: CapturedRequest) -> None:
        """Pass a record committed here to the thread, to show; wake it only if it sleeps.

        While requests keep coming the thread polls every _SHOW_EVERY seconds and
        prints what accumulated in one write: no wake-up per request.
        """
        self._to_show.append(record)
        self._wake_display()

    def _wake_display(self) -> None:
        if self._asleep:
            self._asleep = False
            self._queue.put(_WAKE)

    def _resolve(self, items: list[_Item], error: StoreError | None) -> None:
        self._in_flight -= 1
        for _, committed in items:
            if committed is None:
                continue
            try:
                committed(error)
            except Exception as exc:  # a bug in one answer must not keep the others waiting
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "answering a kept request failed", "exception": exc}
                )

    def _run(self) -> None:
        polling = False
        while True:
            if not polling:
                # Say "asleep" first, then look: a record added meanwhile is not missed.
                self._asleep = True
                polling = bool(self._to_show)
            try:
                items = [self._queue.get(timeout=_SHOW_EVERY if polling else None)]
            except queue.Empty:
                items = []
            self._asleep = False
            while True:  # everything waiting now goes into one transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            # Records committed elsewhere come first: what is committed now gets later ids.
            shown, self._to_show = self._to_show, []
            batches = [item for item in items if isinstance(item, _Batch)]
            if batches:
                shown.extend(self._commit_batches(batches))
            if shown and self._display is not None:
                self._shown.put(shown)
            polling = bool(shown)  # more are likely to follow soon
            if self._maintenance_asked:
                self._maintain()
            if _STOP in items:
                return

    def _show_batches(self) -> None:
        """The display thread: hands each batch to `on_commit`, in order, until close."""
        assert self.on_commit is not None
        while (shown := self._shown.get()) is not None:
            # A display that fails must not stop the display of later requests.
            with contextlib.suppress(Exception):
                self.on_commit(shown)

    def _maintain(self) -> None:
        """Index the new rows' fingerprints, then copy the WAL into the database file
        (see _MAINTAIN_CHANGES). Both run in SQLite, off the GIL, in this thread."""
        with self._lock:
            self._maintenance_asked = False
            self._unmaintained_changes = self._unmaintained_commits = 0
            with contextlib.suppress(sqlite3.Error):  # the file is gone: the next one will do
                index_fingerprints(self._conn)
            with contextlib.suppress(sqlite3.Error):  # a busy reader: the next one will do
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _commit_batches(self, batches: list[_Batch]) -> list[CapturedRequest]:
        records = [record for batch in batches for record, _ in batch.items]
        with self._lock:
            error = self._commit_or_error(records)
        for batch in batches:
            if batch.loop is not None:
                # A closed loop means nobody waits for these answers any more.
                with contextlib.suppress(RuntimeError):
                    batch.loop.call_soon_threadsafe(self._resolve, batch.items, error)
        return [] if error is not None else records

    def _commit_or_error(self, records: list[CapturedRequest]) -> StoreError | None:
        """Commit a batch others wait on (hold the lock): None, or the error each gets.

        A bug must not leave those requests waiting forever: it becomes a StoreError
        too, so they are answered 500.
        """
        try:
            self._commit(records)
        except StoreError as exc:
            return exc
        except Exception as exc:
            return StoreError(f"cannot write to the store at {self.path}: {exc!r}")
        return None

    def _commit(self, records: list[CapturedRequest]) -> None:
        """Insert in one transaction into the file now at the path; set ids. Hold the lock."""
        for _ in range(_ATTEMPTS):
            if self._stale:
                self._follow_file()
            conn = self._conn
            changes = conn.total_changes
            first = self._insert(records)
            changes = conn.total_changes - changes  # --keep's deletes and the trigger's too
            # One stat per commit: the rows are in the file at the path, or written again.
            self._stale = identity(self._path_text) != self._identity
            if not self._stale:
                break
        else:
            raise StoreError(f"cannot write to the store at {self.path}: it keeps being replaced")
        for offset, record in enumerate(records):
            record.id = first + offset
        self._unmaintained_changes += changes
        self._unmaintained_commits += 1
        if not self._maintenance_asked and (
            self._unmaintained_changes >= _MAINTAIN_CHANGES
            or self._unmaintained_commits >= _MAINTAIN_COMMITS
        ):
            # Now, not at the thread's next display round: the WAL's bound holds
            # however long that round is.
            self._maintenance_asked = True
            self._queue.put(_WAKE)
        self._say_written()

    def _insert(self, records: list[CapturedRequest]) -> int:
        """The first new id; the ids are contiguous (one writer at a time: IMMEDIATE)."""
        conn = self._conn
        try:
            if len(records) == 1 and self.keep is None:  # autocommit: its own transaction
                return int(conn.execute(INSERT, to_row(records[0])).lastrowid or 0)
            with write_transaction(conn):
                conn.executemany(INSERT, [to_row(r) for r in records])
                last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
                if self.keep is not None:  # --keep N: what aged out goes in the same commit
                    conn.execute("DELETE FROM requests WHERE id <= ?", (last - self.keep,))
        except sqlite3.Error as exc:
            raise self._fail(store_error(self.path, "write to", exc)) from None
        return last - len(records) + 1

    def _follow_file(self) -> None:
        """Switch to the file now at the path; its news is said after the next commit."""
        now = identity(self.path)
        try:
            conn, ident = self._open(make_dirs=False)
        except StoreError as exc:
            raise self._fail(exc) from None
        old, self._conn, self._identity = self._conn, conn, ident
        old.close()
        self._switched = "replaced" if now is not None else "recreated"

    def _open(self, make_dirs: bool = True) -> tuple[sqlite3.Connection, Identity | None]:
        try:
            create_private(self.path, make_dirs=make_dirs)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store at {self.path}: {exc.strerror or exc}"
            ) from None
        conn = connect(self.path)
        try:
            init_schema(conn, self.path)
        except StoreError:
            conn.close()
            raise
        conn.isolation_level = None  # transactions are explicit (see _insert)
        # Checkpoints (they fsync) run in the thread, never in a commit on the loop.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn, identity(self.path)

    def _fail(self, exc: StoreError) -> StoreError:
        if not self._failing:
            self._failing = True
            self._say("failing", f"{exc}: answering 500 until it can write again")
        return exc

    def _say_written(self) -> None:
        """After a commit: say once that the file is new, or that writing works again."""
        if self._switched is None and not self._failing:
            return
        where = {
            "recreated": "it was deleted: started a fresh one there",
            "replaced": "it was replaced: writing to the new file",
        }
        if self._switched is not None and not self._failing:
            self._say(self._switched, f"the store {self.path}: {where[self._switched]}")
        elif self._switched is not None:
            self._say(
                self._switched,
                f"writing to the store at {self.path} again ({where[self._switched]})",
            )
        else:
            self._say("recovered", f"writing to the store at {self.path} again")
        self._switched, self._failing = None, False

    def _say(self, kind: str, message: str) -> None:
        if self.on_event is not None:
            self.on_event(StoreEvent(kind, message))


@dataclass
class _Batch:
    items: list[_Item]
    loop: asyncio.AbstractEventLoop | None
