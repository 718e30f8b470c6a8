"""What is kept of a request: secrets masked and the token judged, by one rule for
requests read whole and for those the HTTP parser refused."""

from __future__ import annotations

from typing import Any

import pytest

from vwh.intake import Intake
from vwh.receiver_settings import ReceiverSettings
from vwh.webhook import TokenPlace

TOKEN = "s3cret-verifier-token"


def scope(query: bytes = b"", *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/hooks",
        "raw_path": b"/hooks",
        "query_string": query,
        "headers": list(headers),
    }


def test_the_token_header_is_judged_as_bytes_and_every_secret_value_masked() -> None:
    intake = Intake(ReceiverSettings(token=TOKEN))
    record, declared = intake.record(
        scope(
            b"a=1&access_token=abcdefghijkl",
            (b"verifier-token", TOKEN.encode()),
            (b"x-auth-token", b"another-secret-value"),
            (b"content-length", b"2"),
            (b"x-plain", b"kept as is"),
        )
    )
    assert record.verdict == "ok" and declared == 2
    kept = dict(record.headers)
    assert TOKEN not in str(record.headers) and "another-secret-value" not in str(record.headers)
    assert kept["verifier-token"].startswith("••••") and kept["x-plain"] == "kept as is"
    assert record.token_masked.startswith("••••") and TOKEN not in record.token_masked
    assert record.query.startswith("a=1&access_token=") and "abcdefghijkl" not in record.query


@pytest.mark.parametrize(
    ("place", "query", "cookie", "verdict"),
    [
        (TokenPlace("query", "sig"), b"sig=" + TOKEN.encode(), b"", "ok"),
        (TokenPlace("query", "sig"), b"sig=nope", b"", "wrong"),
        (TokenPlace("cookie", "vwh_sig"), b"", b"theme=dark; vwh_sig=" + TOKEN.encode(), "ok"),
        (TokenPlace("cookie", "vwh_sig"), b"", b"theme=dark", "missing"),
    ],
    ids=["query", "query-wrong", "cookie", "cookie-missing"],
)
def test_the_token_is_found_in_its_place_and_nowhere_else(
    place: TokenPlace, query: bytes, cookie: bytes, verdict: str
) -> None:
    intake = Intake(ReceiverSettings(token=TOKEN, token_place=place))
    headers = [(b"verifier-token", TOKEN.encode())]  # the default place, not the chosen one
    if cookie:
        headers.append((b"cookie", cookie))
    record, _ = intake.record(scope(query, *headers))
    assert record.verdict == verdict
    assert TOKEN not in record.query and TOKEN not in str(record.headers)
    if cookie:
        assert "theme=dark" in dict(record.headers)["cookie"]  # other cookies stay readable


def test_a_refused_head_is_masked_and_judged_as_a_whole_request_would_be() -> None:
    intake = Intake(ReceiverSettings(token=TOKEN))
    raw = (
        b"POST /hooks?access_token=abcdefghijkl HTTP/1.1\r\nVerifier-Token: "
        + TOKEN.encode()
        + b"\r\nX-Auth-Token: another-secret-value\r\nX-Bad: \x00\r\n\r\n"
    )
    refused = intake.refused(raw, len(raw), 400, "malformed HTTP: invalid header")
    whole, _ = intake.record(
        scope(
            b"access_token=abcdefghijkl",
            (b"verifier-token", TOKEN.encode()),
            (b"x-auth-token", b"another-secret-value"),
        )
    )
    assert refused.verdict == whole.verdict == "ok"
    assert refused.query == whole.query
    assert dict(refused.headers)["x-auth-token"] == dict(whole.headers)["x-auth-token"]
    assert refused.body is not None
    for secret in (TOKEN.encode(), b"another-secret-value", b"abcdefghijkl"):
        assert secret not in refused.body  # the raw bytes kept are masked too
    assert (refused.status, refused.error, refused.method, refused.path) == (
        400,
        "malformed HTTP: invalid header",
        "POST",
        "/hooks",
    )
