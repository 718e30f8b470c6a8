"""`vwh listen` and its store's file: private modes, deletion, damage, a big store.

Each test runs the real listener as a subprocess and does to the file what a
user would (rm, chmod, a disk that goes away, a crash that garbles pages).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.helpers import FIXTURES, ListenerProcess, listener, run_vwh
from vwh.store import CapturedRequest, CaptureStore
from vwh.webhook import fingerprint

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url + "/hooks/vendasta", content=body, timeout=30)


def body(n: int) -> bytes:
    return json.dumps({"orderId": f"AG-1:ORD-{n:06d}"}).encode()


def files_of(store: Path) -> list[Path]:
    return [store, Path(f"{store}-wal"), Path(f"{store}-shm")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def kept_bodies(store: Path) -> list[bytes | None]:
    with CaptureStore.open_existing(store) as s:
        return [r.body for r in s.iter_all()]


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def test_store_directory_and_files_are_private(tmp_path: Path) -> None:
    store = tmp_path / "data" / "vwh" / "captures.sqlite3"
    with listener("--store", str(store)) as proc:
        assert post(proc.url, body(1)).status_code == 200
        modes = {p.name: mode(p) for p in files_of(store)}  # while running: -wal, -shm exist
        proc.stop()
    assert modes == {
        "captures.sqlite3": 0o600,
        "captures.sqlite3-wal": 0o600,
        "captures.sqlite3-shm": 0o600,
    }
    assert mode(store.parent) == 0o700


def test_an_existing_world_readable_store_is_made_private(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite3"
    CaptureStore(store).close()
    os.chmod(store, 0o644)
    with listener("--store", str(store)) as proc:
        assert post(proc.url, body(1)).status_code == 200
        modes = [mode(p) for p in files_of(store)]
        proc.stop()
    assert modes == [0o600, 0o600, 0o600]


def test_a_deleted_store_is_recreated_and_every_2xx_is_in_it(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    with listener("--store", str(store)) as proc:
        assert post(proc.url, body(1)).status_code == 200
        for path in files_of(store):
            path.unlink()
        answers = [post(proc.url, body(n)).status_code for n in (2, 3, 4)]
        # Read while it runs: the rows are in the file at the path, not in a deleted one.
        now_kept = kept_bodies(store)
        modes = [mode(p) for p in files_of(store)]
        proc.stop()
    assert answers == [200, 200, 200]
    assert now_kept == [body(2), body(3), body(4)]
    assert modes == [0o600, 0o600, 0o600]
    [warning] = warnings(proc.stderr)  # said once, not once per request
    assert ": it was deleted: started a fresh one there" in warning and str(store) in warning
    assert "Traceback" not in proc.stderr
    assert len(proc.stdout.splitlines()) == 4  # every answered request was shown


def test_a_replaced_store_is_written_to_the_new_file(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    other = tmp_path / "other.sqlite3"
    CaptureStore(other).close()
    with listener("--store", str(store)) as proc:
        assert post(proc.url, body(1)).status_code == 200
        for path in files_of(store):
            path.unlink()
        os.rename(other, store)
        assert post(proc.url, body(2)).status_code == 200
        now_kept = kept_bodies(store)
        proc.stop()
    assert now_kept == [body(2)]
    [warning] = warnings(proc.stderr)
    assert ": it was replaced: writing to the new file" in warning


def test_a_vanished_directory_gets_5xx_until_it_is_back(tmp_path: Path) -> None:
    folder = tmp_path / "mnt"
    store = folder / "store.sqlite3"
    with listener("--store", str(store)) as proc:
        assert post(proc.url, body(1)).status_code == 200
        shutil.rmtree(folder)
        gone = [post(proc.url, body(n)) for n in (2, 3)]
        assert not folder.exists()  # not silently made again somewhere the disk was
        folder.mkdir()
        back = post(proc.url, body(4)).status_code
        now_kept = kept_bodies(store)
        proc.stop()
    assert [r.status_code for r in gone] == [500, 500]
    assert "cannot create the store" in gone[0].json()["error"]
    assert back == 200
    assert now_kept == [body(4)]
    failing, recovered = warnings(proc.stderr)
    assert "answering 500 until it can write again" in failing
    assert f"writing to the store at {store} again (it was deleted: started a fresh" in recovered
    assert len(proc.stdout.splitlines()) == 2  # the 500s were not kept, so not shown as kept


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """No new file can be made in `folder`: mode 0500, or immutable for root."""
    if os.geteuid() == 0:  # root ignores modes
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)


def test_an_unwritable_directory_gets_5xx_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = folder / "store.sqlite3"
    with listener("--store", str(store)) as proc:
        assert post(proc.url, body(1)).status_code == 200
        for path in files_of(store):
            path.unlink()
        with unwritable(folder):
            refused = [post(proc.url, body(n)).status_code for n in (2, 3)]
            assert not store.exists()
        back = post(proc.url, body(4)).status_code
        now_kept = kept_bodies(store)
        proc.stop()
    assert refused == [500, 500]
    assert back == 200
    assert now_kept == [body(4)]
    assert len(warnings(proc.stderr)) == 2  # failing once, then writing again


def damage(store: Path) -> None:
    """Garbage over pages in the middle of the file, as a crash of the disk would leave."""
    size = store.stat().st_size
    with store.open("r+b") as f:
        f.seek(size // 2 - (size // 2) % 4096)
        f.write(os.urandom(8192))


def delivery(data: bytes) -> CapturedRequest:
    return CapturedRequest(
        received_at=time.time(),
        method="POST",
        path="/",
        body=data,
        body_size=len(data),
        fingerprint=fingerprint(data),
        attempt=1,
    )


def filled_store(store: Path, rows: int = 2000) -> None:
    """A store of a few hundred pages; closing it leaves everything in the main file."""
    with CaptureStore(store) as s:
        for n in range(rows):
            s.add(delivery(body(n) + b" " * 400))
    assert not Path(f"{store}-wal").exists()


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], store: Path) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"vwh: error: the store at {store} is damaged")
    assert "move it aside" in lines[0] and "--store" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_damaged_store_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    filled_store(store)
    damage(store)
    for args in (["listen", "--port", "0"], ["history"], ["show", "1"], ["history", "--json"]):
        assert_one_line_refusal(run_vwh(*args, "--store", str(store), timeout=30), store)


def test_a_file_that_is_not_sqlite_is_refused_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    store.write_bytes(b"these are my notes, not a database\n" * 200)
    for args in (["listen", "--port", "0"], ["history"], ["show", "1"]):
        assert_one_line_refusal(run_vwh(*args, "--store", str(store), timeout=30), store)
    assert store.read_bytes().startswith(b"these are my notes")  # left as it was


def test_a_million_row_store_answers_its_first_delivery_at_once(tmp_path: Path) -> None:
    """The resend filter is built off the event loop; meanwhile the index answers."""
    store = tmp_path / "big.sqlite3"
    CaptureStore(store).close()
    started = time.monotonic()
    with sqlite3.connect(store) as conn:
        conn.execute(
            "INSERT INTO requests (received_at, method, path, verdict, status, fingerprint,"
            " attempt) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
            " WHERE i < 1000000) SELECT i, 'POST', '/', 'ok', 200, random(), 1 FROM n"
        )
        conn.execute(
            "INSERT INTO requests (received_at, method, path, verdict, status, fingerprint,"
            " attempt, body) VALUES (5.0, 'POST', '/', 'ok', 200, ?, 1, ?)",
            (fingerprint(ORDER), ORDER),
        )
    assert time.monotonic() - started < 45  # bounded: the store is made in seconds
    proc = ListenerProcess("--store", str(store)).start(ready_timeout=60)
    try:
        with httpx.Client(timeout=30) as client:  # made first: its set-up is not timed
            sent = time.monotonic()
            resend = client.post(proc.url + "/hooks/vendasta", content=ORDER)
            first_answer = time.monotonic() - sent
            fresh = client.post(proc.url + "/hooks/vendasta", content=body(1))
    finally:
        proc.stop()
    assert resend.status_code == 200 and fresh.status_code == 200
    assert first_answer < 0.5, f"first answer took {first_answer:.2f}s"
    with sqlite3.connect(store) as conn:
        rows = conn.execute(
            "SELECT attempt, first_seen_at FROM requests WHERE id > 1000001 ORDER BY id"
        ).fetchall()
    assert rows[0] == (2, 5.0)  # recognised as a resend of the kept body
    assert rows[1][0] == 1
