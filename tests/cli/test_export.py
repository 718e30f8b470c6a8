"""`vwh export` as a user runs it: NDJSON replayed into a real listener, HAR checked."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx

from tests.har import har_problems
from tests.helpers import invoke, listener, run_vwh, vwh_env
from vwh.store import CapturedRequest, CaptureStore

TOKEN = "s3cret-verifier-token"
# What a sender might send: odd paths and queries, a hostile body, bytes that are not UTF-8.
SENT = [
    ("POST", "/hooks/vendasta", "", b'{"orderId": "AG-1:ORD-1"}'),
    ("POST", "/hooks/with%20space/x", "a=1&b=two%20words&b=3", b'{"accountId": "AG-2"}'),
    ("POST", "/h", "q=%E2%9C%93", '{"n": "\x1b[31m \u202e é 😀"}'.encode()),
    ("POST", "/bin", "", b'{"x": "\xff\xfe"}'),
    ("PUT", "/put", "k=v", b'{"orderId": "AG-3:ORD-3"}'),
]


def _sent_and_kept(store: Path) -> list[tuple[str, str, str, bytes | None]]:
    with CaptureStore(store) as kept:
        return [(r.method, r.path, r.query, r.body) for r in kept.iter_all()]


def test_ndjson_replayed_into_a_listener_gives_the_same_requests(tmp_path: Path) -> None:
    first, second = tmp_path / "first.sqlite3", tmp_path / "second.sqlite3"
    with listener("--token", TOKEN, "--store", str(first)) as proc:
        for method, path, query, body in SENT:
            url = f"{proc.url}{path}" + (f"?{query}" if query else "")
            headers = {"Verifier-Token": TOKEN, "Content-Type": "application/json"}
            httpx.request(method, url, content=body, headers=headers, timeout=10)
    received = _sent_and_kept(first)
    assert len(received) == len(SENT)

    exported = tmp_path / "kept.ndjson"
    result = run_vwh("export", "--store", str(first), "-o", str(exported))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"exported 5 requests to {exported}\n"
    assert stat.S_IMODE(os.stat(exported).st_mode) == 0o600
    assert TOKEN not in exported.read_text()

    env = vwh_env(VWH_TOKEN=TOKEN)
    with listener("--store", str(second), env=env) as proc:
        replayed = run_vwh("replay", str(exported), "--to", proc.url + "/", env=env)
    assert replayed.returncode == 3, replayed.stderr  # the PUT is refused (405), as at first
    assert _sent_and_kept(second) == received
    with CaptureStore(second) as kept:
        assert {r.verdict for r in kept.iter_all()} == {"ok"}


def test_har_export_has_the_fields_har_1_2_requires(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    with listener("--token", TOKEN, "--store", str(store)) as proc:
        for method, path, query, body in SENT:
            url = f"{proc.url}{path}" + (f"?{query}" if query else "")
            httpx.request(method, url, content=body, headers={"Verifier-Token": "no"}, timeout=10)
    har = tmp_path / "kept.har"
    result = run_vwh("export", "--store", str(store), "--format", "har", "-o", str(har))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(har).st_mode) == 0o600
    document = json.loads(har.read_text())
    assert har_problems(document) == []
    entries = document["log"]["entries"]
    assert [e["request"]["method"] for e in entries] == [m for m, *_ in SENT]
    assert [e["response"]["status"] for e in entries] == [401, 401, 401, 401, 405]
    assert entries[1]["request"]["url"] == f"{proc.url}/hooks/with%20space/x?a=1&b=two%20words&b=3"


def test_export_takes_the_history_filters_and_writes_to_stdout(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        for i, status in enumerate((200, 401, 200, 503)):
            store.add(
                CapturedRequest(
                    received_at=1.0, method="POST", path=f"/p{i}", status=status, body=b"{}"
                )
            )
    result = invoke("export", "--status", "2xx")
    assert result.exit_code == 0
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == ["/p0", "/p2"]
    har = json.loads(invoke("export", "--format", "har", "--path", "/p3").stdout)
    assert [e["response"]["status"] for e in har["log"]["entries"]] == [503]
    empty = json.loads(invoke("export", "--format", "har", "--grep", "nothing").stdout)
    assert har_problems(empty) == [] and empty["log"]["entries"] == []


def test_bad_format_and_unwritable_file_are_one_line(store_path: Path, tmp_path: Path) -> None:
    CaptureStore(store_path).close()
    bad = run_vwh("export", "--format", "csv")
    assert (bad.returncode, bad.stderr) == (
        2,
        "vwh: error: unknown format 'csv': use ndjson or har\n",
    )
    nowhere = run_vwh("export", "-o", str(tmp_path / "no" / "x.ndjson"))
    assert nowhere.returncode == 2 and nowhere.stderr.startswith("vwh: error: cannot write ")
    assert nowhere.stderr.count("\n") == 1


def test_a_reader_that_stops_early_only_stops_the_export(store_path: Path) -> None:
    import subprocess
    import sys

    with CaptureStore(store_path) as store:
        for _ in range(2000):  # far more than a pipe holds
            store.add(CapturedRequest(received_at=1.0, method="POST", path="/p", body=b"{}" * 64))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vwh", "export"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=vwh_env(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["id"] == 1
    proc.stdout.close()  # as `vwh export | head -1` does
    assert proc.wait(30) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()
