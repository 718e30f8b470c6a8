"""The capture store: every request the listener received, kept in SQLite.

SQLite in WAL mode lets `vwh history` read while a listener writes. The listener
writes through a `BatchWriter` (vwh.store_writer): a request's answer goes out
only once it is committed to the file at the store's path, so a request that got
an answer is on disk (it survives a crash or a kill of vwh). The file itself
(private modes, damage checks, identity) is vwh.store_file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vwh.errors import NotFoundError, StoreError
from vwh.store_file import check_health, connect, create_private, store_error
from vwh.store_filter import KnownFingerprints
from vwh.webhook import InvalidBody, body_ids, parse_body

if TYPE_CHECKING:
    from vwh.store_writer import BatchWriter as BatchWriter
    from vwh.store_writer import CommitCallback as CommitCallback

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
# Columns added after the first release, each by ALTER TABLE on a store that lacks it.
_ADDED_COLUMNS = (
    ("answer_check", "TEXT"),  # --expect-response: the verdict on the handler's answer
)


def _add_columns(conn: sqlite3.Connection) -> None:
    """Bring an older store up to date, additively: old readers ignore the new columns."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    for name, kind in _ADDED_COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")


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
    "answer_check",
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
    answer_check: str | None = None  # --expect-response: what later steps would get

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
        if self.answer_check is not None:
            data["answer_check"] = self.answer_check
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
        r.answer_check,
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
        ids=_ids_of(row["body"]),
        forward=forward,
        reaction=row["reaction"],
        answer_check=row["answer_check"],
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


def _ids_of(body: bytes | None) -> dict[str, str]:
    """Ids are derived from the kept body on read, so the hot write path skips them."""
    if body is None:
        return {}
    try:
        return body_ids(parse_body(body))
    except InvalidBody:
        return {}


def init_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the table if it is not there yet (a new or freshly recreated store)."""
    try:
        with conn:
            conn.executescript(_SCHEMA)
            _add_columns(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.Error as exc:
        raise store_error(path, "use", exc) from None


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
        fingerprint kept answers "never" without a query for almost all of them;
        until `load_filter` has built it, the indexed query answers. The fingerprint
        is remembered: the caller is about to keep a delivery of it.
        """
        if not self._known.maybe_seen(fingerprint):
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

    def load_filter(self) -> threading.Thread:
        """Build the fingerprint filter in a thread, so no request waits for it."""
        return self._known.load(self.path)


def __getattr__(name: str) -> Any:
    """`from vwh.store import BatchWriter` goes on working; the writer imports this module."""
    if name in ("BatchWriter", "CommitCallback"):
        from vwh import store_writer

        return getattr(store_writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
