"""`vwh listen --save DIR`: each accepted body as a file, byte for byte.

The file is written under a temporary name before the request is committed and
renamed to `vwh-<id>.json` after, so a 2xx means both the row and the file exist,
and a failed write (a full disk) leaves nothing partial behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from vwh.store import CapturedRequest


def stage_body(directory: Path, record: CapturedRequest) -> Path | None:
    """Write the body to a temporary file before the commit, so a 2xx means both happened.

    On failure (a full disk, say) nothing is left behind and the record says why.
    """
    assert record.body is not None
    staged = directory / f".vwh-{secrets.token_hex(8)}.tmp"
    try:
        with open(staged, "xb") as file:
            file.write(record.body)
    except OSError as exc:
        discard(staged)
        record.error = f"cannot save the body in {directory}: {exc.strerror or exc}"
        return None
    return staged


def name_body(staged: Path, record: CapturedRequest) -> None:
    """Give a staged body its name, so `ls` sorts files in arrival order (needs no space)."""
    with contextlib.suppress(OSError):
        os.replace(staged, staged.with_name(f"vwh-{record.id:06d}.json"))


def discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
