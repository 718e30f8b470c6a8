"""`vwh replay` as a user runs it, against real local servers that answer by script."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FIXTURES,
    ThreadedServer,
    free_port,
    invoke,
    listener,
    run_vwh,
    vwh_env,
)
from tests.scripted import CutShort, KeepAliveCloser, Scripted
from vwh.store import CaptureStore

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()
TOKEN = "s3cret-verifier-token"
FAST = ("--backoff", "0.05")


def results(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def order_file(tmp_path: Path, name: str = "order.json", body: bytes = ORDER) -> str:
    path = tmp_path / name
    path.write_bytes(body)
    return str(path)


# Vendasta's delivery rules, through the CLI


def test_503_503_200_is_delivered_with_waits_within_the_backoff_bounds(tmp_path: Path) -> None:
    app = Scripted(503, 503, 200)
    with ThreadedServer(app) as server:
        r = invoke("replay", order_file(tmp_path), "--to", server.url, *FAST, "--json")
    assert r.exit_code == 0, r.stderr
    [result] = results(r.stdout)
    assert result["outcome"] == "delivered" and result["status"] == 200
    assert result["answer"] == '{"n": 3}' and result["method"] == "POST"
    attempts = result["attempts"]
    assert [a["status"] for a in attempts] == [503, 503, 200] and app.count == 3
    assert attempts[0]["waited_s"] == 0
    assert 0.025 - 0.001 <= attempts[1]["waited_s"] <= 0.05 + 0.001  # [b/2, b], b = 0.05
    assert 0.05 - 0.001 <= attempts[2]["waited_s"] <= 0.1 + 0.001  # b doubles


def test_400_is_rejected_once_with_exit_3(tmp_path: Path) -> None:
    app = Scripted(400)
    with ThreadedServer(app) as server:
        r = invoke("replay", order_file(tmp_path), "--to", server.url, *FAST)
    assert r.exit_code == 3 and app.count == 1
    fields = r.stdout.rstrip("\n").split("\t")
    assert fields[:4] == [str(tmp_path / "order.json"), "rejected", "400 Bad Request", "1 attempt"]
    assert re.fullmatch(r"\d+ ms", fields[4])
    assert "1 payload: 1 rejected" in r.stderr


def test_an_answer_slower_than_timeout_gives_up_with_exit_4(tmp_path: Path) -> None:
    app = Scripted((200, 5.0))
    with ThreadedServer(app) as server:
        r = invoke(
            "replay", order_file(tmp_path), "--to", server.url, *FAST,
            "--timeout", "0.2", "--attempts", "2", "--json",
        )  # fmt: skip
    assert r.exit_code == 4 and app.count == 2
    [result] = results(r.stdout)
    assert result["outcome"] == "gave-up"
    assert [a["error"] for a in result["attempts"]] == ["no answer within 0.2s"] * 2


def test_a_connection_closed_mid_response_is_resent_then_given_up(tmp_path: Path) -> None:
    with CutShort() as server:
        r = invoke("replay", order_file(tmp_path), "--to", server.url, *FAST, "-v")
    assert r.exit_code == 4 and server.count == 3
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[1:4] == [
        "gave-up",
        "connection broken before the answer was complete: the body of the answer was cut short",
        "3 attempts",
    ]
    assert lines[1].startswith("  attempt 1: connection broken before")
    assert re.match(r"  attempt 2 after 0\.0[2-5] s: connection broken", lines[2])
    assert re.match(r"  attempt 3 after 0\.(0[5-9]|10) s: connection broken", lines[3])


def test_a_refused_port_gives_up_with_exit_4_and_says_refused(tmp_path: Path) -> None:
    r = invoke(
        "replay", order_file(tmp_path), "--to", f"http://127.0.0.1:{free_port()}/", *FAST,
        "--json",
    )  # fmt: skip
    assert r.exit_code == 4
    [result] = results(r.stdout)
    assert [a["error"] for a in result["attempts"]] == ["could not connect: connection refused"] * 3


def test_no_retry_sends_once(tmp_path: Path) -> None:
    app = Scripted(503)
    with ThreadedServer(app) as server:
        r = invoke("replay", order_file(tmp_path), "--to", server.url, "--no-retry")
    assert r.exit_code == 4 and app.count == 1


def test_a_batch_exits_4_when_any_gave_up_and_keeps_input_order(tmp_path: Path) -> None:
    bodies = tmp_path / "payloads"
    bodies.mkdir()
    for n in range(12):
        (bodies / f"p{n:02d}.json").write_bytes(b'{"n": %d}' % n)

    def by_body(body: bytes) -> tuple[int, float]:
        # Early payloads answer slowest, so they finish last; 3 gets 400 and 7 gets 503.
        n = json.loads(body)["n"]
        return {3: (400, 0.0), 7: (503, 0.0)}.get(n, (200, 0.05 if n < 6 else 0.0))

    app = Scripted(by_body=by_body)
    with ThreadedServer(app) as server:
        r = invoke(
            "replay", str(bodies), "--to", server.url, "--attempts", "2", "--backoff", "0.01",
            "--concurrency", "4", "--json",
        )  # fmt: skip
    assert r.exit_code == 4
    got = results(r.stdout)
    assert [Path(g["source"]).name for g in got] == [f"p{n:02d}.json" for n in range(12)]
    assert [g["outcome"] for g in got].count("delivered") == 10
    assert got[3]["outcome"] == "rejected" and got[7]["outcome"] == "gave-up"
    assert app.max_in_flight <= 4
    assert "12 payloads: 10 delivered, 1 rejected, 1 gave up" in r.stderr


def test_token_headers_and_env_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = Scripted(200)
    with ThreadedServer(app) as server:
        monkeypatch.setenv("VWH_TARGET", server.url + "/hooks")
        monkeypatch.setenv("VWH_TOKEN", TOKEN)
        r = invoke(
            "replay", order_file(tmp_path), "--token-header", "X-Signature",
            "-H", "X-Trace: abc", "-H", "User-Agent: custom", "--json",
        )  # fmt: skip
    assert r.exit_code == 0
    [got] = app.received
    assert got.path == "/hooks" and got.body == ORDER
    assert got.header("x-signature") == TOKEN and got.header("verifier-token") is None
    assert got.header("x-trace") == "abc" and got.header("user-agent") == "custom"
    assert TOKEN not in r.stdout + r.stderr


def test_stdin_json_lines(tmp_path: Path) -> None:
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = invoke("replay", "-", "--to", server.url, input='{"a": 1}\n{"b": 2}\n')
    assert r.exit_code == 0 and sorted(g.body for g in app.received) == [b'{"a": 1}', b'{"b": 2}']
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == ["<stdin>:1", "<stdin>:2"]


def test_a_terminal_gets_a_progress_bar_then_a_table_with_the_timeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # Rich draws as on a terminal (NO_COLOR stays)
    for n in range(6):
        order_file(tmp_path, f"p{n}.json")
    app = Scripted(503, 200)
    with ThreadedServer(app) as server:
        r = invoke("replay", str(tmp_path), "--to", server.url, *FAST, "-v")
    assert r.exit_code == 0 and app.count == 7
    assert "payload" in r.stdout and "result" in r.stdout and r.stdout.count("delivered") == 6
    assert "waited" in r.stdout and "attempt 2" in r.stdout
    assert "503 Service Unavailable" in r.stdout


# Bad input before anything is sent: one line naming the input, exit 2, nothing sent


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["good.json", "missing.json"], "missing.json: no such file"),
        ({"bad.json": '{"a": '}, ["bad.json", "good.json"], "bad.json: invalid JSON: Expecting"),
        ({"list.json": "[1]"}, ["list.json", "good.json"], "list.json: JSON array, not an object"),
        ({"e.jsonl": "{oops}\n{}\n"}, ["e.jsonl"], "e.jsonl line 1: invalid JSON"),
        ({"empty/": ""}, ["good.json", "empty"], "empty: no *.json files in this directory"),
        ({}, ["good.json", "a.json", "b.json"], "a.json: no such file (and 1 more invalid input)"),
        ({"a.json": "[]", "b.json": "1"}, ["a.json", "b.json"], "a.json: JSON array, not an obj"),
        ({}, ["--from-history", "x"], "--from-history takes ids of kept requests"),
        ({}, ["--from-history", "1"], "no store at "),
        ({}, [], "nothing to replay"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_is_sent(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.json").write_bytes(ORDER)
    for name, content in files.items():
        if name.endswith("/"):
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text(content)
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = invoke("replay", *args, "--to", server.url)
    assert r.exit_code == 2
    assert r.stderr.startswith(f"vwh: error: {message}") and r.stderr.count("\n") == 1
    assert app.count == 0 and r.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "localhost:8787"], "bad URL 'localhost:8787'"),
        (["-H", "X-Trace abc"], "bad header 'X-Trace abc'"),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    r = invoke("replay", order_file(tmp_path), *args)
    assert r.exit_code == 2 and r.stderr.startswith(f"vwh: error: {message}")


def test_skip_invalid_sends_the_valid_ones_and_lists_the_rest(tmp_path: Path) -> None:
    good, bad = order_file(tmp_path), order_file(tmp_path, "bad.json", b"[]")
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = invoke("replay", good, bad, "--to", server.url, "--skip-invalid")
        none = invoke("replay", bad, "--to", server.url, "--skip-invalid")
    assert r.exit_code == 0 and app.count == 1
    assert f"skipped {bad}: JSON array, not an object" in r.stderr
    assert none.exit_code == 2 and "nothing to send: every input was invalid" in none.stderr


# Bad input found mid-way: what came before it went out, nothing after it


def test_a_bad_input_mid_way_stops_there_after_sending_what_came_before(tmp_path: Path) -> None:
    lines = tmp_path / "e.jsonl"
    lines.write_text('{"a": 1}\n{"b": 2}\n{oops}\n{"c": 3}\n')
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = invoke("replay", order_file(tmp_path), str(lines), "--to", server.url, "--json")
    assert r.exit_code == 2
    assert sorted(g.body for g in app.received) == sorted([ORDER, b'{"a": 1}', b'{"b": 2}'])
    assert [g["source"] for g in results(r.stdout)] == [
        str(tmp_path / "order.json"),
        f"{lines}:1",
        f"{lines}:2",
    ]
    last = r.stderr.splitlines()[-1]
    assert last == (
        f"vwh: error: {lines} line 3: invalid JSON: Expecting property name enclosed in double"
        " quotes at line 1 column 2 (stopped there: the 3 payloads before it went out,"
        " nothing after it)"
    )


def test_skip_invalid_mid_way_skips_the_bad_line_and_counts_it(tmp_path: Path) -> None:
    lines = tmp_path / "e.jsonl"
    lines.write_text('{"a": 1}\n[2]\n{"c": 3}\n')
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = invoke("replay", str(lines), "--to", server.url, "--skip-invalid", "--concurrency", "1")
    assert r.exit_code == 0 and [g.body for g in app.received] == [b'{"a": 1}', b'{"c": 3}']
    assert f"skipped {lines} line 2: JSON array, not an object" in r.stderr
    assert "2 payloads: 2 delivered; 1 skipped" in r.stderr


@pytest.mark.parametrize("skip", [[], ["--skip-invalid"]])
def test_dev_zero_fails_fast_with_one_line(skip: list[str]) -> None:
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = run_vwh("replay", "/dev/zero", "--to", server.url, *skip, timeout=30)
    assert r.returncode == 2 and app.count == 0 and r.stdout == ""
    assert r.stderr == "vwh: error: /dev/zero: larger than 16 MiB (--max-size)\n"


def test_a_body_larger_than_max_size_names_the_file_and_line(tmp_path: Path) -> None:
    lines = tmp_path / "big.jsonl"
    lines.write_bytes(b'{"a": 1}\n{"pad": "' + b"x" * (1024 * 1024) + b'"}\n')
    whole = order_file(tmp_path, "big.json", b'{"pad": "' + b"x" * (1024 * 1024) + b'"}')
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = invoke("replay", str(lines), "--to", server.url, "--max-size", "1")
        one = invoke("replay", whole, "--to", server.url, "--max-size", "1")
        fits = invoke("replay", whole, "--to", server.url, "--max-size", "2")
    assert r.exit_code == 2 and app.received[0].body == b'{"a": 1}'
    assert r.stderr.splitlines()[-1].startswith(
        f"vwh: error: {lines} line 2: larger than 1 MiB (--max-size) (stopped there"
    )
    assert one.exit_code == 2
    assert one.stderr == f"vwh: error: {whole}: larger than 1 MiB (--max-size)\n"
    assert fits.exit_code == 0 and app.count == 2


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _read_position(pid: int, path: Path) -> int:
    """How far the process has read into `path` (its file descriptor's offset)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd) == str(path):
                fdinfo = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                return int(fdinfo.split("pos:")[1].split()[0])
    raise AssertionError(f"{path} is not open in {pid}")


def test_a_large_file_is_streamed_first_request_at_once_memory_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    pad = b"x" * 180
    with big.open("wb") as f:  # 60 MB: 300,000 bodies of 200 bytes
        for start in range(0, 300_000, 10_000):
            f.write(
                b"".join(b'{"n":%d,"pad":"%s"}\n' % (n, pad) for n in range(start, start + 10_000))
            )
    size = big.stat().st_size
    app = Scripted(200)
    with ThreadedServer(app) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vwh", "replay", str(big), "--to", server.url, "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=vwh_env(),
        )
        try:
            _wait_until(lambda: app.count >= 1 or proc.poll() is not None, "the first request")
            assert proc.poll() is None, "replay ended before sending"
            first_at = _read_position(proc.pid, big)
            _wait_until(lambda: app.count >= 500, "500 requests")
            peak_mb = _status_kb(proc.pid, "VmHWM") / 1024
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
    code = proc.returncode
    assert first_at < size // 4, f"read {first_at:,} of {size:,} bytes before sending"
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
    assert app.received[0].body == b'{"n":0,"pad":"%s"}' % pad
    assert code == 130, err


def test_stdin_is_streamed_the_first_line_goes_out_before_the_second_is_written() -> None:
    app = Scripted(200)
    with ThreadedServer(app) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vwh", "replay", "-", "--to", server.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=vwh_env(),
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(b'{"line": 1}\n')
            proc.stdin.flush()
            _wait_until(lambda: app.count >= 1 or proc.poll() is not None, "the first request")
            assert app.count == 1  # line 2 is not written yet
            out, err = proc.communicate(b'{"line": 2}\n', timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert [g.body for g in app.received] == [b'{"line": 1}', b'{"line": 2}']
    assert [line.split(b"\t")[0] for line in out.splitlines()] == [b"<stdin>:1", b"<stdin>:2"]


# Kept-alive connections the server closed: retried on a fresh one, not counted


@pytest.mark.parametrize("concurrency", ["1", "8"])
def test_a_handler_that_closes_after_each_answer_gets_every_delivery_once(
    tmp_path: Path, concurrency: str
) -> None:
    lines = tmp_path / "p.jsonl"
    lines.write_text("".join(f'{{"n": {n}}}\n' for n in range(40)))
    with KeepAliveCloser("after-answer") as server:
        r = invoke(
            "replay", str(lines), "--to", server.url, "--concurrency", concurrency, "--json",
            *FAST,
        )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    got = results(r.stdout)
    assert {g["outcome"] for g in got} == {"delivered"} and len(got) == 40
    assert {len(g["attempts"]) for g in got} == {1}
    assert sorted(server.bodies) == sorted(f'{{"n": {n}}}'.encode() for n in range(40))
    assert server.closed_unread > 0  # vwh did try kept connections the server had closed


# Round trips with a real `vwh listen`


def test_sample_piped_into_replay_is_kept_as_verified(store_path: Path) -> None:
    with listener("--token", TOKEN) as proc:
        sample = subprocess.Popen(
            [sys.executable, "-m", "vwh", "sample", "order"],
            stdout=subprocess.PIPE,
            env=vwh_env(),
        )
        replay = subprocess.run(
            [sys.executable, "-m", "vwh", "replay", "-", "--to", proc.url + "/hooks/vendasta"],
            stdin=sample.stdout,
            capture_output=True,
            env=vwh_env(VWH_TOKEN=TOKEN),
            timeout=30,
        )
        assert sample.stdout is not None
        sample.stdout.close()
        sample.wait(10)
    assert replay.returncode == 0, replay.stderr
    assert b"<stdin>\tdelivered\t200 OK\t1 attempt" in replay.stdout
    with CaptureStore(store_path) as store:
        [kept] = list(store.iter_all())
    assert kept.verdict == "ok" and kept.status == 200 and kept.path == "/hooks/vendasta"
    assert kept.ids["orderId"].startswith(kept.ids["accountId"] + ":ORD-")


def test_from_history_resends_a_kept_request_unchanged(store_path: Path, tmp_path: Path) -> None:
    odd = b'{"orderId":"AG-1:ORD-2",  "extra": [1, 2]}'
    saved = tmp_path / "saved"
    with listener("--token", TOKEN, "--save", str(saved)) as proc:
        first = invoke(
            "replay", order_file(tmp_path, "odd.json", odd), "--to", proc.url + "/a",
            "--token", TOKEN, "-H", "X-Trace: t-1",
        )  # fmt: skip
        again = invoke("replay", "--from-history", "1", "--to", proc.url, "--token", TOKEN)
        kept = invoke(
            "replay", "--from-history", "1", "--to", proc.url, "--token", TOKEN, "--keep-headers"
        )
        no_token = invoke("replay", "--from-history", "1", "--to", proc.url)
        from_saved = invoke("replay", str(saved), "--to", proc.url, "--token", TOKEN, "--json")
    assert [first.exit_code, again.exit_code, kept.exit_code] == [0, 0, 0]
    assert no_token.exit_code == 3 and "the store masks" in no_token.stderr
    assert from_saved.exit_code == 0
    assert [Path(r["source"]).name for r in results(from_saved.stdout)] == [
        "vwh-000001.json",
        "vwh-000002.json",
        "vwh-000003.json",
    ]
    with CaptureStore(store_path) as store:
        records = list(store.iter_all())
    assert [r.body for r in records] == [odd] * 7
    assert [r.verdict for r in records] == ["ok", "ok", "ok", "missing", "ok", "ok", "ok"]
    assert [r.attempt for r in records[:3]] == [1, 2, 3]  # the listener sees resends
    assert [r.header("x-trace") for r in records[:3]] == ["t-1", None, "t-1"]
    assert [r.path for r in records[:3]] == ["/a", "/", "/"]  # sent to --to as given
    assert TOKEN not in first.stdout + first.stderr + again.stderr


# The Send a webhook step: the token in a query parameter or cookie, copied curl requests.
CURL = FIXTURES / "curl"
SIG = "s3cret-signature-1234"


@pytest.mark.parametrize(("option", "name"), [("--token-query", "sig"), ("--token-cookie", "s")])
def test_the_token_in_a_query_or_cookie_reaches_a_listener_that_looks_there(
    store_path: Path, tmp_path: Path, option: str, name: str
) -> None:
    sent = order_file(tmp_path)
    with listener("--token", TOKEN, option, name) as proc:
        right = invoke("replay", sent, "--to", proc.url + "/h?src=v", "--token", TOKEN, option,
                       name, "--query", "a=b c", "--cookie", "theme=dark")  # fmt: skip
        wrong = invoke("replay", sent, "--to", proc.url, "--token", "nope", option, name)
        # The kept request again: its query and cookies as they came, the token given now.
        again = invoke("replay", "--from-history", "1", "--to", proc.url, "--token", TOKEN,
                       option, name)  # fmt: skip
    assert [right.exit_code, wrong.exit_code, again.exit_code] == [0, 3, 0], right.stderr
    with CaptureStore(store_path) as store:
        first, bad, resent = list(store.iter_all())
    assert [first.verdict, bad.verdict, resent.verdict] == ["ok", "wrong", "ok"]
    for kept in (first, resent):
        assert kept.query.startswith("src=v&a=b%20c")
        assert "theme=dark" in (kept.header("cookie") or "")
    assert TOKEN not in right.stderr + right.stdout + again.stderr
    assert "with " + ("query parameter sig" if name == "sig" else "cookie s") in right.stderr


def test_two_token_places_are_a_usage_error_for_replay(tmp_path: Path) -> None:
    r = invoke("replay", order_file(tmp_path), "--token-header", "X", "--token-query", "q")
    assert r.exit_code == 2 and "--token-header and --token-query" in r.stderr


def test_a_copied_curl_request_goes_out_exactly_with_only_the_origin_replaced() -> None:
    from tests.helpers import RawCapture

    with RawCapture() as capture:
        r = invoke("replay", "--curl", str(CURL / "send-a-webhook.sh"), "--to", capture.url)
    assert r.exit_code == 0, r.stderr
    [raw] = capture.requests
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == (
        b"POST /vendasta/order-created?source=vendasta&signature=s3cret-signature-1234 HTTP/1.1"
    )
    headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
    assert (b"Host", f"127.0.0.1:{capture.port}".encode()) in headers
    assert [h for h in headers if h[0] not in (b"Host", b"Content-Length")] == [
        (b"Content-Type", b"application/json"),
        (b"X-Partner", b"9YW9"),
        (b"Cookie", b"session=abc123; theme=dark"),
    ]
    assert body == (
        b'{"accountId":"AG-7PQTGLLXQQ","entityId":"AG-7PQTGLLXQQ:ORD-S548DKHMKX",'
        b'"marketId":"default","orderId":"AG-7PQTGLLXQQ:ORD-S548DKHMKX","partnerId":"9YW9"}'
    )


def test_a_copied_request_at_a_listener_checking_the_query_token(store_path: Path) -> None:
    with listener("--token", SIG, "--token-query", "signature") as proc:
        r = invoke("replay", "--curl", str(CURL / "send-a-webhook.sh"), "--to", proc.url)
    assert r.exit_code == 0, r.stderr
    with CaptureStore(store_path) as store:
        [kept] = list(store.iter_all())
    assert kept.verdict == "ok" and kept.path == "/vendasta/order-created"
    assert kept.query == "source=vendasta&signature=••••34 (21 chars)"


def test_data_raw_and_cookie_from_stdin_with_set_fields(store_path: Path) -> None:
    text = (CURL / "data-raw-cookie.sh").read_text()
    with listener("--token", SIG, "--token-cookie", "vwh_token") as proc:
        r = invoke("replay", "--curl", "-", "--to", proc.url, "--set", "note=changed",
                   "--set", "seats:=3", input=text)  # fmt: skip
    assert r.exit_code == 0, r.stderr
    with CaptureStore(store_path) as store:
        [kept] = list(store.iter_all())
    assert kept.verdict == "ok" and kept.header("signature") == "••••34 (21 chars)"
    assert json.loads(kept.body or b"") == {
        "accountId": "AG-QW7B3PDKHX",
        "note": "changed",
        "userId": "U-a6d23f70-fd09-43d2-91d2-a12c032caaa1",
        "seats": 3,
    }


def test_set_fills_the_placeholders_of_a_copied_request() -> None:
    from tests.helpers import RawCapture

    with RawCapture() as capture:
        r = invoke("replay", "--curl", str(CURL / "placeholder.sh"), "--to", capture.url,
                   "--set", "accountId=AG-7PQTGLLXQQ",
                   "--set", "orderId=AG-7PQTGLLXQQ:ORD-1")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    body = json.loads(capture.requests[0].partition(b"\r\n\r\n")[2])
    assert body == {"accountId": "AG-7PQTGLLXQQ", "marketId": "default",
                    "orderId": "AG-7PQTGLLXQQ:ORD-1", "partnerId": "9YW9"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ((CURL / "unknown-option.sh").read_text(), "curl option --proxy is not understood"),
        ("curl http://x/hook", "is a GET, not a POST"),
        ("curl -X PUT http://x/hook -d '{}'", "is a PUT, not a POST"),
        ("curl http://x/hook -d 'a=1'", "the copied body is not a JSON object"),
        ("curl http://x/hook -d '[1]'", "the copied body is not a JSON object"),
        ("curl -d '{}'", "has no URL"),
    ],
)
def test_what_replay_cannot_send_from_a_curl_is_one_line_exit_2(text: str, message: str) -> None:
    r = invoke("replay", "--curl", "-", "--to", "http://127.0.0.1:1", input=text)
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith("vwh: error: ") and message in r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--curl", "-", "--to", "http://127.0.0.1:1/other"], "replaces only the scheme, host"),
        (["--curl", "-", "x.json"], "give no PAYLOAD"),
        (["x.json", "--set", "a=1"], "it needs --curl FILE"),
        (["--curl", "-", "--set", "a:={}"], "would nest"),
        (["--curl", "/nonexistent.sh"], "/nonexistent.sh: cannot read"),
    ],
)
def test_bad_curl_options_are_one_line_exit_2(args: list[str], message: str) -> None:
    r = invoke("replay", *args, input="curl http://x/ -d '{}'")
    assert r.exit_code == 2 and message in r.stderr, r.stderr


def test_sign_to_replay_round_trip_sends_the_same_bytes(tmp_path: Path) -> None:
    from tests.helpers import RawCapture, run_vwh

    sent = order_file(tmp_path)
    args = ("--token", TOKEN, "--token-query", "sig", "--query", "src=v", "--cookie", "c=1")
    with RawCapture() as capture:
        direct = invoke("replay", sent, "--to", capture.url + "/hook", *args)
        signed = run_vwh("sign", sent, "--curl", "--to", "https://hooks.example.test/hook", *args)
        assert signed.returncode == 0, signed.stderr
        piped = run_vwh("replay", "--curl", "-", "--to", capture.url, input=signed.stdout)
    assert direct.exit_code == 0 and piped.returncode == 0, piped.stderr
    assert len(capture.requests) == 2
    assert capture.requests[0] == capture.requests[1]
    assert b"?src=v&sig=" + TOKEN.encode() in capture.requests[0]


def test_a_hostile_file_name_is_shown_inert(tmp_path: Path) -> None:
    from tests.hostile import assert_inert, run_vwh_bytes

    name = order_file(tmp_path, "\x1b]0;pwned\x07\tfake\x9b.json")
    with ThreadedServer(Scripted(200, 200)) as server:
        plain = run_vwh_bytes("replay", name, "--to", server.url)
        as_json = run_vwh_bytes("replay", name, "--to", server.url, "--json")
    assert plain.returncode == 0 == as_json.returncode, plain.stderr
    # Tab-separated by design: the separators are vwh's, every field inert.
    fields = [assert_inert(field) for field in plain.stdout.rstrip(b"\n").split(b"\t")]
    assert fields[0].endswith("/\\x1b]0;pwned\\x07\\tfake\\x9b.json")
    assert fields[1:3] == ["delivered", "200 OK"]
    assert json.loads(assert_inert(as_json.stdout))["source"] == name
    assert "\x1b" not in plain.stderr.decode() + as_json.stderr.decode()
