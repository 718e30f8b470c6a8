"""A few thousand generated hostile requests against one real `vwh listen`, batch by batch.

The requests (tests/fuzz_requests.py) go over raw sockets, a few at a time, to a
listener started with `--token` and a short VWH_CLIENT_TIMEOUT. After every volley:
every request that got an answer (a 2xx above all) is on disk with the status it got,
found by the marker in its path, and a normal delivery still gets 200. After every
batch: `vwh history --all` (plain and --json) lists every row, inert; `vwh show`
renders every new row, and runs in full (plain and --json) on a sample; the listener's
own output is inert, has a line for every row and, in --json mode, the very record
history shows; stderr has no traceback or warning.
At the end Ctrl-C exits 0 with a summary that matches the store.

Hypothesis draws the requests from a fixed seed per batch with no example database,
so CI sends the same bytes each run; when something fails it shrinks to one request.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.fuzz_requests import MARK, RIGHT, TOKEN, Exchange, volleys
from tests.helpers import ListenerProcess, invoke, raw_exchange, vwh_env
from tests.hostile import ORDER, assert_inert, raw_request, run_vwh_bytes
from vwh.cli.listen_view import request_details
from vwh.store import CaptureStore

BATCHES = {"plain": 4, "json": 1}  # the --json listener: its lines, checked as cheaply
VOLLEYS = 90  # Hypothesis examples per batch; a volley is 3 to 10 requests sent at once
WORKERS = 8
CLIENT_TIMEOUT = "1.5"  # a half-sent request ends this soon (raw_exchange waits 10 s)
SHOW_SAMPLE = 20  # rows of each kind, and as many spread out, for a full `vwh show`
PLAIN_ID = re.compile(r"^\S+Z #(\d+) ", re.M)


@dataclass
class Fuzzed:
    """The listener under fire, its store, and what was sent so far."""

    proc: ListenerProcess
    store: Path
    env: dict[str, str]
    json_mode: bool
    db: sqlite3.Connection
    pool: ThreadPoolExecutor
    markers: Iterator[int] = field(default_factory=itertools.count)
    answers: Counter[int | None] = field(default_factory=Counter)

    def kept_statuses(self, marker: int) -> list[int]:
        """The statuses of the rows of this request: its marker starts the path, or, for
        one the HTTP parser refused, is in the request line kept as its body."""
        mark = f"/fz{marker}/"
        rows = self.db.execute(
            "SELECT status FROM requests WHERE path LIKE ? OR instr(body, ?) > 0",
            (mark + "%", mark.encode()),
        ).fetchall()
        return [status for (status,) in rows]


@pytest.fixture(scope="module", params=sorted(BATCHES))
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"fuzz-{mode}")
    store = tmp / "store.sqlite3"
    env = vwh_env(
        VWH_STORE=str(store),
        VWH_CLIENT_TIMEOUT=CLIENT_TIMEOUT,
        HOME=str(tmp),
        XDG_DATA_HOME=str(tmp / "data"),
        XDG_CACHE_HOME=str(tmp / "cache"),
        XDG_CONFIG_HOME=str(tmp / "config"),
    )
    args = ["--token", TOKEN, *(["--json"] if mode == "json" else [])]
    proc = ListenerProcess(*args, env=env).start()
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    with ThreadPoolExecutor(WORKERS) as pool:
        try:
            yield Fuzzed(proc, store, env, mode == "json", db, pool)
        finally:
            db.close()
            if proc.proc is not None and proc.proc.poll() is None:
                proc.stop()


@pytest.mark.timeout(600)  # passing takes well under a minute; shrinking a failure, longer
def test_hostile_requests_are_kept_shown_inert_and_never_stop_the_listener(fuzzed: Fuzzed) -> None:
    seen = 0
    batches = BATCHES["json" if fuzzed.json_mode else "plain"]
    for batch in range(batches):
        slow_and_heavy = _slow_and_heavy(fuzzed)
        _run_batch(fuzzed, batch)
        slow_and_heavy()
        seen = _check_batch(fuzzed, seen, last=batch == batches - 1)
    code = fuzzed.proc.stop()
    assert code == 0, fuzzed.proc.stderr
    _check_summary(fuzzed)
    assert sum(fuzzed.answers.values()) > 300 * batches, fuzzed.answers  # thousands in all


def _run_batch(f: Fuzzed, batch: int) -> None:
    @seed(1000 + batch)
    @settings(
        max_examples=VOLLEYS,
        deadline=None,
        database=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(volleys)
    def volley(exchanges: list[Exchange]) -> None:
        markers = [[next(f.markers) for _ in range(e.data.count(MARK))] or [-1] for e in exchanges]
        answered = list(f.pool.map(_send, itertools.repeat(f.proc.port), exchanges, markers))
        for exchange, marks, statuses in zip(exchanges, markers, answered, strict=True):
            for marker, status in zip(marks, statuses, strict=True):
                f.answers[status] += 1
                if status is not None and marker >= 0:  # answered: kept before that
                    kept = f.kept_statuses(marker)
                    assert status in kept, f"{exchange!r} got {status}, kept as {kept}"
        probe = next(f.markers)
        status = raw_request(
            f.proc.port, b"/fz%d/probe" % probe, [(b"Verifier-Token", RIGHT)], ORDER
        )
        assert status == 200, f"a normal delivery got {status} after {exchanges!r}"
        assert f.kept_statuses(probe) == [200]

    volley()


def _send(port: int, exchange: Exchange, markers: list[int]) -> list[int | None]:
    """Send one exchange, a marker in place of each MARK; the status answered to each
    of its requests, None where none came."""
    data = exchange.data
    for marker in markers:
        data = data.replace(MARK, b"/fz%d/" % marker, 1)
    try:
        answer = raw_exchange(
            port,
            data,
            close_after=0 if exchange.close else None,
            until_closed=len(markers) > 1,
        )
    except OSError:  # the server refused and closed while we were still sending
        answer = b""
    statuses: list[int | None] = []
    while answer.startswith(b"HTTP/1."):  # each answer in turn, by its Content-Length
        head, _, answer = answer.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        answer = answer[int(length.group(1)) if length else 0 :]
        status = int(head.split(b" ", 2)[1])
        if status >= 200:  # past 100 Continue
            statuses.append(status)
    return [*statuses, *[None] * len(markers)][: len(markers)]


def _slow_and_heavy(f: Fuzzed) -> Callable[[], None]:
    """Clients Hypothesis would make slow or heavy, one of each per batch, sent beside
    it: two that stop mid-way and wait (the listener's timeout must end them), and a
    body one byte over the 1 MiB limit (413, kept without it). Returns the check to
    run once the batch is done: each that got an answer was kept."""
    oversize = b'{"orderId":"' + b"\x1b" * (1 << 20) + b'"}'
    template = [
        b"POST /fz%d/held HTTP/1.1\r\nHost: x\r\nVerifier-Token: " + RIGHT,
        b'POST /fz%d/held HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"a":',
        b"POST /fz%%d/big HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(oversize) + oversize,
    ]
    sent = [(next(f.markers), data) for data in template]
    answers: dict[int, int | None] = {}

    def send(marker: int, data: bytes) -> None:
        [answers[marker]] = _send(f.proc.port, Exchange("slow or heavy", data % marker), [marker])

    threads = [threading.Thread(target=send, args=pair, daemon=True) for pair in sent]
    for thread in threads:
        thread.start()

    def check() -> None:
        for thread in threads:
            thread.join(30)
        assert len(answers) == len(sent)
        for marker, status in answers.items():
            f.answers[status] += 1
            assert status is None or status in f.kept_statuses(marker), (marker, status)

    return check


def _check_batch(f: Fuzzed, seen: int, last: bool) -> int:
    """History, show and the listener's output over every row; returns the newest id.

    A request whose client hung up may be kept a moment after the batch: each check
    takes the rows the one before it saw, and any newer ones.
    """
    ids = [row_id for (row_id,) in f.db.execute("SELECT id FROM requests ORDER BY id")]
    as_json = run_vwh_bytes("history", "--all", "--json", env=f.env)
    assert as_json.returncode == 0, as_json.stderr
    rows = {doc["id"]: doc for doc in map(json.loads, assert_inert(as_json.stdout).splitlines())}
    assert set(ids) <= set(rows)
    plain = run_vwh_bytes("history", "--all", env=f.env)
    assert plain.returncode == 0, plain.stderr
    listed = assert_inert(plain.stdout)
    listed_ids = [int(n) for n in PLAIN_ID.findall(listed)]
    assert len(listed.splitlines()) == len(listed_ids)  # no line forged, none lost
    assert set(rows) <= set(listed_ids)
    new = [row_id for row_id in sorted(rows) if row_id > seen]
    with CaptureStore.open_existing(f.store) as store:
        for row_id in new:  # what `vwh show` draws, for every row
            record = store.get(row_id)
            assert_inert("\n".join(request_details(record)).encode())
            assert rows[row_id] == record.to_json()
    for row_id in _sample(new, rows):
        _check_show(f, row_id, rows[row_id])
    if last:  # and once the real command, as a user runs it, on the row with most escapes
        row_id = max(new, key=lambda n: json.dumps(rows[n]).count("\\u"))
        plain = run_vwh_bytes("show", str(row_id), env=f.env)
        assert plain.returncode == 0, plain.stderr
        assert_inert(plain.stdout)
        shown = run_vwh_bytes("show", str(row_id), "--json", env=f.env)
        assert json.loads(assert_inert(shown.stdout)) == rows[row_id]
    _check_listener_output(f, rows)
    return max(rows)


def _sample(new: list[int], rows: dict[int, dict[str, object]]) -> list[int]:
    """The first row of each kind (status, verdict, reason), then evenly spread others."""
    kinds: dict[tuple[object, ...], int] = {}
    for row_id in new:
        row = rows[row_id]
        reason = str(row["error"] or "").split(":")[0][:40]
        kinds.setdefault((row["status"], row["verdict"], reason), row_id)
    spread = new[:: max(1, len(new) // SHOW_SAMPLE)]
    return sorted({*list(kinds.values())[:SHOW_SAMPLE], *spread})


def _check_show(f: Fuzzed, row_id: int, row: dict[str, object]) -> None:
    plain = invoke("show", str(row_id), "--store", str(f.store))
    assert plain.exit_code == 0, plain.stderr
    assert_inert(plain.stdout.encode())  # strict: a lone surrogate would fail here
    as_json = invoke("show", str(row_id), "--store", str(f.store), "--json")
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(assert_inert(as_json.stdout.encode())) == row


def _check_listener_output(f: Fuzzed, rows: dict[int, dict[str, object]]) -> None:
    """A line for every row (it prints after each commit: wait for the newest, bounded)."""
    deadline = time.monotonic() + 30
    while True:
        out, err = f.proc.output_so_far()
        text = assert_inert(out[: out.rfind(b"\n") + 1])  # whole lines only
        if f.json_mode:
            ready, *lines = text.splitlines()
            assert json.loads(ready)["event"] == "ready"
            shown = [json.loads(line) for line in lines]
            shown_ids = [doc["id"] for doc in shown]
        else:
            shown_ids = [int(n) for n in PLAIN_ID.findall(text)]
            assert len(text.splitlines()) == len(shown_ids)
        if max(rows) in shown_ids or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert shown_ids == sorted(shown_ids) and set(rows) <= set(shown_ids)
    if f.json_mode:  # the same record `vwh history --json` shows
        for doc in shown:
            assert doc == rows.get(doc["id"], doc)
    assert_inert(err[: err.rfind(b"\n") + 1])
    for bad in (b"Traceback", b"warning:", b"unexpected error"):
        assert bad not in err, err.decode(errors="replace")


def _check_summary(f: Fuzzed) -> None:
    """The summary line counts what the store holds."""
    count, accepted, rejected, resends = f.db.execute(
        "SELECT count(*), sum(status BETWEEN 200 AND 299 AND NOT rejected), sum(rejected),"
        " sum(attempt > 1) FROM (SELECT status, attempt,"
        " verdict IN ('wrong', 'missing') OR error IS NOT NULL AS rejected FROM requests)"
    ).fetchone()
    summary = (
        f"stopped: {count} received, {accepted} accepted, {rejected} rejected, {resends} resends"
    )
    assert summary in f.proc.stderr
    assert "Traceback" not in f.proc.stderr
