"""Telling a new body from a resend without a query: a Bloom filter of fingerprints.

Almost every delivery is a new body, so the listener asks the filter first and
queries the store only on a "maybe". Building the filter reads every kept
fingerprint (seconds for a million rows), so it is built in a thread at start;
until then every answer is "maybe", and the indexed query decides.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class FingerprintFilter:
    """A Bloom filter of 64-bit body fingerprints: fixed memory, no false "never".

    2 MiB with 2 probes (two slices of the fingerprint, itself a hash) keeps false
    positives, which only cost a query, near 1.3% at a million kept deliveries.
    """

    BITS = 1 << 24

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)

    def add(self, fingerprint: int) -> bool:
        """Remember a fingerprint; True when it may have been seen before."""
        bits = self._bits
        low, high = fingerprint & 0xFFFFFF, (fingerprint >> 24) & 0xFFFFFF
        low_mask, high_mask = 1 << (low & 7), 1 << (high & 7)
        seen = bits[low >> 3] & low_mask and bits[high >> 3] & high_mask
        bits[low >> 3] |= low_mask
        bits[high >> 3] |= high_mask
        return bool(seen)


class KnownFingerprints:
    """The filter of every kept delivery's fingerprint, loaded in the background."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: FingerprintFilter | None = None
        self._unfiltered: list[int] | None = None  # asked while the filter is being built

    def maybe_seen(self, fingerprint: int) -> bool:
        """Remember a fingerprint; False only when it was certainly never kept."""
        seen = self._seen  # once built it stays: no lock needed to use it
        if seen is not None:
            return seen.add(fingerprint)
        with self._lock:
            seen = self._seen
            if seen is None:
                if self._unfiltered is not None:
                    self._unfiltered.append(fingerprint)
                return True
        return seen.add(fingerprint)

    def load(self, path: Path) -> threading.Thread:
        """Start building the filter from the store at `path`."""
        with self._lock:
            self._unfiltered = []
        thread = threading.Thread(
            target=self._build, args=(path,), name="vwh-store-filter", daemon=True
        )
        thread.start()
        return thread

    def _build(self, path: Path) -> None:
        seen = FingerprintFilter()
        try:
            conn = sqlite3.connect(path, check_same_thread=False)
            try:
                rows = conn.execute("SELECT fingerprint FROM requests WHERE attempt IS NOT NULL")
                for (fp,) in rows:
                    seen.add(fp)
            finally:
                conn.close()
        except sqlite3.Error:
            with self._lock:
                self._unfiltered = None  # unreadable: the indexed query goes on answering
            return
        with self._lock:
            for fp in self._unfiltered or ():
                seen.add(fp)
            self._unfiltered = None
            self._seen = seen
