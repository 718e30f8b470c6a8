"""The live stream's fan-out: committed records to every subscribed page, never blocking.

The store's writer thread calls `publish` with each committed batch. It only
queues the batch and, at most once per `FLUSH_SECONDS`, schedules a hand-off on the
inspector's event loop (none at all without subscribers), and returns: it never
waits for a page, and under load many batches share one wake-up and one write.
A hand-off carries at most MAX_EVENTS_PER_FLUSH records, the newest (500 a second):
a page shows a few hundred rows, and encoding every one of thousands of requests a
second would cost the listener more than the page can use. Each subscriber also
holds a bounded backlog. Whatever is left out, for either reason, becomes a gap
event that says how many, and the page catches up by id from the JSON API.
Requests are never lost: they are already on disk when they are published.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from vwh.store import CapturedRequest

MAX_PENDING_RECORDS = 500
MAX_PENDING_BYTES = 8 * 1024 * 1024
FLUSH_SECONDS = 0.05  # well within "shown within a second"; 20 wake-ups a second at most
MAX_EVENTS_PER_FLUSH = 25  # the newest of a hand-off: 500 request events a second at most


@dataclass(frozen=True)
class Gap:
    """Events were dropped for this subscriber: `dropped` records it did not get."""

    dropped: int


StreamItem = CapturedRequest | Gap


class Subscription:
    """One page's backlog: bounded in records and bytes; overflow becomes a Gap."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._items: deque[StreamItem] = deque()
        self._records = 0
        self._bytes = 0
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._dropped = 0
        self._wake = asyncio.Event()
        self.closed = False

    def offer(self, records: Sequence[CapturedRequest]) -> None:
        """Take a batch if it fits, else count it as dropped (in the loop's thread)."""
        size = sum(r.body_size for r in records)
        if self._records + len(records) > self._max_records or self._bytes + size > self._max_bytes:
            self._dropped += len(records)
        else:
            if self._dropped:
                self._items.append(Gap(self._dropped))
                self._dropped = 0
            self._items.extend(records)
            self._records += len(records)
            self._bytes += size
        self._wake.set()

    def skip(self, count: int) -> None:
        """Count records left out of the stream on purpose (a flood): a Gap says so."""
        self._dropped += count
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next(self, timeout: float) -> list[StreamItem] | None:
        """Everything waiting (records, then a Gap if some were dropped since); None on timeout.

        An empty list means the stream is closed.
        """
        if not self._items and not self._dropped and not self.closed:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
        if self.closed:
            return []
        items = list(self._items)
        self._items.clear()
        self._records = self._bytes = 0
        if self._dropped:
            items.append(Gap(self._dropped))
            self._dropped = 0
        return items or None


class Broadcaster:
    """Hands committed records from any thread to the subscriptions in one event loop."""

    def __init__(
        self,
        max_records: int = MAX_PENDING_RECORDS,
        max_bytes: int = MAX_PENDING_BYTES,
        max_events: int = MAX_EVENTS_PER_FLUSH,
    ) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: set[Subscription] = set()
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._max_events = max_events
        self._lock = threading.Lock()
        self._queued: list[list[CapturedRequest]] = []

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the subscriptions live in (the inspector's)."""
        self._loop = loop

    def publish(self, records: Sequence[CapturedRequest]) -> None:
        """Called by the store's writer thread; returns at once, whatever the pages do."""
        loop = self._loop
        if not self._subs or loop is None or not records:
            return
        with self._lock:
            first = not self._queued
            self._queued.append(list(records))
        if first:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody listens
                loop.call_soon_threadsafe(loop.call_later, FLUSH_SECONDS, self._fan_out)

    def _fan_out(self) -> None:
        with self._lock:
            batches, self._queued = self._queued, []
        skipped = sum(len(batch) for batch in batches) - self._max_events
        if skipped > 0:  # a flood: only the newest go out
            batches = [[r for batch in batches for r in batch][skipped:]]
        for sub in list(self._subs):
            if skipped > 0:
                sub.skip(skipped)
            for records in batches:
                sub.offer(records)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self) -> Subscription:
        """A new subscription (call in the loop's thread)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        sub = Subscription(self._max_records, self._max_bytes)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close(self) -> None:
        """End every stream (in the loop's thread), so a server can stop at once."""
        for sub in list(self._subs):
            sub.close()
        self._subs.clear()
