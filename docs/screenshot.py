"""Take docs/inspector.png: a real `vwh listen` in front of a small handler, a few
deliveries sent by `vwh replay`, and the inspector open in headless Chromium.

    python docs/screenshot.py   (needs Debian's chromium and playwright)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-verifier-token"


async def handler(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A developer's handler: 500 for one order (so Vendasta resends), else processed."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status, answer = 200, {"status": "processed"}
    if b"ORD-B0RKED" in body:
        status, answer = 500, {"error": "KeyError: 'lineItems'"}
    data = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vwh(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vwh", *args], text=True, **kw)  # type: ignore[call-overload]


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "VWH_STORE": str(tmp / "store.sqlite3"), "NO_COLOR": "1"}
    hport, port = free_port(), free_port()
    server = uvicorn.Server(uvicorn.Config(handler, port=hport, log_level="critical"))
    threading.Thread(target=server.run, daemon=True).start()
    listen = subprocess.Popen(
        [sys.executable, "-m", "vwh", "listen", "--port", str(port), "--token", TOKEN,
         "--forward-to", f"http://127.0.0.1:{hport}/", "--ui-port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    assert listen.stderr is not None
    url = ""
    while not url:
        match = re.search(r"inspector: (\S+)", listen.stderr.readline())
        url = match.group(1) if match else ""
    time.sleep(0.5)
    target = f"http://127.0.0.1:{port}/webhooks/vendasta"
    bodies = tmp / "bodies"
    bodies.mkdir()
    for n, kind in enumerate(["order", "account", "user", "order", "order", "account"]):
        sample = vwh("sample", kind, "--seed", str(n + 3), capture_output=True, env=env).stdout
        (bodies / f"{n}-{kind}.json").write_text(sample)
    broken = json.loads((bodies / "0-order.json").read_text())
    broken["orderId"] = broken["entityId"] = broken["accountId"] + ":ORD-B0RKED"
    (bodies / "9-broken.json").write_text(json.dumps(broken, indent=2))
    vwh("replay", str(bodies), "--to", target, "--token", TOKEN, "--backoff", "0.3",
        "--concurrency", "1", capture_output=True, env=env)  # fmt: skip
    wrong = bodies / "0-order.json"
    vwh("replay", str(wrong), "--to", target, "--token", "guessed", capture_output=True, env=env)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1440, "height": 860}, device_scale_factor=1)
        page.goto(url)
        page.wait_for_selector("#rows tr")
        page.click("#rows tr[data-id='8']")
        page.wait_for_selector("#detail #timeline")
        page.screenshot(path=str(ROOT / "docs" / "inspector.png"))
        browser.close()
    listen.terminate()
    listen.wait(10)
    server.should_exit = True
    print("wrote docs/inspector.png")


if __name__ == "__main__":
    main()
