"""The inspector page in a real headless Chromium, against a real `vwh listen`.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright for Python;
`playwright install` is never needed. Without Chromium these tests skip and say
how to get it, unless VWH_REQUIRE_BROWSER=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import FIXTURES, ListenerProcess, ThreadedServer, run_vwh
from tests.test_forward import RecordingHandler

TOKEN = "s3cret-verifier-token"
ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()
REBIND = "rebind.test"  # a foreign name that resolves to 127.0.0.1, as DNS rebinding does
WAIT_MS = 10_000


def _missing(reason: str) -> Any:
    if os.environ.get("VWH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"VWH_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for all the page tests."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("no Chromium for the browser tests: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=chromium, args=[f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"]
        )
        yield launched
        launched.close()


class Session:
    """A listener forwarding to a recording handler, and a page open on its inspector."""

    def __init__(self, browser: Any, *args: str, rows: int | None = None) -> None:
        self.handler = RecordingHandler()
        self.server = ThreadedServer(self.handler).__enter__()
        self.listener = ListenerProcess(
            "--token", TOKEN, "--forward-to", self.server.url + "/", "--ui-port", "0", *args
        ).start()
        match = re.search(r"inspector: (http://\S+)", self.listener.stderr_so_far())
        assert match
        self.url = match.group(1)
        self.base = self.url.partition("/?")[0]
        self.auth = {"Authorization": "Bearer " + self.url.partition("token=")[2]}
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.base)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.set_default_timeout(WAIT_MS)
        self.page.goto(self.url + (f"&rows={rows}" if rows else ""))
        self.page.wait_for_selector("#live.on")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def deliver(self, body: bytes = ORDER, path: str = "/hooks/ok", **headers: str) -> None:
        r = httpx.post(
            self.listener.url + path,
            content=body,
            headers={"Verifier-Token": TOKEN, **headers},
            timeout=10,
        )
        assert r.status_code < 500 or path.endswith("boom"), r.text

    def rows(self, count: int, expected: list[str] | None = None) -> list[str]:
        """Wait until the list shows `count` rows (those ids, if given); ids top to bottom.

        Polled from here: the page's own policy forbids the eval a page-side wait uses.
        """
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            ids: list[str] = self.page.eval_on_selector_all(
                "#rows tr", "rows => rows.map(r => r.dataset.id)"
            )
            done = len(ids) == count and expected in (None, ids)
            if done or time.monotonic() > deadline:
                assert len(ids) == count and expected in (None, ids), ids
                return ids
            self.page.wait_for_timeout(50)

    def close(self) -> None:
        self.context.close()
        self.listener.stop()
        self.server.__exit__()
        assert not self.errors, self.errors


@pytest.fixture
def session(browser: Any) -> Iterator[Session]:
    s = Session(browser)
    yield s
    s.close()


def test_rows_appear_live_while_vwh_replay_sends(session: Session, tmp_path: Any) -> None:
    for kind in ("order", "account", "user"):
        (tmp_path / f"{kind}.json").write_text(run_vwh("sample", kind).stdout)
    sent = run_vwh("replay", str(tmp_path), "--to", session.listener.url + "/hooks/ok",
                   "--token", TOKEN)  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    session.rows(3, ["3", "2", "1"])  # newest first, no reload
    text = session.page.inner_text("#rows")
    assert "POST" in text and "/hooks/ok" in text and "ok" in text


def test_the_filter_box_and_the_quick_filters(session: Session) -> None:
    session.deliver(b'{"orderId": "AG-AAA:ORD-FINDME"}')
    session.deliver(b'{"orderId": "AG-BBB:ORD-OTHER"}')
    session.deliver(b'{"orderId": "AG-BBB:ORD-OTHER"}')  # a resend
    session.deliver(b'{"orderId": "AG-CCC:ORD-WRONG"}', **{"Verifier-Token": "guess"})
    session.deliver(b'{"orderId": "AG-DDD:ORD-FAILS"}', path="/hooks/bad")  # handler says 400
    session.rows(5, ["5", "4", "3", "2", "1"])
    page = session.page
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "filter"
    page.keyboard.type("findme")
    session.rows(1, ["1"])
    page.fill("#filter", "/hooks/bad")
    session.rows(1, ["5"])
    page.fill("#filter", "")
    assert len(session.rows(5)) == 5
    for label, expected in (
        ("Rejected", ["4"]),
        ("Resends", ["3"]),
        ("Handler failures", ["5"]),
        ("Accepted", ["3", "2", "1"]),  # 5: the sender got the handler's 400
        ("All", ["5", "4", "3", "2", "1"]),
    ):
        page.click(f".quick button:text-is('{label}')")
        session.rows(len(expected), expected)


def test_the_detail_view(session: Session) -> None:
    session.deliver(ORDER, path="/hooks/ok?source=test", Cookie="session=abc123")
    session.deliver(ORDER, path="/hooks/ok?source=test")  # the resend
    session.rows(2)
    page = session.page
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail #headers")
    detail = page.inner_text("#detail")
    assert "#2 POST /hooks/ok?source=test" in detail
    assert TOKEN not in page.content() and "(21 chars)" in detail  # the token, masked
    assert "abc123" not in page.content()  # the cookie, masked
    assert "source" in page.inner_text("#query-table")
    assert json.loads(page.inner_text("#body pre")) == json.loads(ORDER)
    assert "\n  " in page.inner_text("#body pre")  # pretty
    page.click("#body .tabs button:text-is('raw')")
    assert page.text_content("#body pre") == ORDER.decode()
    order_id = json.loads(ORDER)["orderId"]
    page.click("#copy-orderId")
    page.wait_for_selector("#copy-orderId.done:text('copied')")
    assert page.evaluate("navigator.clipboard.readText()") == order_id
    timeline = page.text_content("#timeline") or ""
    assert "Deliveries of this body (2)" in timeline and "#1" in timeline and "#2" in timeline
    handler = page.inner_text("#handler")
    assert "200 in" in handler and session.server.url + "/hooks/ok?source=test" in handler
    assert "processed" in page.inner_text("#handler-body")
    page.click("#copy-curl")
    page.wait_for_selector("#copy-curl.done")
    curl = page.evaluate("navigator.clipboard.readText()")
    assert curl.startswith("curl ") and "$VWH_TOKEN" in curl and TOKEN not in curl


def test_replay_and_edit_and_replay_reach_the_handler(session: Session) -> None:
    session.deliver(ORDER, path="/hooks/ok")
    session.rows(1)
    page = session.page
    page.click("#rows tr")
    page.click("#replay")
    page.wait_for_selector("#replay-result .outcome.delivered")
    assert "200" in page.inner_text("#replay-result .attempt")
    assert session.handler.seen[-1].body == ORDER
    assert ("verifier-token", TOKEN) in session.handler.seen[-1].headers  # the listener's own

    page.click("#edit")
    page.fill("#editor textarea", '{"orderId": ')
    page.click("#send-edited")
    page.wait_for_selector("#edit-error:text('invalid JSON')")
    assert page.inner_text("#edit-error") == "invalid JSON: Expecting value at line 1 column 13"
    calls = len(session.handler.seen)
    edited = '{"orderId": "AG-EDIT:ORD-EDITED"}'
    page.fill("#editor textarea", edited)
    page.click("#send-edited")
    page.wait_for_selector("#replay-result .outcome.delivered")
    assert len(session.handler.seen) == calls + 1 and session.handler.seen[-1].body == (
        edited.encode()
    )

    page.fill("#target", session.server.url + "/hooks/boom")  # 500 every time: resent
    page.click("#replay")
    page.wait_for_selector("#replay-result .outcome.gave-up", timeout=15_000)
    attempts = page.locator("#replay-result .attempt")
    assert attempts.count() == 3
    assert "after " in attempts.nth(1).inner_text() and "500" in attempts.nth(2).inner_text()


def test_the_keyboard_moves_opens_and_closes(session: Session) -> None:
    for n in range(3):
        session.deliver(json.dumps({"orderId": f"AG-K:ORD-{n}"}).encode())
    session.rows(3)
    page = session.page

    def selected() -> str | None:
        return page.evaluate("document.querySelector('#rows tr.sel')?.dataset.id ?? null")

    page.keyboard.press("j")
    assert selected() == "3"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("j")
    assert selected() == "1"
    page.keyboard.press("k")
    assert selected() == "2"
    page.keyboard.press("ArrowUp")
    assert selected() == "3"
    assert page.is_hidden("#detail")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail .dtitle:text('#3')")
    page.keyboard.press("j")  # with the detail open, it follows the selection
    page.wait_for_selector("#detail .dtitle:text('#2')")
    page.keyboard.press("Escape")
    assert page.is_hidden("#detail")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "filter"


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    "<img src=x onerror=\"window.__pwned = 2; alert('xss')\">",
]


def test_markup_in_a_body_header_or_path_is_shown_as_text(session: Session) -> None:
    body = json.dumps({"orderId": HOSTILE[0], "note": HOSTILE[1]}).encode()
    session.deliver(body, path="/hooks/<script>alert(1)</script>", **{"X-Evil": HOSTILE[1]})
    session.rows(1)
    page = session.page
    assert "/hooks/<script>alert(1)</script>" in page.inner_text("#rows")
    page.click("#rows tr")
    page.wait_for_selector("#detail #headers")
    page.click("#body .tabs button:text-is('raw')")
    assert page.text_content("#body pre") == body.decode()
    assert HOSTILE[1] in page.inner_text("#header-table")
    assert HOSTILE[0] in page.inner_text("#ids")
    page.fill("#filter", "<img src=x")
    session.rows(1)
    page.wait_for_timeout(300)  # give any injected handler its chance to run
    assert page.evaluate("window.__pwned") is None
    assert session.dialogs == []
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # app.js, nothing else


def test_actions_without_the_secret_or_from_another_origin_are_refused(
    session: Session, browser: Any
) -> None:
    session.deliver(ORDER)
    session.rows(1)
    calls = len([seen for seen in session.handler.seen if seen.method == "POST"])
    replay = f"{session.base}/api/requests/1/replay"

    # Another site's page: it has no secret to send, and no way to set the header.
    other = session.context.new_page()
    other.goto(session.server.url + "/elsewhere")
    outcome = other.evaluate(
        "url => fetch(url, {method: 'POST', credentials: 'include', body: '{}'})"
        ".then(r => r.status, e => String(e))",
        replay,
    )
    assert outcome == "TypeError: Failed to fetch"  # the browser hides the 403 from that page
    refused = session.context.request.post(  # even with the secret, that Origin is refused
        replay,
        headers={**session.auth, "Origin": session.server.url, "Content-Type": "application/json"},
        data="{}",
    )
    assert refused.status == 403 and "origin" in refused.json()["error"]

    # A page of the inspector itself, opened without the secret.
    fresh = browser.new_context()
    try:
        stranger = fresh.new_page()
        stranger.goto(session.base + "/")
        stranger.wait_for_selector("#error:text('Open the address vwh printed')")
        assert stranger.locator("#rows tr").count() == 0
        status = stranger.evaluate(
            "url => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: '{}'}).then(r => r.status)",
            replay,
        )
        assert status == 403
    finally:
        fresh.close()
    posts = [seen for seen in session.handler.seen if seen.method == "POST"]
    assert len(posts) == calls  # nothing was replayed


def test_a_foreign_host_is_refused(session: Session) -> None:
    port = session.base.rsplit(":", 1)[1]
    page = session.context.new_page()
    answer = page.goto(f"http://{REBIND}:{port}/?{session.url.partition('?')[2]}")
    assert answer is not None and answer.status == 421
    assert "orderId" not in page.content()


def test_the_receiving_port_does_not_serve_the_inspector(session: Session) -> None:
    page = session.context.new_page()
    for path in ("/", "/api/requests", "/static/app.js"):
        answer = page.goto(session.listener.url + path)
        assert answer is not None and answer.status == 405, path
        assert page.locator("#rows").count() == 0


def test_the_list_is_bounded_and_loads_older_on_demand(browser: Any) -> None:
    s = Session(browser, rows=5)
    try:
        for n in range(12):
            s.deliver(json.dumps({"orderId": f"AG-B:ORD-{n:03d}"}).encode())
        s.rows(5, ["12", "11", "10", "9", "8"])
        page = s.page
        page.click("#load-older")
        page.wait_for_selector("#rows tr[data-id='3']")
        s.rows(5, ["7", "6", "5", "4", "3"])  # still 5: the newest went
        assert page.is_visible("#newer")
        page.click("#load-older")
        page.wait_for_selector("#rows tr[data-id='1']")
        assert page.is_hidden("#load-older")  # nothing older
        page.click("#show-newest")
        page.wait_for_selector("#rows tr[data-id='12']")
        s.rows(5, ["12", "11", "10", "9", "8"])
    finally:
        s.close()
