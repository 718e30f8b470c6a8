"""Loading bodies: every kind of input, kept byte for byte, and precise complaints."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from tests.helpers import FIXTURES
from vwh.errors import InputError
from vwh.payloads import Loaded, Problem, load_history, load_sources, read_json_object_file
from vwh.store import CapturedRequest, CaptureStore

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def messages(loaded: Loaded) -> list[str]:
    return [p.message for p in loaded.problems]


def test_a_file_of_one_object_is_one_body_kept_byte_for_byte(tmp_path: Path) -> None:
    path = write(tmp_path / "order.json", ORDER)
    loaded = load_sources([str(path)])
    assert [(p.label, p.body, p.method) for p in loaded.payloads] == [(str(path), ORDER, "POST")]
    assert not loaded.problems


def test_json_lines_give_one_body_per_line_labelled_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "events.txt", '{"a": 1}\n\n{"b":  2}\r\n{"c": 3}')
    loaded = load_sources([str(path)])
    assert [(p.label, p.body) for p in loaded.payloads] == [
        (f"{path}:1", b'{"a": 1}'),
        (f"{path}:3", b'{"b":  2}'),
        (f"{path}:4", b'{"c": 3}'),
    ]


def test_a_jsonl_name_is_json_lines_even_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "one.jsonl", '{"a": 1}\n')
    assert [p.label for p in load_sources([str(path)]).payloads] == [f"{path}:1"]


def test_a_bad_json_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "events.jsonl", '{"a": 1}\n{"b": 2}\n{"c": \n[1]\n')
    loaded = load_sources([str(path)])
    assert len(loaded.payloads) == 2
    assert messages(loaded) == [
        f"{path} line 3: invalid JSON: Expecting value at line 1 column 7",
        f"{path} line 4: JSON array, not an object",
    ]
    assert [p.label for p in loaded.problems] == [f"{path}:3", f"{path}:4"]


def test_a_directory_gives_its_json_files_in_name_order(tmp_path: Path) -> None:
    # Files as `vwh listen --save` writes them: plain bodies named vwh-NNNNNN.json.
    for n in (2, 10, 1):
        write(tmp_path / f"vwh-{n:06d}.json", b'{"n": %d}' % n)
    write(tmp_path / "notes.txt", "not a payload")
    (tmp_path / "sub.json").mkdir()
    loaded = load_sources([str(tmp_path)])
    assert [p.body for p in loaded.payloads] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 10}']
    assert loaded.payloads[0].label == str(tmp_path / "vwh-000001.json")


def test_stdin_holds_one_object_or_json_lines() -> None:
    pretty = load_sources(["-"], io.BytesIO(ORDER))
    assert [(p.label, p.body) for p in pretty.payloads] == [("<stdin>", ORDER)]
    lines = load_sources(["-"], io.BytesIO(b'{"a": 1}\n{"b": 2}\n'))
    assert [p.label for p in lines.payloads] == ["<stdin>:1", "<stdin>:2"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '{"a": 1,}', "invalid JSON: Expecting property name enclosed in double"),
        ("list.json", "[1, 2]", "JSON array, not an object"),
        ("text.json", '"hello"', "JSON string, not an object"),
        ("empty.json", "", "empty body"),
        ("blank.jsonl", "\n\n", "empty body"),
        ("latin.json", b'{"a": "\xe9"}', "body is not valid UTF-8"),
        ("two.json", '{"a": 1} {"b": 2}', "invalid JSON: Extra data at line 1 column 10"),
    ],
)
def test_bad_files_are_named_with_the_reason(
    tmp_path: Path, name: str, content: bytes | str, message: str
) -> None:
    path = write(tmp_path / name, content)
    loaded = load_sources([str(path)])
    assert not loaded.payloads
    [problem] = loaded.problems
    assert problem.label == str(path) and problem.message.startswith(f"{path}: {message}")


def test_missing_unreadable_and_empty_inputs_are_problems(tmp_path: Path) -> None:
    write(tmp_path / "file", "x")
    (tmp_path / "empty").mkdir()
    sources = [
        str(tmp_path / "missing.json"),
        str(tmp_path / "file/a.json"),
        str(tmp_path / "empty"),
    ]
    assert messages(load_sources(sources)) == [
        f"{tmp_path / 'missing.json'}: no such file",
        f"{tmp_path / 'file/a.json'}: cannot read (Not a directory)",
        f"{tmp_path / 'empty'}: no *.json files in this directory",
    ]


def test_raise_problems_gives_the_first_and_counts_the_rest() -> None:
    Loaded().raise_problems()  # nothing to say
    loaded = Loaded(problems=[Problem("a", "a.json: bad"), Problem("b", "b"), Problem("c", "c")])
    with pytest.raises(InputError, match=r"^a\.json: bad \(and 2 more invalid inputs\)$"):
        loaded.raise_problems()
    with pytest.raises(InputError, match=r"^a\.json: bad$"):
        Loaded(problems=loaded.problems[:1]).raise_problems()


def test_read_json_object_file_checks_and_keeps_bytes(tmp_path: Path) -> None:
    assert read_json_object_file(write(tmp_path / "o.json", ORDER)) == ORDER
    with pytest.raises(InputError, match=r"l\.json: JSON array, not an object"):
        read_json_object_file(write(tmp_path / "l.json", "[]"))
    with pytest.raises(InputError, match="no such file"):
        read_json_object_file(tmp_path / "nope.json")


def keep(store: CaptureStore, **kw: object) -> int:
    fields: dict[str, object] = {"received_at": time.time(), "method": "POST", "path": "/h"}
    return store.add(CapturedRequest(**(fields | kw)))  # type: ignore[arg-type]


def test_history_gives_the_kept_body_method_and_replayable_headers(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        first = keep(
            store,
            method="PUT",
            body=b'{"raw" : true}',
            token_masked="•••• (6 chars)",
            headers=[
                ("host", "127.0.0.1:8787"),
                ("content-length", "14"),
                ("x-signature", "•••• (6 chars)"),  # the token, under a custom name
                ("authorization", "••••ab (20 chars)"),
                ("user-agent", "Vendasta/1.0"),
                ("x-trace", "abc"),
            ],
        )
        second = keep(store, body=ORDER)
    loaded = load_history(store_path, [second, first])
    assert not loaded.problems
    assert [(p.label, p.body, p.method) for p in loaded.payloads] == [
        (f"#{second}", ORDER, "POST"),
        (f"#{first}", b'{"raw" : true}', "PUT"),
    ]
    kept = loaded.payloads[1]
    assert kept.headers == (("user-agent", "Vendasta/1.0"), ("x-trace", "abc"))
    assert kept.had_token and not loaded.payloads[0].had_token


def test_history_problems_name_the_id(store_path: Path) -> None:
    with CaptureStore(store_path) as store:
        big = keep(store, body=None, body_size=2_000_000)
    loaded = load_history(store_path, [big, 99])
    assert messages(loaded)[0] == f"request #{big}: its body (2000000 bytes) was not kept"
    assert messages(loaded)[1].startswith("no kept request with id 99")


def test_history_without_a_store_says_nothing_was_kept(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing was kept yet"):
        load_history(tmp_path / "none.sqlite3", [1])
    assert not (tmp_path / "none.sqlite3").exists()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"method": "POST", "path": "hooks", "body": "{}"}, "not a usable vwh export record"),
        ({"method": "PO ST", "path": "/h", "body": "{}"}, "not a usable vwh export record"),
        ({"method": "POST", "path": "/h", "headers": [["x"]], "body": "{}"}, "not a usable"),
        ({"method": "POST", "path": "/h", "body": None}, "has no body"),
        ({"method": "POST", "path": "/h", "body_base64": "***"}, "has no body"),
    ],
)
def test_a_broken_export_record_is_named_by_its_line(
    tmp_path: Path, record: dict[str, object], message: str
) -> None:
    good = {"kind": "vwh.request", "method": "POST", "path": "/ok", "query": "", "body": "{}"}
    path = write(
        tmp_path / "x.ndjson",
        json.dumps(good) + "\n" + json.dumps({"kind": "vwh.request", **record}),
    )
    loaded = load_sources([str(path)])
    assert [p.path for p in loaded.payloads] == ["/ok"]
    assert [p.message.split(": ", 1)[0] for p in loaded.problems] == [f"{path} line 2"]
    assert message in loaded.problems[0].message


def test_a_body_with_the_same_keys_but_no_kind_is_just_a_body(tmp_path: Path) -> None:
    raw = b'{"method": "GET", "path": "/x", "query": "", "body": "{}"}'
    [payload] = load_sources([str(write(tmp_path / "b.jsonl", raw))]).payloads
    assert (payload.body, payload.method, payload.path) == (raw, "POST", None)


def test_kept_and_exported_requests_carry_their_query_and_readable_cookies(
    store_path: Path, tmp_path: Path
) -> None:
    """The same query field for both (as kept, secrets masked); masked cookies left out."""
    cookie = ("cookie", "theme=dark; vwh_sig=••••en (21 chars); lang=fr")
    query = "src=v&sig=••••en (21 chars)"
    with CaptureStore(store_path) as store:
        kept_id = keep(store, body=ORDER, query=query, headers=[cookie])
    [kept] = load_history(store_path, [kept_id]).payloads
    record = {"kind": "vwh.request", "method": "POST", "path": "/h", "query": query,
              "headers": [list(cookie)], "body": "{}"}  # fmt: skip
    [exported] = load_sources([str(write(tmp_path / "x.ndjson", json.dumps(record)))]).payloads
    for payload in (kept, exported):
        assert payload.query == query
        assert payload.cookies == (("theme", "dark"), ("lang", "fr"))
