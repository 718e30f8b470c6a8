"""The replay target: its options checked, its token masked, its requests built."""

from __future__ import annotations

import pytest

from vwh.errors import UsageError
from vwh.payloads import Payload
from vwh.replay import DEFAULT_TARGET, Target

KEPT = Payload(
    "#1",
    b"{}",
    method="PUT",
    headers=(("User-Agent", "Vendasta/1.0"), ("X-Trace", "kept"), ("X-Sig", "old")),
)


def test_options_are_checked_as_typed() -> None:
    target = Target.from_options(DEFAULT_TARGET, "", "X-Sig", ["X-A: 1", "X-B:2"])
    assert target.token is None and target.token_header == "X-Sig"
    assert target.headers == (("X-A", "1"), ("X-B", "2"))
    with pytest.raises(UsageError, match="bad URL 'localhost:8787'"):
        Target.from_options("localhost:8787")
    with pytest.raises(UsageError, match="bad header 'X-A 1'"):
        Target.from_options(DEFAULT_TARGET, header_texts=["X-A 1"])
    with pytest.raises(UsageError, match="bad header"):
        Target.from_options(DEFAULT_TARGET, token_header="Two Words")


def test_describe_masks_the_token() -> None:
    text = Target(token="a-very-secret-token").describe()
    assert "a-very-secret-token" not in text and "Verifier-Token: " in text
    assert Target().describe() == f"{DEFAULT_TARGET} (no token)"


def test_kept_headers_only_when_asked_and_never_the_token() -> None:
    target = Target("http://h/", "now", "X-Sig", (("X-Trace", "given"),))
    plain = target.request_for(KEPT)
    assert plain.method == "PUT" and plain.label == "#1"
    assert ("X-Sig", "now") in plain.headers and ("X-Trace", "given") in plain.headers
    assert ("User-Agent", "Vendasta/1.0") not in plain.headers
    kept = target.request_for(KEPT, keep_headers=True)
    assert [h for h in kept.headers if h[0] in ("User-Agent", "X-Trace", "X-Sig")] == [
        ("X-Sig", "now"),
        ("User-Agent", "Vendasta/1.0"),
        ("X-Trace", "given"),
    ]


@pytest.mark.parametrize(
    ("to", "path", "query", "url"),
    [
        ("http://h:1/", "/hooks/a b", "x=1", "http://h:1/hooks/a%20b?x=1"),
        ("http://h:1", "/hooks", "", "http://h:1/hooks"),
        ("http://h:1/api/", "/hooks", "", "http://h:1/api/hooks"),
        ("http://h:1/exact?k=2", "/hooks", "a=1", "http://h:1/exact?k=2&a=1"),
        ("http://h:1/exact", None, "", "http://h:1/exact"),
    ],
)
def test_an_exported_request_keeps_its_path_and_query_as_forwarding_does(
    to: str, path: str | None, query: str, url: str
) -> None:
    payload = Payload("x:1", b"{}", method="PATCH", path=path, query=query)
    request = Target(to).request_for(payload)
    assert (request.url, request.method) == (url, "PATCH")
