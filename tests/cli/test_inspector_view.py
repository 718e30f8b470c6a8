"""`vwh listen` with its inspector, as a user runs it: a real subprocess, real HTTP."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.helpers import FIXTURES, ListenerProcess, free_port, listener, run_vwh
from vwh.store import CaptureStore

TOKEN = "s3cret-verifier-token"
ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()


def inspector_url(proc: ListenerProcess) -> str:
    match = re.search(r"inspector: (http://\S+)", proc.stderr_so_far())
    assert match, proc.stderr_so_far()
    return match.group(1)


def split(url: str) -> tuple[str, dict[str, str]]:
    """The inspector's base address and the header a script sends its secret in."""
    base, _, secret = url.partition("/?token=")
    return base, {"Authorization": f"Bearer {secret}"}


def deliver(proc: ListenerProcess, body: bytes = ORDER, path: str = "/hooks") -> httpx.Response:
    return httpx.post(proc.url + path, content=body, headers={"Verifier-Token": TOKEN}, timeout=10)


def test_listen_serves_the_inspector_on_its_own_port_and_prints_its_address() -> None:
    ui_port = free_port()
    with listener("--token", TOKEN, "--ui-port", str(ui_port)) as proc:
        url = inspector_url(proc)
        deliver(proc)
        base, auth = split(url)
        listed = httpx.get(base + "/api/requests", headers=auth, timeout=10).json()
        opened = httpx.get(url, timeout=10)
        refused = httpx.get(base + "/api/requests", timeout=10)
        proc.stop()
    assert url.startswith(f"http://127.0.0.1:{ui_port}/?token=")
    assert [r["path"] for r in listed["requests"]] == ["/hooks"]
    assert opened.status_code == 200 and "vwh inspector" in opened.text
    assert refused.status_code == 403
    assert TOKEN not in proc.stderr


def test_a_taken_ui_port_moves_to_a_free_one_and_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with listener("--ui-port", str(port)) as proc:
            url = inspector_url(proc)
            stderr = proc.stderr_so_far()
    assert f"port {port} is taken; using" in stderr
    assert f":{port}/" not in url


def test_json_starts_with_a_ready_event_and_no_ui_serves_none() -> None:
    with listener("--json", "--ui-port", "0") as proc:
        first = proc.stderr_so_far()
        proc.stop()
    ready = json.loads(proc.stdout.splitlines()[0])
    assert ready["event"] == "ready" and ready["url"] == proc.url + "/"
    assert ready["inspector"] == re.search(r"inspector: (\S+)", first).group(1)  # type: ignore[union-attr]
    with listener("--json", "--no-ui") as proc:
        proc.stop()
    assert json.loads(proc.stdout.splitlines()[0])["inspector"] is None
    assert "inspector" not in proc.stderr


@pytest.mark.parametrize("path", ["/", "/api/requests", "/api/events", "/static/app.js"])
def test_the_receiving_port_never_serves_the_inspector(path: str, store_path: Path) -> None:
    with listener("--token", TOKEN, "--ui-port", "0") as proc:
        got = httpx.get(proc.url + path, timeout=10)
        posted = deliver(proc, path=path)
        proc.stop()
    assert got.status_code == 405  # the receiver's own answer to a GET: kept, refused
    assert "content-security-policy" not in got.headers and "<html" not in got.text
    assert posted.status_code == 200 and posted.json()["received"] is True
    with CaptureStore(store_path) as store:
        assert [(r.method, r.path) for r in store.iter_all()] == [("GET", path), ("POST", path)]


def test_the_live_stream_sends_each_kept_request() -> None:
    with listener("--token", TOKEN, "--ui-port", "0") as proc:
        base, auth = split(inspector_url(proc))
        events: list[dict[str, object]] = []
        with httpx.stream("GET", base + "/api/events", headers=auth, timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 1000"
            deliver(proc)
            deliver(proc)  # a resend: the same body again
            deadline = time.monotonic() + 10
            for line in lines:
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                if len(events) == 2 or time.monotonic() > deadline:
                    break
        code = proc.stop()
    assert code == 0
    assert [(e["id"], e["attempt"]) for e in events] == [(1, 1), (2, 2)]


def test_a_stuck_stream_client_slows_no_request_and_loses_none(
    tmp_path: Path, store_path: Path
) -> None:
    count = 1000
    bodies = tmp_path / "bodies.jsonl"
    bodies.write_text(
        "".join(json.dumps({"orderId": f"AG-1:ORD-{i:06d}"}) + "\n" for i in range(count))
    )
    with listener("--token", TOKEN, "--ui-port", "0") as proc:
        base, auth = split(inspector_url(proc))
        port = int(base.rsplit(":", 1)[1])
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(
            f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {auth['Authorization']}\r\n\r\n".encode()
        )  # and never read
        started = time.monotonic()
        sent = run_vwh(
            "replay", str(bodies), "--to", proc.url + "/hooks", "--token", TOKEN,
            "--concurrency", "16", "--json",
        )  # fmt: skip
        took = time.monotonic() - started
        still = httpx.get(base + "/api/requests?limit=1", headers=auth, timeout=10).json()
        code = proc.stop()
        stuck.close()
    assert sent.returncode == 0, sent.stderr
    assert code == 0
    assert took < 45  # generous: a loaded 2-core machine does this in a few seconds
    assert still["requests"][0]["id"] == count  # the inspector still answers, up to date
    with CaptureStore(store_path) as store:
        assert store.count() == count


def test_ctrl_c_stops_listen_at_once_with_a_page_connected() -> None:
    with listener("--ui-port", "0") as proc:
        base, auth = split(inspector_url(proc))
        with httpx.stream("GET", base + "/api/events", headers=auth, timeout=10) as stream:
            next(stream.iter_lines())
            started = time.monotonic()
            code = proc.stop()
    assert code == 0 and time.monotonic() - started < 10
    assert "stopped:" in proc.stderr and "Traceback" not in proc.stderr


def test_a_non_loopback_inspector_warns() -> None:
    from vwh.cli.inspector_view import announce

    notes: list[str] = []
    out = SimpleNamespace(note=notes.append, warn=lambda text: notes.append("warning: " + text))
    fake = SimpleNamespace(moved_from=None, host="0.0.0.0", port=8788, url="http://x/")
    announce(out, fake)  # type: ignore[arg-type]
    assert notes[0].startswith("warning: inspector on 0.0.0.0, not loopback")


def test_the_default_ui_port_is_8788_or_a_free_one() -> None:
    proc = ListenerProcess("--port", str(free_port())).start()
    try:
        assert re.search(r"inspector: http://127\.0\.0\.1:\d+/\?token=", proc.stderr_so_far())
        assert ":8788/" in proc.stderr_so_far() or "8788 is taken" in proc.stderr_so_far()
    finally:
        proc.stop()
