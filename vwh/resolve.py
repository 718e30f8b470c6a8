"""Resolve the ids a delivery names into names, in the background, while listening.

`vwh listen --resolve` hands every committed batch to a `Resolver`: a thread with its
own event loop and API client, so nothing here runs in the receiver's loop or delays an
answer. Lookups are bounded in concurrency and cached per record for the listener's
life (a transient failure, the API down or slow, is tried again on the next delivery
that names the record). Each request's resolution is kept in the store's own
`resolved` table, beside the request, and handed to a callback for display.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from vwh.api import API_URLS, VendastaClient
from vwh.errors import (
    ForbiddenError,
    GaveUpError,
    NotFoundError,
    TimeoutError_,
    UnauthorizedError,
    UnreachableError,
    VwhError,
)
from vwh.record_kinds import Kind, records_in_body
from vwh.store import CapturedRequest

# What a developer wants at a glance, per kind: (sparse fieldset, attributes kept as).
WANTED: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "order": (("statusCode", "currencyCode"), {"statusCode": "status", "currencyCode": "currency"}),
    "account": (("name",), {"name": "name"}),
    "user": (("displayName", "email"), {"displayName": "name", "email": "email"}),
    "automation": (("name", "status"), {"name": "name", "status": "status"}),
}
_TRANSIENT = (UnreachableError, TimeoutError_, GaveUpError)
Resolution = dict[str, dict[str, str]]  # kind name -> {"id", and fields or "error"}
OnResolved = Callable[[int, Resolution], None]

_TABLE = "CREATE TABLE IF NOT EXISTS resolved (request_id INTEGER PRIMARY KEY, data TEXT NOT NULL)"


def wants_resolving(record: CapturedRequest) -> bool:
    """Accepted deliveries that name a record; rejected ones may be forged, so not them."""
    return record.id is not None and not record.rejected and bool(records_in_body(record.ids))


def summary(kind: Kind, record_id: str, document: Mapping[str, Any]) -> dict[str, str]:
    """The few attributes shown for a record, as strings."""
    data = document.get("data")
    attrs = data.get("attributes") if isinstance(data, Mapping) else None
    attrs = attrs if isinstance(attrs, Mapping) else {}
    shown = {"id": record_id}
    for attr, name in WANTED.get(kind.name, ((), {}))[1].items():
        value = attrs.get(attr)
        if value not in (None, ""):
            shown[name] = str(value)
    if kind.name == "user" and "name" not in shown:
        full = " ".join(str(attrs[k]) for k in ("givenName", "familyName") if attrs.get(k))
        if full:
            shown["name"] = full
    return shown


def failure_text(kind: Kind, error: VwhError, env: str | None) -> str:
    """A failed lookup in a few words, for the row: what it means, not the whole message."""
    if isinstance(error, NotFoundError):
        if env in API_URLS:
            other = "demo" if env == "prod" else "prod"
            return f"not found in {env}: a {other} {kind.name}?"
        return "not found"
    if isinstance(error, ForbiddenError):
        return f"token lacks {kind.scopes[0]}"
    if isinstance(error, UnauthorizedError):
        return "token not accepted"
    if isinstance(error, UnreachableError):
        return "API unreachable"
    if isinstance(error, TimeoutError_):
        return "API too slow"
    if isinstance(error, GaveUpError):
        return "API failing"
    return str(error)[:80]


class Resolver:
    """Looks up records in its own thread; `submit` never blocks the caller."""

    def __init__(
        self,
        client: VendastaClient,
        store_path: Path,
        on_resolved: OnResolved | None = None,
        concurrency: int = 4,
    ) -> None:
        self.client = client
        self.store_path = Path(store_path)
        self.on_resolved = on_resolved
        self.concurrency = max(1, concurrency)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[int, dict[str, str]] | None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vwh-resolver", daemon=True)
        self._cache: dict[tuple[str, str], asyncio.Task[dict[str, str]]] = {}
        self._conn: sqlite3.Connection | None = None
        self.lookups = 0  # API calls made, for tests and the summary

    def start(self) -> Resolver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def submit(self, records: Iterable[CapturedRequest]) -> list[int]:
        """Queue the deliveries worth resolving; returns their ids. Safe from any thread."""
        queued = [r for r in records if wants_resolving(r)]
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or not queued:
            return []
        for record in queued:
            with contextlib.suppress(RuntimeError):  # the loop is closing: listener stopping
                loop.call_soon_threadsafe(queue.put_nowait, (int(record.id or 0), record.ids))
        return [int(r.id or 0) for r in queued]

    def close(self, timeout: float = 5.0) -> None:
        """Stop: lookups still pending are dropped (the requests themselves are all kept)."""
        if self._loop is not None and self._queue is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
        self._thread.join(timeout)

    # ---- the resolver thread ----------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._ready.set()
            if self._conn is not None:
                self._conn.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, dict[str, str]] | None] = asyncio.Queue()
        self._queue = queue
        limit = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        async with self.client:
            self._ready.set()
            while (item := await queue.get()) is not None:
                request_id, ids = item
                task = asyncio.create_task(self._resolve(request_id, ids, limit))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            pending: list[asyncio.Task[Any]] = [*tasks, *self._cache.values()]
            for each in pending:
                each.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _resolve(
        self, request_id: int, ids: dict[str, str], limit: asyncio.Semaphore
    ) -> None:
        targets = records_in_body(ids)
        found = await asyncio.gather(*(self._lookup(kind, rid, limit) for kind, rid in targets))
        resolution: Resolution = {
            kind.name: shown for (kind, _), shown in zip(targets, found, strict=True)
        }
        self._keep(request_id, resolution)
        if self.on_resolved is not None:
            self.on_resolved(request_id, resolution)

    def _lookup(
        self, kind: Kind, record_id: str, limit: asyncio.Semaphore
    ) -> asyncio.Task[dict[str, str]]:
        """One task per record for the listener's life, unless it failed for a while only."""
        key = (kind.name, record_id)
        task = self._cache.get(key)
        if task is None or (task.done() and task.result().get("transient") == "1"):
            task = self._cache[key] = asyncio.create_task(self._fetch(kind, record_id, limit))
        return task

    async def _fetch(self, kind: Kind, record_id: str, limit: asyncio.Semaphore) -> dict[str, str]:
        async with limit:
            self.lookups += 1
            try:
                record = await self.client.fetch(kind, record_id, WANTED[kind.name][0])
            except VwhError as exc:
                shown = {"id": record_id, "error": failure_text(kind, exc, self.client.env)}
                if isinstance(exc, _TRANSIENT):
                    shown["transient"] = "1"
                return shown
            except Exception as exc:  # never let one lookup stop the others
                return {"id": record_id, "error": f"{type(exc).__name__}", "transient": "1"}
        return summary(kind, record_id, record.document)

    def _keep(self, request_id: int, resolution: Resolution) -> None:
        """Beside the request, in a table of its own; a store that is busy only costs this."""
        kept = {
            kind: {f: v for f, v in shown.items() if f != "transient"}
            for kind, shown in resolution.items()
        }
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.store_path, timeout=5.0)
                # No fsync per commit (the listener's own setting): the write lock this
                # connection takes is held for microseconds, never long enough to be felt.
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute(_TABLE)
            with self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO resolved (request_id, data) VALUES (?, ?)",
                    (request_id, json.dumps(kept, ensure_ascii=False)),
                )
        except sqlite3.Error:
            pass  # shown all the same; `vwh show` just will not have it
        resolution.clear()
        resolution.update(kept)


def read_resolved(store_path: Path, request_id: int) -> Resolution | None:
    """What `--resolve` kept for a request, or None (never resolved, or an older store)."""
    path = Path(store_path)
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT data FROM resolved WHERE request_id = ?", (request_id,)
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    try:
        data = json.loads(row[0])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
