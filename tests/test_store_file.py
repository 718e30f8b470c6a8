from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vwh.errors import StoreError
from vwh.store import CapturedRequest, CaptureStore
from vwh.store_file import create_private


def test_new_store_is_private_whatever_the_umask(tmp_path: Path) -> None:
    store = tmp_path / "new" / "captures.sqlite3"
    old = os.umask(0)
    try:
        create_private(store)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700


def test_a_missing_directory_is_not_made_when_asked_not_to(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        create_private(tmp_path / "gone" / "s.sqlite3", make_dirs=False)
    assert not (tmp_path / "gone").exists()


def test_check_refuses_damaged_pages(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        for n in range(500):
            store.add(CapturedRequest(received_at=n, method="POST", path="/", body=b"x" * 500))
    size = store_path.stat().st_size
    with store_path.open("r+b") as f:
        f.seek(size // 2 - (size // 2) % 4096)
        f.write(b"\xa5" * 8192)
    with CaptureStore(store_path) as store, pytest.raises(StoreError, match="is damaged"):
        store.check(write=True)
