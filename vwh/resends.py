"""Telling Vendasta's resends from first deliveries: the same body, byte for byte, again."""

from __future__ import annotations

from collections import OrderedDict

from vwh.store import CaptureStore


class DeliveryTracker:
    """Counts arrivals of each distinct body, to spot Vendasta's resends.

    Recent bodies live in a bounded LRU, so memory stays flat under load; older
    ones are looked up in the store, so resends are recognised across restarts.
    """

    def __init__(self, store: CaptureStore | None, capacity: int = 4096) -> None:
        self._store = store
        self._capacity = capacity
        self._seen: OrderedDict[int, list[float]] = OrderedDict()  # fp -> [count, first_seen]

    def arrive(self, fp: int, now: float) -> tuple[int, float]:
        """Record one arrival; return its attempt number (1 = first) and first arrival."""
        entry = self._seen.get(fp)
        if entry is None:
            count, first = self._store.deliveries_of(fp) if self._store else (0, None)
            entry = [float(count), first if first is not None else now]
            self._seen[fp] = entry
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(fp)
        entry[0] += 1
        return int(entry[0]), entry[1]
