"""`vwh clear` as a user runs it: asked on a terminal, refused unasked, safe mid-burst."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.helpers import listener, run_vwh, vwh_env
from vwh.store import CapturedRequest, CaptureStore


def _keep(store_path: Path, ages: list[float]) -> None:
    now = time.time()
    with CaptureStore(store_path) as store:
        for age in ages:
            store.add(CapturedRequest(received_at=now - age, method="POST", path=f"/{age:g}"))


def _paths(store_path: Path) -> list[str]:
    with CaptureStore(store_path) as store:
        return [r.path for r in store.iter_all()]


def test_without_yes_and_no_terminal_it_refuses_in_one_line(store_path: Path) -> None:
    _keep(store_path, [10, 20])
    result = run_vwh("clear", input=b"y\n")
    assert result.returncode == 2
    assert result.stderr == (
        "vwh: error: not clearing every kept request without --yes (stdin is not a terminal)\n"
    )
    assert len(_paths(store_path)) == 2


def test_yes_empties_the_store_and_older_than_keeps_the_recent(store_path: Path) -> None:
    _keep(store_path, [60, 3 * 86400, 8 * 86400, 30 * 86400])
    older = run_vwh("clear", "--older-than", "7d", "--yes")
    assert older.returncode == 0
    assert older.stderr == f"deleted 2 requests from {store_path}\n"
    assert _paths(store_path) == ["/60", "/259200"]
    everything = run_vwh("clear", "-y")
    assert (everything.returncode, everything.stderr) == (
        0,
        f"deleted 2 requests from {store_path}\n",
    )
    assert _paths(store_path) == []


def test_bad_age_and_missing_store_are_one_line(tmp_path: Path) -> None:
    missing = run_vwh("clear", "--yes", "--store", str(tmp_path / "none.sqlite3"))
    assert missing.returncode == 9 and missing.stderr.startswith("vwh: error: no store at ")
    _keep(tmp_path / "s.sqlite3", [1])
    bad = run_vwh("clear", "--older-than", "old", "--yes", "--store", str(tmp_path / "s.sqlite3"))
    assert bad.returncode == 2 and bad.stderr.startswith("vwh: error: bad time 'old'")


def _on_a_terminal(store_path: Path, answer: bytes) -> tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vwh", "clear"],
        stdin=follower, stdout=follower, stderr=follower, env=vwh_env(VWH_STORE=str(store_path)),
    )  # fmt: skip
    os.close(follower)
    screen = b""
    try:
        deadline = time.monotonic() + 15
        while b"[y/N]" not in screen and time.monotonic() < deadline:
            screen += os.read(leader, 4096)
        os.write(leader, answer)
        code = proc.wait(15)
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return code, screen.decode(errors="replace")


def test_on_a_terminal_it_asks_first(store_path: Path) -> None:
    _keep(store_path, [1, 2])
    code, screen = _on_a_terminal(store_path, b"n\n")
    assert f"Delete every kept request from {store_path}? [y/N]" in screen
    assert code == 1 and "nothing deleted" in screen
    assert len(_paths(store_path)) == 2
    code, screen = _on_a_terminal(store_path, b"y\n")
    assert code == 0 and "deleted 2 requests" in screen
    assert _paths(store_path) == []


def test_clear_while_a_listener_writes_loses_nothing_answered_after(store_path: Path) -> None:
    """A burst runs before, during and after a clear: the accounting is exact.

    Everything answered before the clear started is gone; everything sent after it
    ended is kept; and what is kept is exactly what was answered minus what the
    clear says it deleted: nothing answered during the clear is lost.
    """
    answered: list[tuple[float, float, bytes]] = []  # (sent, answered, body)
    clear: dict[str, object] = {}
    with listener() as proc:

        async def run_clear() -> None:
            clear["started"] = time.monotonic()
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "vwh", "clear", "--yes",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=vwh_env(),
            )  # fmt: skip
            _, err = await asyncio.wait_for(child.communicate(), 60)
            clear["ended"] = time.monotonic()
            clear["code"], clear["stderr"] = child.returncode, err.decode()

        async def sender(client: httpx.AsyncClient, numbers: Iterator[int]) -> None:
            for i in numbers:
                after = [a for s, a, _ in answered if s > clear.get("ended", float("inf"))]
                if len(after) >= 40:
                    return
                body = json.dumps({"orderId": f"AG-1:ORD-{i:06d}"}).encode()
                sent = time.monotonic()
                r = await client.post(proc.url + "/burst", content=body)
                assert r.status_code == 200
                answered.append((sent, time.monotonic(), body))
                if len(answered) == 100:
                    clear["task"] = asyncio.ensure_future(run_clear())

        async def burst() -> None:
            numbers = iter(range(5000))  # bounded: at most 5000 requests
            async with httpx.AsyncClient(timeout=10) as client:
                await asyncio.wait_for(
                    asyncio.gather(*(sender(client, numbers) for _ in range(8))), 90
                )
            await clear["task"]  # type: ignore[misc]

        asyncio.run(burst())
        # The resend tracker still knows a body it saw before the clear.
        again = httpx.post(proc.url + "/burst", content=answered[0][2], timeout=10)
        assert again.status_code == 200
        assert proc.stop() == 0
    assert clear["code"] == 0, clear["stderr"]
    match = re.fullmatch(r"deleted (\d+) requests from .*\n", str(clear["stderr"]))
    assert match, clear["stderr"]
    deleted = int(match.group(1))
    with CaptureStore(store_path) as store:
        last = store.recent(1)[0]
        assert (last.body, last.attempt) == (answered[0][2], 2)
        store.delete("id = ?", (last.id,))
    kept = _paths_and_bodies(store_path)
    started, ended = float(clear["started"]), float(clear["ended"])  # type: ignore[arg-type]
    assert [b for _, a, b in answered if a < started and b in kept] == []
    assert [b for s, _, b in answered if s > ended and b not in kept] == []
    assert len(kept) == len(answered) - deleted
    assert kept <= {b for _, _, b in answered}
    assert 100 <= deleted < len(answered)
    assert [b for s, a, b in answered if s > started and a < ended]  # it wrote meanwhile


def _paths_and_bodies(store_path: Path) -> set[bytes]:
    with CaptureStore(store_path) as store:
        bodies = [r.body for r in store.iter_all() if r.body is not None]
    assert len(bodies) == len(set(bodies))
    return set(bodies)
