"""The inspector app in-process: its guard (Host, secret, same origin) and its JSON API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.handlers import PATH, TOKEN, correct
from tests.helpers import FIXTURES, ThreadedServer
from vwh.inspector import InspectorSettings, create_inspector
from vwh.store import CapturedRequest, CaptureStore
from vwh.webhook import body_ids, fingerprint

SECRET = "s3cret-of-this-run"
ORIGIN = "http://127.0.0.1:8788"
ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()
BEARER = {"Authorization": f"Bearer {SECRET}"}


def kept(body: bytes, *, path: str = PATH, status: int = 200, attempt: int = 1, **kw: Any) -> Any:
    return CapturedRequest(
        received_at=1_800_000_000.0 + attempt,
        method="POST",
        path=path,
        headers=[("content-type", "application/json"), ("verifier-token", "•••• (21 chars)")],
        body=body,
        body_size=len(body),
        verdict=kw.pop("verdict", "ok"),
        status=status,
        fingerprint=fingerprint(body),
        attempt=attempt,
        first_seen_at=1_800_000_001.0,
        **kw,
    )


@pytest.fixture
def store(store_path: Path) -> Iterator[CaptureStore]:
    with CaptureStore(store_path) as s:
        s.add(kept(ORDER, status=503))  # 1
        s.add(kept(ORDER, attempt=2))  # 2: its resend
        s.add(kept(b'{"orderId": "AG-2:ORD-2"}', path="/other"))  # 3
        s.add(kept(b"{}", verdict="wrong", status=401, error="wrong token"))  # 4
        yield s


def call(
    store: CaptureStore,
    method: str,
    url: str,
    *,
    settings: InspectorSettings | None = None,
    host: str = "127.0.0.1:8788",
    **kw: Any,
) -> httpx.Response:
    app = create_inspector(
        settings or InspectorSettings(store.path, token=TOKEN),
        store,
        secret=SECRET,
        host="127.0.0.1",
        port=8788,
    )

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return await client.request(method, url, **kw)

    return asyncio.run(go())


# ---- the guard -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/info", "/api/requests", "/api/requests/1", "/api/requests/1/body", "/api/events"]
)
def test_reads_need_the_secret(store: CaptureStore, url: str) -> None:
    r = call(store, "GET", url)
    assert r.status_code == 403
    assert "secret" in r.text and "orderId" not in r.text
    wrong = call(store, "GET", url, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 403
    assert call(store, "GET", f"{url}?token=guess").status_code == 403


def test_the_page_holds_no_data_and_a_script_reads_with_the_header_or_the_address(
    store: CaptureStore,
) -> None:
    page = call(store, "GET", "/")
    assert page.status_code == 200 and '<script src="/static/app.js"' in page.text
    assert "orderId" not in page.text and "set-cookie" not in page.headers
    assert call(store, "GET", "/api/requests", headers=BEARER).status_code == 200
    assert call(store, "GET", f"/api/requests?token={SECRET}").status_code == 200


@pytest.mark.parametrize("host", ["evil.example:8788", "127.0.0.1:9999", "rebind.test", ""])
def test_a_foreign_host_is_refused_even_with_the_secret(store: CaptureStore, host: str) -> None:
    r = call(store, "GET", "/api/requests", host=host or "127.0.0.1:8788", headers=BEARER)
    if not host:
        assert r.status_code == 200
        return
    assert r.status_code == 421 and "orderId" not in r.text


def test_localhost_is_the_same_inspector(store: CaptureStore) -> None:
    assert call(store, "GET", "/api/info", host="localhost:8788", headers=BEARER).status_code == 200


def test_every_answer_carries_a_strict_policy(store: CaptureStore) -> None:
    for r in (
        call(store, "GET", "/static/app.js"),  # assets need no secret: they hold no data
        call(store, "GET", "/api/requests", headers=BEARER),
        call(store, "GET", "/api/requests"),
    ):
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert call(store, "GET", "/api/requests", headers=BEARER).headers["content-type"] == (
        "application/json"
    )


REPLAY = {"json": {"target": "http://127.0.0.1:1/", "attempts": 1}}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:8787"},  # the receiver: another origin
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
        {"Origin": ORIGIN, "Sec-Fetch-Site": "same-site"},
    ],
)
def test_an_action_from_another_origin_is_refused_even_with_the_secret(
    store: CaptureStore, headers: dict[str, str]
) -> None:
    r = call(store, "POST", "/api/requests/1/replay", headers={**BEARER, **headers}, **REPLAY)
    assert r.status_code == 403 and "error" in r.json()


def test_an_action_needs_the_secret_in_the_header_never_in_the_address(
    store: CaptureStore,
) -> None:
    same = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
    assert call(store, "POST", "/api/requests/1/replay", headers=same, **REPLAY).status_code == 403
    url = f"/api/requests/1/replay?token={SECRET}"
    assert call(store, "POST", url, headers=same, **REPLAY).status_code == 403


def test_a_same_origin_action_or_a_script_with_the_header_is_let_through(
    store: CaptureStore,
) -> None:
    same = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
    page = call(store, "POST", "/api/requests/1/replay", headers={**BEARER, **same}, **REPLAY)
    script = call(store, "POST", "/api/requests/1/replay", headers=BEARER, **REPLAY)
    for r in (page, script):
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "gave-up"  # port 1: nothing listens
    form = call(store, "POST", "/api/requests/1/replay", headers=BEARER, data={"a": "b"})
    assert form.status_code == 415


# ---- the JSON API ----------------------------------------------------------------


def ids_of(r: httpx.Response) -> list[int]:
    return [row["id"] for row in r.json()["requests"]]


def test_list_filters_and_pages_by_id(store: CaptureStore) -> None:
    def ids(query: str) -> list[int]:
        r = call(store, "GET", f"/api/requests?{query}", headers=BEARER)
        assert r.status_code == 200, r.text
        return ids_of(r)

    assert ids("") == [4, 3, 2, 1]
    assert ids("q=ORD-2") == [3]
    assert ids("q=/other") == [3]
    assert ids("outcome=rejected") == [4]
    assert ids("outcome=resends") == [2]
    assert ids("outcome=accepted") == [3, 2]
    assert ids("status=5xx") == [1]
    assert ids("limit=2") == [4, 3]
    assert ids("limit=2&before_id=3") == [2, 1]
    assert ids("after_id=2") == [4, 3]
    assert ids("after_id=1&order=oldest&limit=2") == [2, 3]
    more = call(store, "GET", "/api/requests?limit=3", headers=BEARER).json()["has_more"]
    assert more is True


@pytest.mark.parametrize("query", ["outcome=nope", "limit=0", "limit=x", "since=yesterday"])
def test_a_bad_filter_is_a_400_with_a_reason(store: CaptureStore, query: str) -> None:
    r = call(store, "GET", f"/api/requests?{query}", headers=BEARER)
    assert r.status_code == 400 and r.json()["error"]


def test_one_request_in_full_with_its_resend_timeline(store: CaptureStore) -> None:
    r = call(store, "GET", "/api/requests/2", headers=BEARER)
    d = r.json()
    assert d["body"] == ORDER.decode() and json.loads(d["body_pretty"]) == json.loads(ORDER)
    assert d["ids"] == body_ids(json.loads(ORDER))
    assert [(t["id"], t["attempt"], t["status"]) for t in d["timeline"]] == [
        (1, 1, 503),
        (2, 2, 200),
    ]
    assert d["replay_target"] == "http://127.0.0.1:8787" + PATH
    assert TOKEN not in d["curl"] and '"Verifier-Token: $VWH_TOKEN"' in d["curl"]
    assert call(store, "GET", "/api/requests/99", headers=BEARER).status_code == 404


def test_the_body_downloads_as_an_attachment_never_as_a_page(store: CaptureStore) -> None:
    r = call(store, "GET", "/api/requests/1/body", headers=BEARER)
    assert r.content == ORDER
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == 'attachment; filename="vwh-request-1.json"'


def test_replay_reaches_a_handler_with_the_listeners_token(store: CaptureStore) -> None:
    with ThreadedServer(correct()) as handler:
        r = call(
            store, "POST", "/api/requests/3/replay", headers=BEARER,
            json={"target": handler.url + PATH},
        )  # fmt: skip
    out = r.json()
    assert out["outcome"] == "delivered" and out["status"] == 200
    assert [a["status"] for a in out["attempts"]] == [200]
    assert json.loads(out["attempts"][0]["answer"]) == {"status": "processed"}


def test_edit_and_replay_refuses_invalid_json_with_the_parsers_message(
    store: CaptureStore,
) -> None:
    r = call(
        store, "POST", "/api/requests/3/replay", headers=BEARER,
        json={"target": "http://127.0.0.1:1/", "body": '{"orderId": '},
    )  # fmt: skip
    assert r.status_code == 422
    assert r.json()["error"] == "invalid JSON: Expecting value at line 1 column 13"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"target": "ftp://x"}, "bad target"),
        ({"attempts": 0}, "attempts must be"),
        ({"body": 5}, "body must be"),
    ],
)
def test_bad_replay_options_are_refused(
    store: CaptureStore, options: dict[str, Any], message: str
) -> None:
    r = call(store, "POST", "/api/requests/3/replay", headers=BEARER, json=options)
    assert r.status_code == 422 and message in r.json()["error"]


@pytest.mark.parametrize(("kind", "name"), [("query", "sig"), ("cookie", "vwh_sig")])
def test_replay_puts_the_listeners_token_in_the_listeners_place(
    store_path: Path, kind: str, name: str
) -> None:
    """A listener with --token-query/--token-cookie: replay from the page is accepted by it."""
    from tests.handlers import make_handler
    from vwh.webhook import TokenPlace

    with CaptureStore(store_path) as s:
        s.add(kept(ORDER, query=f"src=v&{name}=••••en (21 chars)" if kind == "query" else ""))
        with ThreadedServer(make_handler(place=(kind, name))) as handler:
            settings = InspectorSettings(
                store_path,
                listener_url=handler.url,
                token=TOKEN,
                token_place=TokenPlace(kind, name),
            )
            r = call(
                s, "POST", "/api/requests/1/replay", headers=BEARER, settings=settings, json={}
            )
            d = call(s, "GET", "/api/requests/1", headers=BEARER, settings=settings).json()
    out = r.json()
    assert r.status_code == 200 and out.get("outcome") == "delivered", (r.status_code, out)
    assert "••••" not in d["replay_target"] and TOKEN not in d["curl"]
    assert "'\"$VWH_TOKEN\"'" in d["curl"] and "Verifier-Token" not in d["curl"]
    if kind == "query":
        assert d["replay_target"] == f"{handler.url}{PATH}?src=v"
