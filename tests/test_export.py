from __future__ import annotations

import io
import json
import os
import stat
import tracemalloc
from pathlib import Path

import pytest

from tests.har import har_problems
from vwh.errors import UsageError
from vwh.export import har_entry, ndjson_record, private_file, write_har, write_ndjson
from vwh.payloads import load_sources
from vwh.query import iter_matching
from vwh.store import CapturedRequest, CaptureStore, ForwardResult
from vwh.webhook import mask_secret

TOKEN = "s3cret-verifier-token"
HOSTILE = '{"note": "\x1b]0;pwned\x07 \u202e \u0085", "orderId": "AG-1:ORD-1"}'.encode()
NOT_UTF8 = b'{"orderId": "\xff\xfe"}'


def _kept(store: CaptureStore, **kw: object) -> CapturedRequest:
    fields: dict[str, object] = {
        "received_at": 1_800_000_000.25,
        "method": "POST",
        "path": "/hooks/vendasta",
        "query": "a=1&b=two%20words",
        "headers": [
            ("host", "127.0.0.1:8787"),
            ("content-type", "application/json"),
            ("verifier-token", mask_secret(TOKEN)),
            ("authorization", mask_secret("Bearer abc.def.ghi")),
        ],
        "body": b'{"orderId": "AG-1:ORD-1"}',
        "body_size": 25,
        "verdict": "ok",
        "token_masked": mask_secret(TOKEN),
        "status": 200,
        "latency_ms": 1.5,
        "attempt": 1,
    }
    record = CapturedRequest(**{**fields, **kw})  # type: ignore[arg-type]
    store.add(record)
    return record


@pytest.fixture
def store(store_path: Path) -> CaptureStore:
    return CaptureStore(store_path)


def test_ndjson_lines_come_back_as_the_same_requests(store: CaptureStore, tmp_path: Path) -> None:
    bodies = [b'{"orderId": "AG-1:ORD-1"}', HOSTILE, NOT_UTF8]
    for i, body in enumerate(bodies):
        _kept(store, body=body, body_size=len(body), path=f"/p/{i} x", method="PUT")
    out = io.StringIO()
    assert write_ndjson(iter_matching(store), out) == 3
    text = out.getvalue()
    assert "\x1b" not in text and "\u202e" not in text and "\x85" not in text  # inert
    path = tmp_path / "export.ndjson"
    path.write_text(text, encoding="utf-8")
    loaded = load_sources([str(path)])
    assert loaded.problems == []
    assert [p.body for p in loaded.payloads] == bodies
    assert [(p.method, p.path, p.query) for p in loaded.payloads] == [
        ("PUT", f"/p/{i} x", "a=1&b=two%20words") for i in range(3)
    ]
    # Masked secrets are not sent again: not the token, not the authorization.
    assert all(p.had_token for p in loaded.payloads)
    assert loaded.payloads[0].headers == (("content-type", "application/json"),)


def test_one_record_in_a_json_file_is_still_a_request(store: CaptureStore, tmp_path: Path) -> None:
    record = _kept(store)
    path = tmp_path / "one.json"
    path.write_text(json.dumps(ndjson_record(record)))
    [payload] = load_sources([str(path)]).payloads
    assert (payload.body, payload.path) == (record.body, record.path)


def test_a_body_not_kept_is_exported_as_null_and_is_a_problem_to_replay(
    store: CaptureStore, tmp_path: Path
) -> None:
    record = _kept(store, body=None, body_size=5_000_000, status=413, error="body over 1 bytes")
    assert ndjson_record(record)["body"] is None
    path = tmp_path / "big.ndjson"
    path.write_text(json.dumps(ndjson_record(record)) + "\n")
    loaded = load_sources([str(path)])
    assert loaded.payloads == []
    assert "has no body" in loaded.problems[0].message


def test_secrets_stay_masked_in_both_formats(store: CaptureStore) -> None:
    _kept(store, forward=ForwardResult(url="http://127.0.0.1:1/", status=200, body=b"{}"))
    for write in (write_ndjson, write_har):
        out = io.StringIO()
        write(iter_matching(store), out)
        assert TOKEN not in out.getvalue() and "abc.def.ghi" not in out.getvalue()
        assert mask_secret(TOKEN) in out.getvalue()


def test_har_has_every_field_har_1_2_requires(store: CaptureStore) -> None:
    _kept(store)
    _kept(store, body=NOT_UTF8, body_size=len(NOT_UTF8), query="")
    _kept(store, body=None, body_size=9_999, status=413, error="body over 1024 bytes, not kept")
    _kept(
        store,
        status=502,
        forward=ForwardResult(
            url="http://127.0.0.1:1/",
            status=502,
            headers=[("content-type", "text/plain")],
            body=b"\xffdown",
        ),
    )
    _kept(store, status=0, latency_ms=-0.0, error="listener stopped before answering")
    out = io.StringIO()
    assert write_har(iter_matching(store), out) == 5
    document = json.loads(out.getvalue())
    assert har_problems(document) == []
    entries = document["log"]["entries"]
    first = entries[0]["request"]
    assert first["url"] == "http://127.0.0.1:8787/hooks/vendasta?a=1&b=two%20words"
    assert first["queryString"] == [
        {"name": "a", "value": "1"},
        {"name": "b", "value": "two words"},
    ]
    assert first["postData"] == {
        "mimeType": "application/json",
        "text": '{"orderId": "AG-1:ORD-1"}',
    }
    assert entries[1]["request"]["postData"]["_encoding"] == "base64"
    assert entries[2]["request"]["postData"]["text"] == ""
    relayed = entries[3]["response"]
    assert (relayed["status"], relayed["statusText"]) == (502, "Bad Gateway")
    assert relayed["content"]["encoding"] == "base64"
    assert entries[4]["response"]["statusText"] == ""


def test_the_checker_catches_what_har_forbids(store: CaptureStore) -> None:
    entry = har_entry(_kept(store))
    del entry["request"]["headersSize"]
    entry["response"]["status"] = "200"
    entry["extra"] = 1
    document = {"log": {"version": "1.2", "creator": {"name": "x"}, "entries": [entry]}}
    assert har_problems(document) == [
        "log.creator: no version",
        "entries[0].extra: not a HAR field (custom ones start with _)",
        "entries[0].request: no headersSize",
        "entries[0].response.status: not a number",
    ]


def test_export_reads_a_page_at_a_time(store_path: Path) -> None:
    """Memory stays flat: a thousand 20 KiB bodies export in far less than they weigh."""
    body = json.dumps({"orderId": "AG-1:ORD-1", "pad": "x" * 20_000}).encode()
    with CaptureStore(store_path) as store:
        _kept(store, body=body, body_size=len(body))
        store._conn.execute(  # a thousand copies, fast
            "INSERT INTO requests (received_at, method, path, query, headers, body, body_size,"
            " verdict, token_masked, status) SELECT received_at, method, path, query, headers,"
            " body, body_size, verdict, token_masked, status FROM requests, (WITH RECURSIVE"
            " n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 999) SELECT i FROM n)"
        )
        store._conn.commit()
        assert store.count() == 1000

        class Sink(io.TextIOBase):
            written = 0

            def write(self, text: str) -> int:
                self.written += len(text)
                return len(text)

        sink = Sink()
        tracemalloc.start()
        try:
            assert write_ndjson(iter_matching(store, page=50), sink) == 1000
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert sink.written > 20_000_000
    assert peak < 8_000_000


def test_private_file_is_0600_and_in_place_only_when_complete(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "out.har"
    target.write_text("old")
    with pytest.raises(RuntimeError), private_file(target) as out:
        out.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["out.har"]  # no temporary left
    with private_file(target) as out:
        out.write("new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_private_file_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    with (
        pytest.raises(UsageError, match=r"cannot write .*nowhere"),
        private_file(tmp_path / "nowhere" / "x.ndjson"),
    ):
        pass
