"""The live stream's fan-out: never blocks the writer thread, drops events, not requests."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from vwh.inspector.broadcast import Broadcaster, Gap
from vwh.store import CapturedRequest


def records(first: int, count: int, size: int = 10) -> list[CapturedRequest]:
    return [
        CapturedRequest(received_at=0.0, method="POST", path="/", body_size=size, id=first + i)
        for i in range(count)
    ]


class CountingLoop:
    calls = 0

    def call_soon_threadsafe(self, *args: Any) -> None:
        self.calls += 1


def test_without_subscribers_publish_does_nothing() -> None:
    broadcaster = Broadcaster()
    loop = CountingLoop()
    broadcaster.attach(loop)  # type: ignore[arg-type]
    broadcaster.publish(records(1, 5))
    assert loop.calls == 0


def test_records_published_from_another_thread_reach_each_subscriber() -> None:
    async def go() -> tuple[list[Any], list[Any]]:
        broadcaster = Broadcaster()
        a, b = broadcaster.subscribe(), broadcaster.subscribe()
        thread = threading.Thread(target=broadcaster.publish, args=(records(1, 3),))
        thread.start()
        thread.join()
        return await a.next(5), await b.next(5)

    got_a, got_b = asyncio.run(go())
    assert [r.id for r in got_a] == [r.id for r in got_b] == [1, 2, 3]


def test_a_subscriber_that_falls_behind_gets_a_gap_and_then_new_records() -> None:
    async def go() -> tuple[float, list[Any], list[Any]]:
        broadcaster = Broadcaster(max_records=10, max_events=10_000)
        slow = broadcaster.subscribe()
        started = time.perf_counter()
        for batch in range(100):  # 1,000 records; the subscriber holds at most 10
            broadcaster.publish(records(batch * 10 + 1, 10))
        took = time.perf_counter() - started
        await asyncio.sleep(0)  # let the hand-offs run
        first = await slow.next(5)
        broadcaster.publish(records(1001, 2))
        await asyncio.sleep(0)
        second = await slow.next(5)
        return took, first or [], second or []

    took, first, second = asyncio.run(go())
    assert took < 1.0  # 100 publishes to a stuck subscriber: no waiting (generous bound)
    assert [r.id for r in first[:-1]] == list(range(1, 11))
    assert first[-1] == Gap(990)
    assert [r.id for r in second] == [1001, 1002]


def test_a_flood_reaches_a_page_as_a_gap_then_the_newest_records() -> None:
    """Thousands of requests a second: each hand-off carries only the newest, and
    says how many it left out, so the stream costs the listener little."""

    async def go() -> tuple[list[Any], list[Any]]:
        broadcaster = Broadcaster(max_events=25)
        sub = broadcaster.subscribe()
        for batch in range(10):  # 400 records in one hand-off
            broadcaster.publish(records(batch * 40 + 1, 40))
        await asyncio.sleep(0.1)  # the hand-off runs FLUSH_SECONDS later
        flood = await sub.next(5) or []
        broadcaster.publish(records(401, 3))  # a quiet moment: every record again
        await asyncio.sleep(0.1)
        return flood, await sub.next(5) or []

    flood, quiet = asyncio.run(go())
    assert flood[0] == Gap(375)
    assert [r.id for r in flood[1:]] == list(range(376, 401))
    assert [r.id for r in quiet] == [401, 402, 403]


def test_big_bodies_are_bounded_by_bytes_too() -> None:
    async def go() -> list[Any]:
        broadcaster = Broadcaster(max_records=1000, max_bytes=1000)
        sub = broadcaster.subscribe()
        broadcaster.publish(records(1, 1, size=600))
        broadcaster.publish(records(2, 1, size=600))
        await asyncio.sleep(0)
        return await sub.next(5) or []

    got = asyncio.run(go())
    assert [getattr(item, "id", item) for item in got] == [1, Gap(1)]


def test_close_ends_every_stream_and_a_quiet_one_times_out() -> None:
    async def go() -> tuple[Any, Any, int]:
        broadcaster = Broadcaster()
        sub = broadcaster.subscribe()
        quiet = await sub.next(0.01)
        broadcaster.close()
        return quiet, await sub.next(5), broadcaster.subscribers

    quiet, closed, left = asyncio.run(go())
    assert quiet is None and closed == [] and left == 0
