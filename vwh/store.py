"""The capture store: every request the listener received, kept in SQLite.

SQLite in WAL mode lets `vwh history` read while a listener writes. The listener
writes through a `BatchWriter`: one thread commits every request waiting at that
moment in one transaction, and only then are their answers released. A request
that got an answer is therefore on disk (it survives a crash or a kill of vwh),
and a burst costs one commit instead of one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vwh.errors import NotFoundError, StoreError
from vwh.webhook import kept_ids

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL DEFAULT '',
    headers TEXT NOT NULL DEFAULT '',
    body BLOB,
    body_size INTEGER NOT NULL DEFAULT 0,
    verdict TEXT NOT NULL,
    token_masked TEXT NOT NULL DEFAULT '',
    error TEXT,
    status INTEGER NOT NULL,
    latency_ms REAL NOT NULL DEFAULT 0,
    fingerprint INTEGER,
    attempt INTEGER,
    first_seen_at REAL,
    forward_url TEXT,
    forward_status INTEGER,
    forward_latency_ms REAL,
    forward_headers TEXT,
    forward_body BLOB,
    forward_error TEXT,
    reaction TEXT
);
CREATE INDEX IF NOT EXISTS requests_fingerprint ON requests (fingerprint);
"""

_COLUMNS = (
    "received_at",
    "method",
    "path",
    "query",
    "headers",
    "body",
    "body_size",
    "verdict",
    "token_masked",
    "error",
    "status",
    "latency_ms",
    "fingerprint",
    "attempt",
    "first_seen_at",
    "forward_url",
    "forward_status",
    "forward_latency_ms",
    "forward_headers",
    "forward_body",
    "forward_error",
    "reaction",
)
_INSERT = (
    f"INSERT INTO requests ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


@dataclass
class ForwardResult:
    """What the developer's own handler answered when the listener forwarded to it."""

    url: str
    status: int | None = None
    latency_ms: float | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    error: str | None = None


@dataclass
class CapturedRequest:
    """One request as the listener received and answered it (secrets already masked)."""

    received_at: float
    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None  # None when the body was too large to keep
    body_size: int = 0
    verdict: str = "not checked"
    token_masked: str = ""
    error: str | None = None
    status: int = 200
    latency_ms: float = 0.0
    fingerprint: int | None = None
    attempt: int | None = None  # 1 for a first delivery, 2+ for resends of the same body
    first_seen_at: float | None = None
    ids: dict[str, str] = field(default_factory=dict)
    forward: ForwardResult | None = None
    reaction: str | None = None
    id: int | None = None

    @property
    def rejected(self) -> bool:
        """Refused by the token or body checks (a scripted status is not a rejection)."""
        return self.verdict in ("wrong", "missing") or self.error is not None

    @property
    def is_resend(self) -> bool:
        return self.attempt is not None and self.attempt > 1

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the body as text when it is UTF-8, else as latin-1 escapes."""
        data: dict[str, Any] = {
            "id": self.id,
            "received_at": self.received_at,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [list(h) for h in self.headers],
            "body": _body_text(self.body),
            "body_size": self.body_size,
            "verdict": self.verdict,
            "token": self.token_masked,
            "error": self.error,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "attempt": self.attempt,
            "first_seen_at": self.first_seen_at,
            "ids": self.ids,
            "reaction": self.reaction,
        }
        if self.forward is not None:
            data["forward"] = {
                "url": self.forward.url,
                "status": self.forward.status,
                "latency_ms": self.forward.latency_ms,
                "headers": [list(h) for h in self.forward.headers],
                "body": _body_text(self.forward.body),
                "error": self.forward.error,
            }
        return data


def _body_text(body: bytes | None) -> str | None:
    if body is None:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def _to_row(r: CapturedRequest) -> tuple[Any, ...]:
    fwd = r.forward
    return (
        r.received_at,
        r.method,
        r.path,
        r.query,
        _headers_text(r.headers),
        r.body,
        r.body_size,
        r.verdict,
        r.token_masked,
        r.error,
        r.status,
        r.latency_ms,
        r.fingerprint,
        r.attempt,
        r.first_seen_at,
        fwd.url if fwd else None,
        fwd.status if fwd else None,
        fwd.latency_ms if fwd else None,
        _headers_text(fwd.headers) if fwd else None,
        fwd.body if fwd else None,
        fwd.error if fwd else None,
        r.reaction,
    )


def _from_row(row: sqlite3.Row) -> CapturedRequest:
    forward = None
    if row["forward_url"] is not None:
        forward = ForwardResult(
            url=row["forward_url"],
            status=row["forward_status"],
            latency_ms=row["forward_latency_ms"],
            headers=_headers_list(row["forward_headers"]),
            body=row["forward_body"],
            error=row["forward_error"],
        )
    return CapturedRequest(
        id=row["id"],
        received_at=row["received_at"],
        method=row["method"],
        path=row["path"],
        query=row["query"],
        headers=_headers_list(row["headers"]),
        body=row["body"],
        body_size=row["body_size"],
        verdict=row["verdict"],
        token_masked=row["token_masked"],
        error=row["error"],
        status=row["status"],
        latency_ms=row["latency_ms"],
        fingerprint=row["fingerprint"],
        attempt=row["attempt"],
        first_seen_at=row["first_seen_at"],
        ids=kept_ids(row["body"]),  # derived on read: the hot write path skips them
        forward=forward,
        reaction=row["reaction"],
    )


def _headers_text(headers: list[tuple[str, str]]) -> str:
    """Headers as an HTTP header block: compact, and cheaper to write than JSON.

    HTTP forbids CR and LF in header values and ':' in names, so this round-trips.
    """
    return "\r\n".join([f"{name}: {value}" for name, value in headers])


def _headers_list(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    return [(name, value) for name, _, value in (h.partition(": ") for h in text.split("\r\n"))]


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from None


class FingerprintFilter:
    """A Bloom filter of 64-bit body fingerprints: fixed memory, no false "never".

    2 MiB with 2 probes (two slices of the fingerprint, itself a hash) keeps false
    positives, which only cost a query, near 1.3% at a million kept deliveries.
    """

    BITS = 1 << 24
    PROBES = 2

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)

    def add(self, fingerprint: int) -> bool:
        """Remember a fingerprint; True when it may have been seen before."""
        bits = self._bits
        seen = True
        for bit in (fingerprint & 0xFFFFFF, (fingerprint >> 24) & 0xFFFFFF):
            byte, mask = bit >> 3, 1 << (bit & 7)
            if not bits[byte] & mask:
                seen = False
                bits[byte] |= mask
        return seen


class CaptureStore:
    """Reads and writes kept requests; safe to open from several processes at once."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn = _connect(self.path)
        self._lock = threading.Lock()
        self._seen: FingerprintFilter | None = None
        try:
            with self._conn:
                self._conn.executescript(_SCHEMA)
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot use the store at {self.path}: {exc}") from None

    @classmethod
    def open_existing(cls, path: Path | str) -> CaptureStore:
        """Open a store to read from it; never create an empty one by mistake."""
        if not Path(path).exists():
            raise NotFoundError(
                f"no store at {path}: nothing was kept yet (run `vwh listen` first, or pass"
                " --store)"
            )
        return cls(path)

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
            raise StoreError(f"cannot read the store at {self.path}: {exc}") from None

    def add(self, record: CapturedRequest) -> int:
        """Keep one request now (one commit); the listener uses BatchWriter instead."""
        try:
            with self._lock, self._conn:
                cur = self._conn.execute(_INSERT, _to_row(record))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the store at {self.path}: {exc}") from None
        record.id = cur.lastrowid
        return int(cur.lastrowid or 0)

    def get(self, request_id: int) -> CapturedRequest:
        rows = self._query("SELECT * FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise NotFoundError(f"no kept request with id {request_id} in {self.path}")
        return _from_row(rows[0])

    def recent(self, limit: int = 20) -> list[CapturedRequest]:
        """The newest kept requests, newest first."""
        rows = self._query("SELECT * FROM requests ORDER BY id DESC LIMIT ?", (limit,))
        return [_from_row(r) for r in rows]

    def iter_all(self) -> Iterator[CapturedRequest]:
        """Every kept request, oldest first."""
        for row in self._query("SELECT * FROM requests ORDER BY id"):
            yield _from_row(row)

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM requests")[0][0])

    def deliveries_of(self, fingerprint: int) -> tuple[int, float | None]:
        """How many times this body was delivered before, and when it first arrived.

        Asked once per new body in the listener's hot path, so a filter of every
        fingerprint kept answers "never" without a query for almost all of them.
        The fingerprint is remembered: the caller is about to keep a delivery of it.
        """
        if self._seen is None:
            self._seen = FingerprintFilter()
            for (fp,) in self._query("SELECT fingerprint FROM requests WHERE attempt IS NOT NULL"):
                self._seen.add(fp)
        if not self._seen.add(fingerprint):
            return 0, None
        row = self._query(
            "SELECT count(*), min(received_at) FROM requests"
            " WHERE fingerprint = ? AND attempt IS NOT NULL",
            (fingerprint,),
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
        return [_from_row(r) for r in self._query(sql, params)]

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


_STOP = None  # tells the writer thread to finish
CommitCallback = Callable[[list["CapturedRequest"]], None]


class BatchWriter:
    """Group commit, off the event loop: `await write(r)` returns once r is on disk.

    Records queued in one event-loop turn form one batch; a writer thread commits
    every batch waiting at that moment in one transaction, then releases their
    answers. SQLite runs without the GIL, so the commit overlaps with serving the
    next requests, and a burst of N requests costs one commit, not N.

    `on_commit` gets every committed record, in id order, in the writer thread:
    showing requests there keeps that work out of the event loop too.

    `keep` (`vwh listen --keep N`) bounds the store: each commit also drops every
    row whose id is N or more below the newest, in the same transaction. No id is
    above the newest, so at most N rows remain whatever else wrote; the delete
    walks the primary key from the start and touches only rows that just aged out:
    about one delete per insert, in this thread, never on the event loop.
    """

    def __init__(
        self, path: Path | str, on_commit: CommitCallback | None = None, keep: int | None = None
    ) -> None:
        self.path = Path(path)
        self.on_commit = on_commit
        self.keep = keep
        self._conn = _connect(self.path)
        self._pending: list[tuple[CapturedRequest, asyncio.Future[int] | None]] = []
        self._handoff_scheduled = False
        self._batches: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="vwh-store-writer", daemon=True)
        self._thread.start()

    async def write(self, record: CapturedRequest) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((record, future))
        if not self._handoff_scheduled:
            self._handoff_scheduled = True
            loop.call_soon(self._hand_off, loop)
        return await future

    def write_now(self, record: CapturedRequest, timeout: float = 10.0) -> int | None:
        """Keep a record and wait for the commit without the event loop.

        For a request cut short by shutdown: its task is being cancelled, so it can
        no longer await; the loop is stopping, so blocking it briefly costs nothing.
        """
        done = threading.Event()
        self._batches.put(_Batch([(record, None)], None, done))
        done.wait(timeout)
        return record.id

    def close(self) -> None:
        """Commit everything handed over so far, then stop the thread."""
        if self._pending:
            self._batches.put(_Batch(self._pending, None))
            self._pending = []
        self._batches.put(_STOP)
        self._thread.join()
        self._conn.close()

    def _hand_off(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handoff_scheduled = False
        batch, self._pending = self._pending, []
        self._batches.put(_Batch(batch, loop))

    def _run(self) -> None:
        while True:
            batches = [self._batches.get()]
            while True:  # everything waiting now goes into one transaction
                try:
                    batches.append(self._batches.get_nowait())
                except queue.Empty:
                    break
            live = [b for b in batches if b is not _STOP]
            if live:
                self._commit(live)
            if len(live) < len(batches):
                return

    def _commit(self, batches: list[_Batch]) -> None:
        rows = [_to_row(record) for batch in batches for record, _ in batch.items]
        error: StoreError | None = None
        first = 0
        try:
            with self._conn:
                # IMMEDIATE: no other writer can interleave, so the new ids are contiguous.
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(_INSERT, rows)
                first = int(self._conn.execute("SELECT last_insert_rowid()").fetchone()[0])
                if self.keep is not None:
                    self._conn.execute("DELETE FROM requests WHERE id <= ?", (first - self.keep,))
                first -= len(rows) - 1
        except sqlite3.Error as exc:
            error = StoreError(f"cannot write to the store at {self.path}: {exc}")
        for batch in batches:
            for offset, (record, _) in enumerate(batch.items, start=first):
                record.id = None if error else offset
            first += len(batch.items)
            if batch.committed is not None:
                batch.committed.set()
            if batch.loop is not None:
                # A closed loop means nobody waits for these answers any more.
                with contextlib.suppress(RuntimeError):
                    batch.loop.call_soon_threadsafe(_resolve, batch.items, error)
        if self.on_commit is not None and error is None:
            # Showing is not keeping: a display that fails must not stop this thread.
            with contextlib.suppress(Exception):
                self.on_commit([record for batch in batches for record, _ in batch.items])


@dataclass
class _Batch:
    items: list[tuple[CapturedRequest, asyncio.Future[int] | None]]
    loop: asyncio.AbstractEventLoop | None
    committed: threading.Event | None = None


def _resolve(
    items: list[tuple[CapturedRequest, asyncio.Future[int] | None]], error: StoreError | None
) -> None:
    for record, future in items:
        if future is None or future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(int(record.id or 0))
