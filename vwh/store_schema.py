"""The capture store's table, and how a `CapturedRequest` becomes a row and back.

Added columns come by ALTER TABLE, so a store written by an older vwh keeps working;
ids are derived from the kept body on read, so the hot write path skips them.

The deliveries of one body are found through `fingerprint_index`, a side table the
store writer fills in bulk after its commits (`index_fingerprints`), not through an
index on `requests`: fingerprints are random, so such an index made every commit
rewrite about one index page per row, which cost as much as the row itself. Rows
newer than the side table's mark (`upto`; about 3,000 at most, see vwh.store_writer's
_MAINTAIN_CHANGES for what the scan costs) are scanned.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vwh.captured import CapturedRequest, ForwardResult
from vwh.store_file import store_error
from vwh.webhook import kept_ids

SCHEMA_VERSION = 2

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS fingerprint_index (
    fingerprint INTEGER NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fingerprint_index_upto (upto INTEGER NOT NULL);
INSERT INTO fingerprint_index_upto SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM fingerprint_index_upto);
-- A deleted row leaves the side table; and the mark never stays above the newest id,
-- or a row given a freed id again (after the newest were deleted) would be missed.
CREATE TRIGGER IF NOT EXISTS requests_unindex AFTER DELETE ON requests BEGIN
    DELETE FROM fingerprint_index WHERE fingerprint = old.fingerprint AND id = old.id;
    UPDATE fingerprint_index_upto SET upto = (SELECT coalesce(max(id), 0) FROM requests)
        WHERE upto > (SELECT coalesce(max(id), 0) FROM requests);
END;
"""
# The deliveries of one body (bind the fingerprint twice): through the side table up
# to its mark, and by scanning the rows after it. A list of ids, so that SQLite looks
# each row up by id even with ORDER BY id and a LIMIT.
FINGERPRINT_MATCH = (
    "id IN (SELECT id FROM fingerprint_index WHERE fingerprint = ? UNION ALL SELECT id"
    " FROM requests WHERE id > (SELECT upto FROM fingerprint_index_upto) AND fingerprint = ?)"
    " AND attempt IS NOT NULL"
)
INDEX_CHUNK = 20_000  # rows indexed per transaction: the listener never waits long
_OLD_INDEX = "requests_fingerprint"  # what stores written before version 2 have instead
# Columns added after the first release, each by ALTER TABLE on a store that lacks it.
ADDED_COLUMNS = (
    ("answer_check", "TEXT"),  # --expect-response: the verdict on the handler's answer
)


def add_columns(conn: sqlite3.Connection) -> None:
    """Bring an older store up to date, additively: old readers ignore the new columns."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    for name, kind in ADDED_COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")


COLUMNS = (
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


def _as_is(value: Any) -> Any:
    return value


# CPython 3.11's sqlite3 looks for an adapter for every parameter that is not an int,
# float, str or bytearray: for None and bytes the lookup fails by raising and clearing
# an AttributeError, about 0.8 us a value, and a delivery's row binds ten of them
# (the body, and the unset forward and error columns). With these the lookup finds an
# adapter that changes nothing: a row costs about half as much to bind.
sqlite3.register_adapter(type(None), _as_is)
sqlite3.register_adapter(bytes, _as_is)

INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


def to_row(r: CapturedRequest) -> tuple[Any, ...]:
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


def from_row(row: sqlite3.Row) -> CapturedRequest:
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


def init_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the table if it is not there yet (a new or freshly recreated store).

    A store from before version 2 has its fingerprint index moved to the side table,
    once: a sequential copy, under two seconds per million rows.
    """
    try:
        with conn:
            conn.executescript(SCHEMA)
            add_columns(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if _has_old_index(conn):
            with write_transaction(conn):
                if _has_old_index(conn):  # again under the lock: another process may have moved it
                    newest = conn.execute("SELECT coalesce(max(id), 0) FROM requests").fetchone()
                    _index_ids(conn, 0, int(newest[0]))
                    conn.execute(f"DROP INDEX {_OLD_INDEX}")
    except sqlite3.Error as exc:
        raise store_error(path, "use", exc) from None


def _has_old_index(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (_OLD_INDEX,)
        ).fetchone()
    )


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock from the start) to COMMIT, or ROLLBACK on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def index_fingerprints(conn: sqlite3.Connection) -> int:
    """Add the deliveries after the side table's mark to it, at most INDEX_CHUNK of
    them, in one transaction; how many rows it covered. For the store writer, under
    its lock or while its thread is not running: the statements run in SQLite, off
    the GIL, in sorted order, so each index page is written once for the whole chunk
    instead of once per commit."""
    with write_transaction(conn):
        upto, newest = conn.execute(
            "SELECT upto, (SELECT coalesce(max(id), 0) FROM requests) FROM fingerprint_index_upto"
        ).fetchone()
        end = min(newest, upto + INDEX_CHUNK)
        if end > upto:
            _index_ids(conn, upto, end)
    return max(0, int(end) - int(upto))


def _index_ids(conn: sqlite3.Connection, after: int, end: int) -> None:
    """Put the deliveries with ids in (after, end] in the side table and move the mark
    to `end`; inside the caller's write transaction."""
    conn.execute(
        "INSERT OR IGNORE INTO fingerprint_index SELECT fingerprint, id FROM requests"
        " WHERE id > ? AND id <= ? AND attempt IS NOT NULL AND fingerprint IS NOT NULL"
        " ORDER BY fingerprint",
        (after, end),
    )
    conn.execute("UPDATE fingerprint_index_upto SET upto = ?", (end,))
