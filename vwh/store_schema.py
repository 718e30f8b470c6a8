"""The capture store's table, and how a `CapturedRequest` becomes a row and back.

Added columns come by ALTER TABLE, so a store written by an older vwh keeps working;
ids are derived from the kept body on read, so the hot write path skips them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from vwh.captured import CapturedRequest, ForwardResult
from vwh.store_file import store_error
from vwh.webhook import kept_ids

SCHEMA_VERSION = 1

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
CREATE INDEX IF NOT EXISTS requests_fingerprint ON requests (fingerprint);
"""
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
    """Create the table if it is not there yet (a new or freshly recreated store)."""
    try:
        with conn:
            conn.executescript(SCHEMA)
            add_columns(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.Error as exc:
        raise store_error(path, "use", exc) from None
