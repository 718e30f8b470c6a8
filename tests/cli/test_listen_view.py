"""How the listener shows requests: the live table, plain lines, ids."""

from __future__ import annotations

import json

from rich.console import Console

from tests.helpers import FIXTURES
from vwh.cli.listen_view import (
    history_table,
    ids_text,
    iso_time,
    json_shown,
    plain_line,
    request_table,
    shown,
)
from vwh.cli.show_view import request_details
from vwh.listener import ListenStats
from vwh.store import CapturedRequest
from vwh.webhook import body_ids

ORDER = json.loads((FIXTURES / "payloads" / "order.json").read_text())
USER = json.loads((FIXTURES / "payloads" / "user.json").read_text())


def _record(body: dict[str, str], **kw: object) -> CapturedRequest:
    fields: dict[str, object] = {
        "id": 7, "received_at": 1796005661.7237, "method": "POST", "path": "/hooks/vendasta",
        "ids": body_ids(body), "verdict": "ok", "status": 200, "body_size": 243, "attempt": 1,
        "first_seen_at": 1796005661.7237,
    }  # fmt: skip
    fields.update(kw)
    return CapturedRequest(**fields)  # type: ignore[arg-type]


def test_ids_show_each_id_once() -> None:
    assert ids_text(_record(ORDER)) == (
        "order=AG-7PQTGLLXQQ:ORD-S548DKHMKX account=AG-7PQTGLLXQQ"
        " automation=Automation-7a416085-5668-467c-98ad-f903ad1c4187"
    )
    user = ids_text(_record(USER))
    assert user.startswith("user=U-a6d23f70-fd09-43d2-91d2-a12c032caaa1 account=")
    assert "entity=" not in user


def test_compact_ids_drop_labels_and_the_account_inside_an_order_id() -> None:
    assert ids_text(_record(ORDER), compact=True) == (
        "AG-7PQTGLLXQQ:ORD-S548DKHMKX Automation-7a416085-5668-467c-98ad-f903ad1c4187"
    )


def test_plain_line_is_one_greppable_line() -> None:
    line = plain_line(_record(ORDER, attempt=3, received_at=1796005671.7237))
    assert line.startswith("2026-11-30T02:27:51.723Z #7 POST /hooks/vendasta token=ok status=200")
    assert "order=AG-7PQTGLLXQQ:ORD-S548DKHMKX" in line and line.endswith("resend=3")
    assert "\n" not in line


def test_iso_time_keeps_milliseconds_across_seconds() -> None:
    assert iso_time(1796005661.9999) == "2026-11-30T02:27:41.999Z"
    assert iso_time(1796005662.0005) == "2026-11-30T02:27:42.000Z"


def test_live_table_fits_an_order_id_in_100_columns() -> None:
    stats = ListenStats()
    records = [
        _record(ORDER, id=1, status=503),
        _record(ORDER, id=2, attempt=2, received_at=1796005662.0237),
        _record({}, id=3, verdict="wrong", status=401, error=None),
        _record({}, id=4, status=400, error="invalid JSON: Expecting value at line 1 column 13"),
    ]
    for record in records:
        stats.add(record)
    console = Console(width=100, record=True, color_system=None)
    console.print(request_table(records, stats))
    text = console.export_text()
    assert "AG-7PQTGLLXQQ:ORD-S548DKHMKX" in text
    assert "#2 +0.3s" in text
    assert "invalid JSON" in text
    assert text.rstrip().endswith("4 received, 1 accepted, 2 rejected, 1 resends")
    assert max(len(line) for line in text.splitlines()) <= 100


def test_untrusted_text_is_never_markup() -> None:
    record = _record({}, path="/[b]x[/b]", error="[link=x]y[/link]", status=400)
    console = Console(width=120, record=True, color_system=None)
    console.print(request_table([record], ListenStats()))
    text = console.export_text()
    assert "POST /[b]x[/b]" in text and "[link=x]y[/link]" in text


def test_the_live_table_and_plain_line_show_the_response_data_verdict() -> None:
    from vwh.store import ForwardResult

    fwd = ForwardResult(url="http://127.0.0.1:8000/hook", status=200, latency_ms=2.0, body=b"{}")
    record = _record(
        ORDER, forward=fwd, reaction="done", answer_check="dealId is missing: later \x1b[31m"
    )
    console = Console(width=160, record=True, color_system=None)
    console.print(request_table([record], ListenStats(forwarding=True), forwarding=True))
    table = console.export_text()
    assert "response data" in table and "dealId is missing" in table
    assert "\x1b" not in table  # inert: a handler cannot reach the terminal
    assert "response_data='dealId is missing: later \\\\x1b[31m'" in plain_line(record)


HOSTILE_IDS = {"orderId": "AG-1:ORD-\x1b[31mRED\x1b[0m", "accountId": "\x9b2J\u202e\ud800"}


def _rendered(renderable: object, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_hostile_cells_reach_the_tables_escaped() -> None:
    record = _record(
        HOSTILE_IDS, path="/\x1b]0;title\x07", error="\x1b]8;;https://e.example\x1b\\x"
    )
    for text in (
        _rendered(request_table([record], ListenStats())),
        _rendered(history_table([record])),
    ):
        for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\ud800"):
            assert raw not in text
        assert "\\x1b[31mRED" in text and "\\x9b2J\\u202e\\ud800" in text
        assert "/\\x1b]0;" in text


def test_a_record_that_cannot_be_drawn_is_a_note_and_the_next_is_drawn() -> None:
    broken = _record(ORDER, id=8, path=None, latency_ms="\x1b[31m", ids=None)
    good = _record(ORDER, id=9)
    table = _rendered(request_table([broken, good], ListenStats()))
    assert "#8 could not be shown" in table and "AG-7PQTGLLXQQ:ORD-S548DKHMKX" in table
    assert "could not be shown" in _rendered(history_table([broken, good]))
    line = shown(plain_line, broken)
    assert line.startswith("#8 could not be shown (") and "vwh show 8 --json" in line
    assert "\x1b" not in line
    assert json.loads(json_shown(broken))["id"] == 8
    assert json.loads(json_shown(good))["ids"] == body_ids(ORDER)


def test_show_lines_are_inert_and_a_body_too_deep_to_reindent_shows_as_it_came() -> None:
    deep = ("[" * 3000 + "]" * 3000).encode()
    record = _record({}, body_size=len(deep), headers=[("x-evil", "\x9b\x1b[2J")])
    record.body = deep
    lines = request_details(record)
    assert deep.decode() in lines
    assert "x-evil: \\x9b\\x1b[2J" in lines
    nested = _record({})
    nested.body = b'{"a": {"b": "\xe2\x80\xae\\u001b]0;t\\u0007\\n"}}'
    assert request_details(nested)[3:8] == [
        "{", '  "a": {', '    "b": "\\u202e\\u001b]0;t\\u0007\\n"', "  }", "}",
    ]  # fmt: skip
