"""`vwh listen` as a user runs it: a real process on a free loopback port, real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    FIXTURES,
    TerminalListener,
    free_port,
    listener,
    raw_exchange,
    run_vwh,
    vwh_env,
)
from vwh.store import CapturedRequest, CaptureStore

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()
TOKEN = "s3cret-verifier-token"


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url + "/hooks/vendasta", content=body, headers=headers or {}, timeout=10)


def test_verifies_keeps_and_prints_one_line_per_request(store_path: Path) -> None:
    with listener("--token", TOKEN) as proc:
        good = post(proc.url, ORDER, {"Verifier-Token": TOKEN})
        wrong = post(proc.url, ORDER, {"Verifier-Token": "guess"})
        missing = post(proc.url, ORDER)
        bad_json = post(proc.url, b'{"orderId": ', {"Verifier-Token": TOKEN})
        not_object = post(proc.url, b'["AG-1"]', {"Verifier-Token": TOKEN})
        get = httpx.get(proc.url + "/hooks/vendasta")
        code = proc.stop()
    assert code == 0
    assert [r.status_code for r in (good, wrong, missing, bad_json, not_object, get)] == [
        200, 401, 401, 400, 400, 405,
    ]  # fmt: skip
    assert good.json()["received"] is True
    lines = proc.stdout.splitlines()
    assert len(lines) == 6
    assert "token=ok status=200" in lines[0] and "order=AG-7PQTGLLXQQ:ORD-S548DKHMKX" in lines[0]
    assert "token=wrong status=401" in lines[1]
    assert "token=missing status=401" in lines[2]
    assert "status=400" in lines[3] and "invalid JSON" in lines[3]
    assert "JSON array, not an object" in lines[4]
    assert "GET /hooks/vendasta" in lines[5] and "status=405" in lines[5]
    assert "stopped: 6 received, 1 accepted, 5 rejected, 0 resends" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    with CaptureStore(store_path) as store:
        kept = list(store.iter_all())
    assert [r.status for r in kept] == [200, 401, 401, 400, 400, 405]
    assert kept[0].body == ORDER and kept[3].body == b'{"orderId": '
    assert TOKEN not in json.dumps([r.to_json() for r in kept])


def test_banner_says_where_it_listens_and_stores(store_path: Path) -> None:
    with listener("--token", TOKEN) as proc:
        proc.stop()
    assert f"vwh listening on http://127.0.0.1:{proc.port}/" in proc.stderr
    assert "checking Verifier-Token" in proc.stderr
    assert str(store_path) in proc.stderr
    assert f"ngrok http {proc.port}" in proc.stderr


def test_token_from_environment_and_renamed_header() -> None:
    env = vwh_env(VWH_TOKEN=TOKEN)
    with listener("--token-header", "X-Vendasta-Signature", "--reject-status", "403", env=env) as p:
        ok = post(p.url, ORDER, {"x-vendasta-signature": TOKEN})
        old_header = post(p.url, ORDER, {"Verifier-Token": TOKEN})
        p.stop()
    assert (ok.status_code, old_header.status_code) == (200, 403)
    assert "checking X-Vendasta-Signature" in p.stderr


def test_without_token_everything_is_accepted_and_shown_masked() -> None:
    with listener("--json") as proc:
        r = post(proc.url, ORDER, {"Verifier-Token": TOKEN})
        proc.stop()
    assert r.status_code == 200
    ready, event = [json.loads(line) for line in proc.stdout.splitlines()]
    assert ready == {
        "event": "ready",
        "url": proc.url + "/",
        "inspector": ready["inspector"],
        "store": ready["store"],
    }
    assert event["verdict"] == "not checked" and event["status"] == 200
    assert event["token"] and TOKEN not in proc.stdout
    assert event["ids"]["orderId"] == "AG-7PQTGLLXQQ:ORD-S548DKHMKX"
    assert event["body"] == ORDER.decode()


def test_oversize_body_is_413_and_kept_without_body(store_path: Path) -> None:
    with listener("--max-body", "64") as proc:
        r = post(proc.url, b'{"pad": "' + b"x" * 100 + b'"}')
        proc.stop()
    assert r.status_code == 413
    with CaptureStore(store_path) as store:
        [kept] = store.recent(1)
    assert kept.body is None and kept.body_size == 111 and kept.status == 413


def test_status_delay_and_respond_file(tmp_path: Path) -> None:
    respond = tmp_path / "respond.json"
    respond.write_text('{"nextStep": "ok"}')
    with listener("--status", "202", "--delay", "0.3", "--respond", str(respond)) as proc:
        started = time.perf_counter()
        r = post(proc.url, ORDER)
        elapsed = time.perf_counter() - started
        proc.stop()
    assert r.status_code == 202 and r.json() == {"nextStep": "ok"}
    assert elapsed >= 0.3


def test_fail_first_and_resend_detection() -> None:
    with listener("--fail-first", "2") as proc:
        codes = [post(proc.url, ORDER).status_code for _ in range(3)]
        proc.stop()
    assert codes == [503, 503, 200]
    lines = proc.stdout.splitlines()
    assert "resend" not in lines[0]
    assert "resend=2" in lines[1] and "resend=3" in lines[2]
    assert "3 received, 1 accepted, 0 rejected, 2 resends" in proc.stderr


def test_history_and_show_after_a_restart(store_path: Path) -> None:
    with listener("--token", TOKEN) as proc:
        post(proc.url, ORDER, {"Verifier-Token": TOKEN})
        proc.stop()
    with listener("--token", TOKEN) as proc:  # a restart: the same body is a resend
        post(proc.url, ORDER, {"Verifier-Token": TOKEN})
        proc.stop()
    assert "resend=2" in proc.stdout
    history = run_vwh("history")
    assert history.returncode == 0
    lines = history.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["#2", "#1"]
    as_json = run_vwh("history", "--json", "--limit", "1")
    assert [json.loads(line)["id"] for line in as_json.stdout.splitlines()] == [2]
    show = run_vwh("show", "1")
    assert show.returncode == 0
    assert '"orderId": "AG-7PQTGLLXQQ:ORD-S548DKHMKX"' in show.stdout
    assert "token:   ok" in show.stdout and TOKEN not in show.stdout
    raw = json.loads(run_vwh("show", "1", "--json").stdout)
    assert raw["body"] == ORDER.decode() and raw["status"] == 200


def test_show_unknown_id_and_missing_store(tmp_path: Path) -> None:
    missing = run_vwh("history", "--store", str(tmp_path / "none.sqlite3"))
    assert missing.returncode == 9  # not found
    assert "nothing was kept yet" in missing.stderr
    assert (
        missing.stderr.startswith("vwh: error: no store at") and "Traceback" not in missing.stderr
    )
    with listener() as proc:
        proc.stop()
    unknown = run_vwh("show", "99")
    assert unknown.returncode == 9
    assert unknown.stderr.strip().endswith("no kept request with id 99 in " + str(vwh_store()))


def vwh_store() -> Path:
    return Path(vwh_env()["VWH_STORE"])


def test_save_writes_replay_ready_files(tmp_path: Path) -> None:
    save = tmp_path / "saved"
    with listener("--token", TOKEN, "--save", str(save)) as proc:
        post(proc.url, ORDER, {"Verifier-Token": TOKEN})
        post(proc.url, ORDER, {"Verifier-Token": "wrong"})
        proc.stop()
    assert [p.name for p in save.iterdir()] == ["vwh-000001.json"]
    assert (save / "vwh-000001.json").read_bytes() == ORDER


def test_port_in_use_is_one_line() -> None:
    with listener() as first:
        second = run_vwh("listen", "--port", str(first.port))
        first.stop()
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"vwh: error: port {first.port} on 127.0.0.1 is already in use (stop the other program"
        " or pick another --port)"
    ]


def test_unusable_store_and_save_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = run_vwh("listen", "--port", str(free_port()), "--store", str(blocker / "s.sqlite3"))
    assert store.returncode == 1
    assert store.stderr.startswith("vwh: error: cannot open the store at")
    assert len(store.stderr.strip().splitlines()) == 1
    save = run_vwh("listen", "--port", str(free_port()), "--save", str(blocker / "dir"))
    assert save.returncode == 2
    assert save.stderr.startswith("vwh: error: cannot write to --save directory")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--status", "700"], "--status"),
        (["--reject-status", "500"], "--reject-status"),
        (["--delay", "-1"], "--delay"),
        (["--fail-first", "-2"], "--fail-first"),
        (["--port", "70000"], "--port"),
    ],
)
def test_bad_option_values_are_usage_errors(args: list[str], needle: str) -> None:
    result = run_vwh("listen", *args)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_bad_respond_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "respond.json"
    bad.write_text("[1, 2]")
    result = run_vwh("listen", "--respond", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"vwh: error: {bad}: JSON array, not an object"


def test_other_address_warns() -> None:
    with listener("--host", "127.0.0.2") as proc:
        proc.stop()
    assert "warning: listening on 127.0.0.2, not loopback" in proc.stderr


def test_sigterm_and_ctrl_c_stop_cleanly_keeping_what_was_captured(store_path: Path) -> None:
    with listener() as proc:
        post(proc.url, ORDER)
        assert proc.stop(signal.SIGTERM) == 0
    assert "stopped: 1 received" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sigkill_mid_burst_loses_no_answered_request(store_path: Path) -> None:
    """Every request that got a 2xx is on disk, even when vwh is killed mid-burst."""
    total, kill_after = 400, 120
    with listener() as proc:
        answered: list[bytes] = []

        async def one(client: httpx.AsyncClient, i: int) -> None:
            body = json.dumps({"orderId": f"AG-1:ORD-{i:06d}"}).encode()
            try:
                r = await client.post(proc.url + "/burst", content=body)
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                answered.append(body)
                if len(answered) == kill_after:
                    assert proc.proc is not None
                    proc.proc.kill()

        async def burst() -> None:
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(timeout=10, limits=limits) as client:
                await asyncio.gather(*(one(client, i) for i in range(total)))

        asyncio.run(burst())
        assert proc.stop() == -signal.SIGKILL
    assert kill_after <= len(answered) < total  # killed mid-burst, not after
    with CaptureStore(store_path) as store:
        kept = {r.body for r in store.iter_all()}
    missing = [b for b in answered if b not in kept]
    assert missing == []


def test_live_table_on_a_terminal(store_path: Path) -> None:
    """On a terminal, requests appear as rows of a live table, bounded to the screen."""
    with TerminalListener("--token", TOKEN, rows=12, columns=100, env=vwh_env()) as term:
        for i in range(12):  # more requests than the screen has rows
            body = json.dumps({"orderId": f"AG-7PQTGLLXQQ:ORD-{i:010d}"}).encode()
            url = f"http://127.0.0.1:{term.port}"
            assert post(url, body, {"Verifier-Token": TOKEN}).is_success
        term.read_until(b"ORD-0000000011", 10)
    text, err = term.text, term.stderr
    assert term.proc.returncode == 0
    assert "request" in text and "resend" in text  # the table's header
    assert "AG-7PQTGLLXQQ:ORD-0000000011" in text
    assert "12 received, 12 accepted, 0 rejected, 0 resends" in text
    assert "stopped: 12 received" in err
    last_frame = text.rsplit("request", 1)[1]  # from the header of the last redraw
    rows = re.findall(r"ORD-\d{10}", last_frame)
    assert rows and len(rows) <= 12 - 4  # bounded to the screen: the oldest scrolled away
    assert rows[-1] == "ORD-0000000011" and "ORD-0000000000" not in rows


def test_deep_and_huge_bodies_are_kept_shown_and_showable(store_path: Path) -> None:
    deep, huge = b"[" * 100_000, b'{"orderId": ' + b"9" * 5000 + b"}"
    with listener() as proc:
        answers = [post(proc.url, deep), post(proc.url, huge), post(proc.url, ORDER)]
        proc.stop()
    assert [r.status_code for r in answers] == [400, 400, 200]
    lines = proc.stdout.splitlines()
    assert "status=400" in lines[0] and "JSON nested deeper than 128 levels" in lines[0]
    assert "status=400" in lines[1] and "number with more than 640 digits" in lines[1]
    assert "stopped: 3 received, 1 accepted, 2 rejected" in proc.stderr
    for request_id in ("1", "2"):
        shown = run_vwh("show", request_id)
        assert shown.returncode == 0, shown.stderr
    history = run_vwh("history")
    assert history.returncode == 0 and len(history.stdout.splitlines()) >= 3


def _fill(directory: Path) -> None:
    """Write until the filesystem is full (bounded: the filesystem is 64 KiB)."""
    import errno
    import os

    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(1000):
            try:
                os.write(fd, b"x" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return
    finally:
        os.close(fd)
    raise AssertionError("the small filesystem never filled up")


def test_save_on_a_full_disk_is_5xx_with_row_line_and_wire_in_step(tmp_path: Path) -> None:
    save = tmp_path / "small"
    save.mkdir()
    # A real full disk. CI runs as root; where mounting is not allowed this fails, loudly.
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(save)], check=True, timeout=30
    )
    try:
        with listener("--save", str(save)) as proc:
            saved = post(proc.url, ORDER)
            _fill(save)
            full = post(proc.url, ORDER.replace(b"AG-", b"AG-X"))
            (save / "filler").unlink()
            again = post(proc.url, ORDER.replace(b"AG-", b"AG-X"))
            proc.stop()
        files = sorted(p.name for p in save.iterdir())
        third = (save / "vwh-000003.json").read_bytes()
    finally:
        subprocess.run(["umount", str(save)], check=True, timeout=30)
    assert [r.status_code for r in (saved, full, again)] == [200, 503, 200]
    error = f"cannot save the body in {save}: No space left on device"
    assert full.json()["error"] == error
    assert files == ["vwh-000001.json", "vwh-000003.json"]  # nothing partial left behind
    assert third == ORDER.replace(b"AG-", b"AG-X")
    with CaptureStore(tmp_path / "store.sqlite3") as store:
        kept = list(store.iter_all())
    assert [r.status for r in kept] == [200, 503, 200]
    assert kept[1].error == error and kept[1].body == ORDER.replace(b"AG-", b"AG-X")
    lines = proc.stdout.splitlines()
    assert "status=503" in lines[1] and "No space left on device" in lines[1]
    assert [("status=200" in line) for line in lines] == [True, False, True]


def test_an_empty_token_is_a_usage_error() -> None:
    result = run_vwh("listen", "--port", str(free_port()), "--token", "")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vwh: error: --token is empty: omit --token to check no token at all"
    ]


def test_a_token_with_a_byte_that_is_not_utf8_is_its_argv_bytes(store_path: Path) -> None:
    # "\udcff" is how Python spells the argv byte 0xff; Popen passes the byte itself.
    with listener("--token", "\udcff") as proc:
        right = raw_exchange(proc.port, _raw_post(b"\xff"))
        wrong = raw_exchange(proc.port, _raw_post(b"\xfe"))
        proc.stop()
    assert right.startswith(b"HTTP/1.1 200 ") and wrong.startswith(b"HTTP/1.1 401 ")
    with CaptureStore(store_path) as store:
        assert [r.verdict for r in store.iter_all()] == ["ok", "wrong"]
    assert "Traceback" not in proc.stderr


def test_a_non_ascii_token_round_trips_through_replay() -> None:
    with listener("--token", "Tö") as proc:
        sent = run_vwh("replay", "-", "--to", proc.url, "--token", "Tö", "--no-retry", input=ORDER)
        proc.stop()
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "token=ok status=200" in proc.stdout


def _raw_post(token: bytes, body: bytes = ORDER) -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nVerifier-Token: %s\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (token, len(body), body)
    )


@pytest.mark.parametrize("presses", [1, 2, 6])
def test_ctrl_c_with_delayed_answers_pending_answers_what_it_keeps(
    store_path: Path, presses: int
) -> None:
    """Stopped mid-delay, the sender gets the 503 the row says, not uvicorn's bare 500."""
    with listener("--delay", "30") as proc, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(raw_exchange, proc.port, _raw_post(b"t"))
        assert proc.proc is not None
        # Give the request time to reach the app; the answers below prove it did.
        time.sleep(0.5)
        for _ in range(presses):
            proc.proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
        assert proc.stop() == 0
        got = answer.result(timeout=20)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), got
    assert json.loads(body)["error"] == "listener stopped before answering"
    with CaptureStore(store_path) as store:
        [kept] = store.recent(1)
    assert kept.status == 503 and kept.error == "listener stopped before answering"
    assert kept.body == ORDER and json.loads(body)["id"] == kept.id
    assert "status=503" in proc.stdout and "Traceback" not in proc.stderr


# The Send a webhook step: the secret in a header, a query parameter or a cookie.
PLACES = {
    "header": ("--token-header", "X-Signature"),
    "query": ("--token-query", "sig"),
    "cookie": ("--token-cookie", "vwh_sig"),
}


def _send_with(url: str, kind: str, token: str | None) -> httpx.Response:
    """A delivery with `token` where `kind` says, beside an ordinary parameter and cookie."""
    name = PLACES[kind][1]
    params = {"source": "vendasta"}
    headers = {"Cookie": "theme=dark"}
    if token is not None and kind == "header":
        headers[name] = token
    elif token is not None and kind == "query":
        params[name] = token
    elif token is not None:
        headers["Cookie"] += f"; {name}={token}"
    return httpx.post(
        url + "/hooks/vendasta", params=params, content=ORDER, headers=headers, timeout=10
    )


@pytest.mark.parametrize("kind", PLACES)
@pytest.mark.parametrize("json_out", [False, True], ids=["plain", "json"])
def test_the_token_in_a_header_query_or_cookie_is_checked_and_never_kept(
    store_path: Path, kind: str, json_out: bool
) -> None:
    option, name = PLACES[kind]
    args = ["--token", TOKEN, option, name, "--reject-status", "403"]
    with listener(*args, *(["--json"] if json_out else [])) as proc:
        answers = [_send_with(proc.url, kind, t) for t in (TOKEN, TOKEN + "x", None)]
        proc.stop()
    assert [a.status_code for a in answers] == [200, 403, 403]
    assert answers[2].json()["error"] == "missing " + (
        name if kind == "header" else f"{'query parameter' if kind == 'query' else 'cookie'} {name}"
    )
    with CaptureStore(store_path) as store:
        kept = list(store.iter_all())
    assert [r.verdict for r in kept] == ["ok", "wrong", "missing"]
    on_disk = b"".join(p.read_bytes() for p in store_path.parent.glob(store_path.name + "*"))
    shown = run_vwh("show", "1").stdout + run_vwh("show", "1", "--json").stdout
    history = run_vwh("history").stdout
    assert b"source=vendasta" in on_disk and b"theme=dark" in on_disk  # the rest stays readable
    for output in (on_disk.decode("latin-1"), proc.stdout, proc.stderr, shown, history):
        assert TOKEN not in output
    first = kept[0]
    if kind == "query":
        assert first.query == "source=vendasta&sig=••••en (21 chars)"
    if kind == "cookie":
        assert first.header("cookie") == "theme=dark; vwh_sig=••••en (21 chars)"
    assert "••••en (21 chars)" in shown
    lines = proc.stdout.splitlines()
    if json_out:
        assert json.loads(lines.pop(0))["event"] == "ready"
    assert len(lines) == 3
    if json_out:
        events = [json.loads(line) for line in lines]
        assert [e["verdict"] for e in events] == ["ok", "wrong", "missing"]
        assert events[0]["query"].startswith("source=vendasta")
        assert events[0]["cookies"] == ["theme", "vwh_sig"] if kind == "cookie" else ["theme"]
    else:
        assert "POST /hooks/vendasta?source=vendasta" in lines[0] and "token=ok" in lines[0]
        assert "cookies=theme" in lines[0] and "token=missing" in lines[2]
    assert re.search(rf"checking {'' if kind == 'header' else '.*'}{name} against", proc.stderr)


def test_the_live_table_shows_query_and_cookie_names_with_the_secret_masked(
    store_path: Path,
) -> None:
    from rich.console import Console

    from vwh.cli.listen_view import request_table
    from vwh.listener import ListenStats

    with listener("--token", TOKEN, "--token-query", "sig") as proc:
        _send_with(proc.url, "query", TOKEN)
        proc.stop()
    with CaptureStore(store_path) as store:
        kept = list(store.iter_all())
    console = Console(width=160, record=True, color_system=None)
    console.print(request_table(kept, ListenStats()))
    table = console.export_text()
    assert "?source=vendasta&sig=••••" in table and "cookies theme" in table
    assert TOKEN not in table


def test_two_token_places_are_a_usage_error() -> None:
    r = run_vwh("listen", "--token-query", "sig", "--token-cookie", "s", "--port", "0")
    assert r.returncode == 2
    assert r.stderr == (
        "vwh: error: --token-query and --token-cookie: the token has one place, choose one\n"
    )


def test_respond_refuses_a_nested_file_in_one_line(tmp_path: Path) -> None:
    nested = tmp_path / "respond.json"
    nested.write_text('{"ok": true, "next": {"step": 2}, "items": [1]}')
    r = run_vwh("listen", "--respond", str(nested), "--port", "0")
    assert r.returncode == 2
    assert r.stderr == (
        f"vwh: error: {nested}: not one flat object: 'next', 'items' nest (an object or array);"
        " the Send a webhook step reads only flat answers\n"
    )


def test_expect_response_needs_forward_to() -> None:
    r = run_vwh("listen", "--expect-response", "a:string", "--port", "0")
    assert r.returncode == 2 and "needs --forward-to URL" in r.stderr


def test_a_script_reads_the_ready_event_then_count_ends_it(store_path: Path) -> None:
    """--port 0 --json --count: the first line says where to send; N deliveries end it with 0."""
    import selectors
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "vwh", "listen", "--port", "0", "--json", "--count", "2",
         "--token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=vwh_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=30), "no ready line"
            ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and ready["store"] == str(store_path)
        url = ready["url"].rstrip("/")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        statuses = [
            post(url, ORDER, {"Verifier-Token": "guess"}).status_code,  # rejected: not counted
            post(url, ORDER, {"Verifier-Token": TOKEN}).status_code,
            post(url, ORDER, {"Verifier-Token": TOKEN}).status_code,  # the 2nd: answered, then exit
        ]
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert statuses == [401, 200, 200]
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["status"] for e in events] == [401, 200, 200]
    assert "stopped: 3 received, 2 accepted, 1 rejected, 1 resends" in err.decode()


def test_exit_timeout_is_exit_5_and_rejections_do_not_count() -> None:
    started = time.monotonic()
    with listener("--count", "1", "--exit-timeout", "2", "--token", TOKEN) as proc:
        assert [post(proc.url, ORDER, {"Verifier-Token": "no"}).status_code for _ in range(3)] == [
            401
        ] * 3
        assert proc.proc is not None
        code = proc.proc.wait(30)
        proc.stop()
    assert time.monotonic() - started >= 2
    assert code == 5
    assert proc.stderr.splitlines()[-1] == (
        "vwh: error: 0 of 1 deliveries came within --exit-timeout 2s"
    )
    assert "stopped: 3 received, 0 accepted, 3 rejected" in proc.stderr


def test_count_reached_before_the_timeout_is_exit_0() -> None:
    with listener("--count", "1", "--exit-timeout", "60") as proc:
        assert post(proc.url, ORDER).status_code == 200
        assert proc.proc is not None
        assert proc.proc.wait(30) == 0


def test_exit_timeout_needs_count() -> None:
    result = run_vwh("listen", "--exit-timeout", "5")
    assert (result.returncode, result.stderr) == (
        2,
        "vwh: error: --exit-timeout needs --count N (the deliveries to wait for)\n",
    )


def test_keep_bounds_the_store_to_the_newest(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        for _ in range(5):
            store.add(CapturedRequest(received_at=1.0, method="POST", path="/old"))
    with listener("--keep", "3") as proc:
        for i in range(8):
            assert post(proc.url, json.dumps({"orderId": f"AG-1:ORD-{i}"}).encode()).is_success
    with CaptureStore(store_path) as store:
        kept = [json.loads(r.body or b"")["orderId"] for r in store.iter_all()]
    assert kept == ["AG-1:ORD-5", "AG-1:ORD-6", "AG-1:ORD-7"]


def test_ctrl_c_held_down_through_shutdown_still_exits_0_and_keeps_all(store_path: Path) -> None:
    """Presses that land after the server stopped (the last commits) must not raise."""
    with listener("--delay", "30") as proc, ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(raw_exchange, proc.port, _raw_post(b"t%d" % i)) for i in range(4)]
        assert proc.proc is not None
        time.sleep(0.5)
        for _ in range(300):  # a key held down: a press every 5 ms, until vwh is gone
            if proc.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.proc.send_signal(signal.SIGINT)
            time.sleep(0.005)
        assert proc.stop() == 0, proc.stderr
        got = [a.result(timeout=20) for a in answers]
    assert all(g.startswith(b"HTTP/1.1 503 ") for g in got), got
    with CaptureStore(store_path) as store:
        assert store.count() == 4
    assert "Traceback" not in proc.stderr and "interrupted" not in proc.stderr
