"""Flat body fields from the command line: strings, typed scalars, never nesting."""

from __future__ import annotations

import pytest

from vwh.errors import UsageError
from vwh.fields import parse_field, parse_fields


def test_strings_and_typed_scalars() -> None:
    assert parse_field("plan=gold=1", "--field") == ("plan", "gold=1")
    assert parse_field("seats:=3", "--field") == ("seats", 3)
    assert parse_field("on:=true", "--set") == ("on", True)
    assert parse_field("gone:=null", "--set") == ("gone", None)
    assert parse_fields(["a=1", "a=2"], "--set") == {"a": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("noequals", "expected KEY=VALUE"),
        ("=x", "expected KEY=VALUE"),
        ("a:={}", "would nest"),
        ("a:=[1]", "would nest"),
        ("a:=nope", "after ':=' comes JSON"),
    ],
)
def test_what_cannot_be_a_flat_field_is_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_field(text, "--field")
