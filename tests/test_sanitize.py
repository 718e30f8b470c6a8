"""The one sanitiser: a table of hostile inputs and what each must become."""

from __future__ import annotations

import json
import re

import pytest

from vwh.sanitize import inert, inert_bytes, inert_lines, inert_preview, json_line

# Anything a terminal, a log reader or a viewer would act on instead of showing.
RAW = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

# (what came from outside, what `inert` makes of it)
HOSTILE = [
    ("nul\x00", "nul\\x00"),
    ("bell\x07", "bell\\x07"),
    ("back\x08space", "back\\x08space"),
    ("tab\there", "tab\\there"),
    ("lf\nforged", "lf\\nforged"),
    ("cr\rover", "cr\\rover"),
    ("crlf\r\n2026-01-01T00:00:00.000Z #9 GET /", "crlf\\r\\n2026-01-01T00:00:00.000Z #9 GET /"),
    ("vt\x0bff\x0c", "vt\\x0bff\\x0c"),
    ("fs\x1cgs\x1drs\x1eus\x1f", "fs\\x1cgs\\x1drs\\x1eus\\x1f"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # CSI colour
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear the screen
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # OSC title, BEL-terminated
    ("\x1b]0;pwned\x1b\\", "\\x1b]0;pwned\\x1b\\"),  # OSC title, ST-terminated
    (
        "\x1b]8;;https://e.example\x1b\\ok\x1b]8;;\x1b\\",
        "\\x1b]8;;https://e.example\\x1b\\ok\\x1b]8;;\\x1b\\",
    ),
    ("del\x7f", "del\\x7f"),
    ("\x80c1\x85\x9f", "\\x80c1\\x85\\x9f"),
    ("\x9b31mcsi", "\\x9b31mcsi"),  # C1 CSI: one character, same effect as ESC [
    ("\x9d0;title\x9c", "\\x9d0;title\\x9c"),  # C1 OSC and ST
    ("lone \ud800 high", "lone \\ud800 high"),
    ("lone \udfff low", "lone \\udfff low"),
    ("low \udfff then high \ud800", "low \\udfff then high \\ud800"),
    ("invoice\u202efdp.exe", "invoice\\u202efdp.exe"),  # right-to-left override
    ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
    ("\u200f\u200e\u061c", "\\u200f\\u200e\\u061c"),  # direction marks
    ("line\u2028sep\u2029para", "line\\u2028sep\\u2029para"),
]

NORMAL = [
    "plain ascii, with punctuation: {}[]()<>&'\"\\ #%",
    "Crème brûlée à la carte, Ærøskøbing, naïve",
    "emoji 🎉 👩‍💻 🇨🇦",
    "中文 日本語 한국어",
    "עברית and العربية as they are",  # right-to-left text itself is fine; overrides are not
    "\u00a0non-breaking\u00a0space",
]


@pytest.mark.parametrize(("text", "expected"), HOSTILE)
def test_hostile_text_becomes_visible_escapes(text: str, expected: str) -> None:
    shown = inert(text)
    assert shown == expected
    assert not RAW.search(shown)
    shown.encode("utf-8")  # always encodable: a lone surrogate can no longer stop a write
    assert inert(shown) == shown  # nothing left to escape


@pytest.mark.parametrize(("text", "expected"), HOSTILE)
def test_json_line_is_inert_valid_and_equal(text: str, expected: str) -> None:
    document = {"value": text, "list": [text, 1, None], text: True}
    line = json_line(document)
    assert "\n" not in line and not RAW.search(line)
    line.encode("utf-8")
    assert json.loads(line) == document


@pytest.mark.parametrize("text", NORMAL)
def test_normal_text_is_unchanged(text: str) -> None:
    assert inert(text) == text
    assert inert_lines(text) == [text]
    assert inert_bytes(text.encode()) == text
    assert json.loads(json_line({"v": text})) == {"v": text}
    assert json_line(text) == json.dumps(text, ensure_ascii=False)  # readable, not \u-escaped


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("a\nb", ["a", "b"]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\n\nb\n", ["a", "", "b"]),
        ("", [""]),
        ("bare\rcr", ["bare\\rcr"]),  # a CR alone would overwrite the line: shown
        ("\x1b]0;t\x07\n\x9b2J", ["\\x1b]0;t\\x07", "\\x9b2J"]),
        ("vt\x0bfs\x1cnel\x85ls\u2028", ["vt\\x0bfs\\x1cnel\\x85ls\\u2028"]),  # not line breaks
    ],
)
def test_inert_lines_splits_on_newlines_only(text: str, lines: list[str]) -> None:
    assert inert_lines(text) == lines


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x1b[31m", "\\x1b[31m"),
        (b"\x9b31m", "\\x9b31m"),  # not UTF-8: the byte
        (b"\xc2\x9b31m", "\\x9b31m"),  # UTF-8 C1: the character
        (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),  # an encoded surrogate is not UTF-8
        (b"caf\xc3\xa9 \xff", "café \\xff"),
        (b"a\r\nb", "a\\r\\nb"),
    ],
)
def test_inert_bytes(data: bytes, expected: str) -> None:
    assert inert_bytes(data) == expected


def test_json_line_of_what_json_cannot_name() -> None:
    """Values JSON has no type for are shown as text, never a crash."""
    assert json.loads(json_line({"b": b"\x1b", "n": 1.5})) == {"b": "b'\\x1b'", "n": 1.5}


def test_a_preview_is_one_inert_line_cut_to_its_limit() -> None:
    hostile = b'{"a":\n  1,\t"b": "\x1b[31mred\x00\xc2\x9b\xff"}'
    assert inert_preview(hostile) == '{"a": 1, "b": "\\x1b[31mred\\x00\\x9b\\xff"}'
    assert inert_preview(b"x" * 100, 10) == "x" * 9 + "…"
    assert inert_preview(None) == inert_preview(b"") == ""
