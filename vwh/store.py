"""The capture store: every request the listener received, kept in SQLite.

SQLite in WAL mode lets `vwh history` read while a listener writes. The listener
writes through a `BatchWriter` (vwh.store_writer): a request's answer goes out
only once it is committed to the file at the store's path, so a request that got
an answer is on disk (it survives a crash or a kill of vwh). The file itself
(private modes, damage checks, identity) is vwh.store_file, the table and its rows
vwh.store_schema, the records kept (`CapturedRequest`, `ForwardResult`) vwh.captured.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vwh.captured import CapturedRequest as CapturedRequest
from vwh.captured import ForwardResult as ForwardResult
from vwh.errors import NotFoundError, StoreError
from vwh.store_file import check_health, connect, create_private, store_error
from vwh.store_filter import KnownFingerprints
from vwh.store_schema import FINGERPRINT_MATCH, INSERT, from_row, init_schema, to_row

if TYPE_CHECKING:
    from vwh.store_writer import BatchWriter as BatchWriter
    from vwh.store_writer import CommitCallback as CommitCallback


class CaptureStore:
    """Reads and writes kept requests; safe to open from several processes at once."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if create:
            try:
                create_private(self.path)
            except OSError as exc:
                raise StoreError(
                    f"cannot open the store at {self.path}: {exc.strerror or exc}"
                ) from None
        self._conn = connect(self.path)
        self._lock = threading.Lock()
        self._known = KnownFingerprints()
        try:
            init_schema(self._conn, self.path)
        except StoreError:
            self._conn.close()
            raise

    @classmethod
    def open_existing(cls, path: Path | str) -> CaptureStore:
        """Open a store to read from it; never create an empty one by mistake.

        A damaged store is refused here, in one line, rather than halfway through
        a listing.
        """
        if not Path(path).exists():
            raise NotFoundError(
                f"no store at {path}: nothing was kept yet (run `vwh listen` first, or pass"
                " --store)"
            )
        store = cls(path, create=False)
        try:
            store.check(write=False)
        except StoreError:
            store.close()
            raise
        return store

    def check(self, *, write: bool) -> None:
        """Raise StoreError when the file is damaged (see store_file.check_health)."""
        with self._lock:
            check_health(self._conn, self.path, write=write)

    def reopen(self) -> None:
        """Read from the file now at the path (the listener recreated a deleted store)."""
        conn = connect(self.path)
        with self._lock:
            old, self._conn = self._conn, conn
        old.close()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise store_error(self.path, "read", exc) from None

    def add(self, record: CapturedRequest) -> int:
        """Keep one request now (one commit); the listener uses BatchWriter instead."""
        try:
            with self._lock, self._conn:
                cur = self._conn.execute(INSERT, to_row(record))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the store at {self.path}: {exc}") from None
        record.id = cur.lastrowid
        return int(cur.lastrowid or 0)

    def get(self, request_id: int) -> CapturedRequest:
        rows = self._query("SELECT * FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise NotFoundError(f"no kept request with id {request_id} in {self.path}")
        return from_row(rows[0])

    def recent(self, limit: int = 20) -> list[CapturedRequest]:
        """The newest kept requests, newest first."""
        rows = self._query("SELECT * FROM requests ORDER BY id DESC LIMIT ?", (limit,))
        return [from_row(r) for r in rows]

    def iter_all(self) -> Iterator[CapturedRequest]:
        """Every kept request, oldest first."""
        for row in self._query("SELECT * FROM requests ORDER BY id"):
            yield from_row(row)

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM requests")[0][0])

    def deliveries_of(self, fingerprint: int) -> tuple[int, float | None]:
        """How many times this body was delivered before, and when it first arrived.

        Asked once per new body in the listener's hot path, so a filter of every
        fingerprint kept answers "never" without a query for almost all of them;
        until `load_filter` has built it, the indexed query answers. The fingerprint
        is remembered: the caller is about to keep a delivery of it.
        """
        if not self._known.maybe_seen(fingerprint):
            return 0, None
        row = self._query(
            f"SELECT count(*), min(received_at) FROM requests WHERE {FINGERPRINT_MATCH}",
            (fingerprint, fingerprint),
        )[0]
        return int(row[0]), row[1]

    def find(
        self,
        where: str = "1",
        params: tuple[Any, ...] = (),
        *,
        newest_first: bool = True,
        limit: int | None = None,
    ) -> list[CapturedRequest]:
        """Kept requests matching a WHERE clause (built by vwh.query), by id."""
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM requests WHERE {where} ORDER BY id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [from_row(r) for r in self._query(sql, params)]

    def delete(self, where: str = "1", params: tuple[Any, ...] = (), *, chunk: int = 2000) -> int:
        """Drop the kept requests matching a WHERE clause (from vwh.query); how many went.

        Only what was kept when it starts: a listener writing meanwhile loses nothing
        it answers. Oldest first, `chunk` rows per transaction, so the listener waits
        for one short transaction at a time, never for the whole delete.
        """
        newest = self._query("SELECT max(id) FROM requests")[0][0]
        if newest is None:
            return 0
        sql = (
            f"DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE id <= ?"
            f" AND ({where}) ORDER BY id LIMIT ?)"
        )
        total = 0
        while True:
            try:
                with self._lock, self._conn:
                    gone = self._conn.execute(sql, (newest, *params, chunk)).rowcount
            except sqlite3.Error as exc:
                raise StoreError(f"cannot delete from the store at {self.path}: {exc}") from None
            total += gone
            if gone < chunk:
                return total

    def load_filter(self) -> threading.Thread:
        """Build the fingerprint filter in a thread, so no request waits for it."""
        return self._known.load(self.path)


def __getattr__(name: str) -> Any:
    """`from vwh.store import BatchWriter` goes on working, loaded only when asked for."""
    if name in ("BatchWriter", "CommitCallback"):
        from vwh import store_writer

        return getattr(store_writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
