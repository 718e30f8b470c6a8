"""A copied curl request turned into the delivery vwh sends: exact, or changed as asked."""

from __future__ import annotations

import pytest

from tests.helpers import FIXTURES
from vwh.copied import delivery_from_curl, looks_like_curl, replace_origin, set_fields
from vwh.curl import CurlError, parse_curl
from vwh.errors import UsageError
from vwh.replay import Target
from vwh.webhook import TokenPlace

CURL = FIXTURES / "curl"


def test_a_curl_command_is_told_from_a_body() -> None:
    assert looks_like_curl((CURL / "placeholder.sh").read_bytes())  # after a comment line
    assert looks_like_curl(b"  curl \\\n -d '{}' http://x")
    assert not looks_like_curl(b'{"curl": 1}') and not looks_like_curl(b"curly")


def test_to_replaces_only_scheme_host_and_port() -> None:
    url = "https://hooks.example.test/a/b?x=1&y=%20#f"
    assert replace_origin(url, "http://127.0.0.1:8787") == "http://127.0.0.1:8787/a/b?x=1&y=%20#f"
    assert replace_origin(url, "http://[::1]:9/") == "http://[::1]:9/a/b?x=1&y=%20#f"
    with pytest.raises(UsageError, match="replaces only the scheme, host and port"):
        replace_origin(url, "http://127.0.0.1:8787/other")


def test_the_body_is_kept_byte_for_byte_unless_a_field_is_set() -> None:
    body = b'{ "a": "x",  "b": 1 }'
    assert set_fields(body, []) is body
    assert set_fields(body, ["a=y", "c:=true"]) == b'{"a":"y","b":1,"c":true}'


def test_a_copied_request_without_content_type_is_sent_as_json() -> None:
    request = delivery_from_curl(parse_curl("curl http://x/h -d '{\"a\":1}'"))
    assert request.headers == (("Content-Type", "application/json"),)
    assert request.method == "POST" and request.body == b'{"a":1}'


def test_the_token_options_replace_a_placeholder_secret_in_its_place() -> None:
    copied = parse_curl(
        "curl 'http://x/h?a=1&sig=PLACEHOLDER' -b 'theme=dark; s=PLACEHOLDER' -d '{}'"
    )
    query = delivery_from_curl(
        copied, target=Target(token="T", token_place=TokenPlace("query", "sig"))
    )
    assert query.url == "http://x/h?a=1&sig=T"
    cookie = delivery_from_curl(
        copied, target=Target(token="T", token_place=TokenPlace("cookie", "s"))
    )
    assert ("Cookie", "theme=dark; s=T") in cookie.headers


def test_a_request_that_is_not_a_json_post_is_refused_saying_why() -> None:
    with pytest.raises(CurlError, match="is a GET, not a POST"):
        delivery_from_curl(parse_curl("curl http://x/h"))
    with pytest.raises(CurlError, match=r"not a JSON object \(JSON array, not an object\)"):
        delivery_from_curl(parse_curl("curl http://x/h -d '[]'"))
