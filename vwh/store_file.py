"""The store's file on disk: created private, checked for damage, watched for deletion.

Captures hold tokens (masked) and bodies, so the directory is made 0700 and the
file 0600 before SQLite writes a byte; SQLite gives the -wal and -shm files the
database file's mode. A file that was deleted or replaced under a running
listener is noticed by its identity (device and inode), compared once per commit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from vwh.errors import StoreError

FILE_MODE = 0o600
DIR_MODE = 0o700
SIDE_FILES = ("-wal", "-shm")
# Past these a huge store is trusted unchecked, so starting and reading stay quick.
CHECK_SECONDS_LISTEN = 3.0  # once per `vwh listen`
CHECK_SECONDS_READ = 0.5  # every `vwh history` and `vwh show`
_DAMAGED = ("malformed", "not a database", "corrupt", "database disk image")

Identity = tuple[int, int]


def identity(path: Path | str) -> Identity | None:
    """The (device, inode) of the file at `path` now, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def create_private(path: Path, *, make_dirs: bool = True) -> None:
    """Make sure `path` exists as a file only its owner can read, before SQLite opens it.

    An existing store (and its -wal, -shm) is narrowed to 0600 too. With
    `make_dirs` false a missing directory is an error: a running listener whose
    directory vanished (an unmounted disk) must not silently write elsewhere.
    """
    if make_dirs and not path.parent.exists():
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        for name in (str(path), *(f"{path}{suffix}" for suffix in SIDE_FILES)):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                if os.stat(name).st_mode & 0o077:
                    os.chmod(name, FILE_MODE)
        return
    os.close(fd)  # an empty file is an empty SQLite database


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode: readers never block the listener, commits skip fsync."""
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(path, "open", exc) from None
    return conn


def is_damage(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and any(word in text for word in _DAMAGED)


def damaged(path: Path, detail: str) -> StoreError:
    return StoreError(
        f"the store at {path} is damaged ({detail}): move it aside (mv {path} {path}.damaged)"
        " to start a fresh one, or pass --store PATH to use another"
    )


def store_error(path: Path, action: str, exc: sqlite3.Error) -> StoreError:
    """The one-line error for a failed store operation; damage says what to do."""
    if is_damage(exc):
        return damaged(path, str(exc))
    return StoreError(f"cannot {action} the store at {path}: {exc}")


def check_health(conn: sqlite3.Connection, path: Path, *, write: bool) -> None:
    """Refuse a damaged store now, rather than on the first delivery.

    `PRAGMA quick_check` reads every page, bounded in time so a huge store still
    opens; `write` (the listener) adds a test insert, rolled back, to prove the
    pages an insert touches (and the lock) are usable.
    """
    budget = CHECK_SECONDS_LISTEN if write else CHECK_SECONDS_READ
    deadline = time.monotonic() + budget
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupted" not in str(exc):
            raise store_error(path, "read", exc) from None
        rows = [("ok",)]  # out of time: as far as it got, the store was sound
    except sqlite3.Error as exc:
        raise store_error(path, "read", exc) from None
    finally:
        conn.set_progress_handler(None, 0)
    problems = [str(row[0]) for row in rows if str(row[0]) != "ok"]
    if problems:
        raise damaged(path, "; ".join(problems)[:200])
    if write:
        _test_write(conn, path)


def _test_write(conn: sqlite3.Connection, path: Path) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO requests (received_at, method, path, verdict, status, fingerprint)"
            " VALUES (0, 'CHECK', '/', 'check', 0, 0)"
        )
    except sqlite3.Error as exc:
        raise store_error(path, "write to", exc) from None
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.rollback()
