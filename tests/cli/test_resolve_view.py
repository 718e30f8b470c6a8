"""What --resolve shows: names from the API are outside text, made inert everywhere."""

from __future__ import annotations

import json

from vwh.cli.resolve_view import cell_text, detail_lines, json_event, plain_line

HOSTILE = {
    "order": {"id": "AG-1:ORD-1", "status": "processing", "currency": "USD"},
    "account": {"id": "AG-1", "name": "Pub\x1b]8;;http://evil\x07\u202e\nrow 2"},
    "automation": {"id": "Automation-1", "error": "not found in prod: a demo automation?"},
}


def test_every_rendering_is_inert() -> None:
    rendered = [cell_text(HOSTILE), plain_line(7, HOSTILE), json_event(7, HOSTILE)]
    rendered += detail_lines(HOSTILE)
    for text in rendered:
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\n" not in text
    assert cell_text(HOSTILE).startswith("processing USD; Pub\\x1b]8;;http://evil\\x07\\u202e")
    assert cell_text(HOSTILE).endswith("; automation: not found in prod: a demo automation?")
    assert json.loads(json_event(7, HOSTILE)) == {"event": "resolved", "id": 7, "resolved": HOSTILE}


def test_the_follow_up_line_names_the_request_and_each_record() -> None:
    line = plain_line(7, HOSTILE)
    assert ' #7 resolved order="processing USD" account="Pub' in line
    assert line.endswith(' automation_error="not found in prod: a demo automation?"')
    assert detail_lines(None) == []
    assert detail_lines(HOSTILE)[1:3] == [
        "resolved (vwh listen --resolve):",
        "  order AG-1:ORD-1: status: processing, currency: USD",
    ]
