"""Reading a stream of bodies line by line, never holding more than `max_size` of it.

A stream may be one body or JSON lines, and which is found only by reading: the lines
read are kept until the stream proves too long to be one body, so a single body is not
read twice and a huge line is refused without reading past the limit.
"""

from __future__ import annotations

import json
import os
import stat
from typing import BinaryIO


class TooLarge(Exception):
    """A body or line over `max_size`; its message names the input."""


class BoundedLines:
    """Lines of a byte stream, each read whole but never more than `max_size` of it.

    Keeps what it read until `rest()` asks for the whole text, so a stream found to be
    one body (not JSON lines) is not read twice.
    """

    def __init__(self, stream: BinaryIO, name: str, max_size: int) -> None:
        self.name = name
        self._stream = stream
        self._max = max_size
        self._number = 0
        self._kept: list[bytes] | None = []  # None past max_size: it cannot be one body
        self._kept_size = 0

    def next_filled(self) -> tuple[int, bytes] | None:
        """The next line that is not blank (number, text without its line break)."""
        while True:
            raw = self._stream.readline(self._max + 1)
            if not raw:
                return None
            self._number += 1
            if len(raw) > self._max and not raw.endswith(b"\n"):
                # Still undecided, the source could be one body: then it is the one too large.
                where = self.name if self._kept is not None else f"{self.name} line {self._number}"
                raise TooLarge(f"{where}: larger than {size_text(self._max)} (--max-size)")
            if self._kept is not None:
                self._kept.append(raw)
                self._kept_size += len(raw)
                if self._kept_size > self._max:
                    self._kept = None  # too much to be one body: JSON lines, or too large
            line = raw[:-1] if raw.endswith(b"\n") else raw
            line = line[:-1] if line.endswith(b"\r") else line
            if line.strip():
                return self._number, line

    def keep_nothing(self) -> None:
        self._kept = None

    def rest(self) -> bytes:
        """Everything the stream holds, from its start; TooLarge past `max_size`."""
        if self._kept is None:
            raise TooLarge(f"{self.name}: larger than {size_text(self._max)} (--max-size)")
        kept = b"".join(self._kept)
        raw = kept + self._stream.read(max(0, self._max + 1 - len(kept)))
        if len(raw) > self._max:
            raise TooLarge(f"{self.name}: larger than {size_text(self._max)} (--max-size)")
        return raw


def is_json_value(line: bytes) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def can_read_ahead(stream: BinaryIO) -> bool:
    """True for a regular file (or bytes in memory); False for a pipe, FIFO or device."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, AttributeError, ValueError):
        return True  # io.BytesIO has no descriptor: all of it is there


def size_text(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n:,} bytes"
