from __future__ import annotations

import pytest

from vwh.webhook import (
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    InvalidBody,
    Reaction,
    TokenVerdict,
    body_ids,
    fingerprint,
    id_kind,
    is_secret_name,
    mask_headers,
    mask_query,
    mask_secret,
    parse_body,
    parse_json,
    token_bytes,
    tokens_match,
    vendasta_reaction,
    verify_token,
)


def test_tokens_match_only_on_equal_bytes() -> None:
    assert tokens_match(b"s3cret", b"s3cret")
    assert not tokens_match(b"s3cret", b"s3creT")
    assert not tokens_match(b"s3cret", b"s3cret ")
    assert not tokens_match(b"s3cret", None)
    assert not tokens_match(b"s3cret", b"\xff")  # undecodable header bytes do not crash
    # A non-ASCII token: the header's raw bytes against the token's UTF-8 bytes.
    assert tokens_match(token_bytes("Tö"), "Tö".encode())
    assert not tokens_match(token_bytes("Tö"), "Tö".encode("latin-1"))
    # A byte that is not UTF-8 reaches Python's argv as a lone surrogate: its byte again.
    assert token_bytes("\udcff") == b"\xff"


@pytest.mark.parametrize(
    ("expected", "received", "verdict"),
    [
        (b"t", b"t", TokenVerdict.OK),
        (b"t", b"u", TokenVerdict.WRONG),
        (b"t", None, TokenVerdict.MISSING),
        (None, b"anything", TokenVerdict.NOT_CHECKED),
        (None, None, TokenVerdict.NOT_CHECKED),
    ],
)
def test_verify_token(
    expected: bytes | None, received: bytes | None, verdict: TokenVerdict
) -> None:
    assert verify_token(expected, received) is verdict


@pytest.mark.parametrize(
    "name",
    [
        "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key",
        "X-Auth-Token", "Stripe-Signature", "X-Hub-Signature-256", "X-Client-Secret",
        "Verifier-Token", "token", "access_token", "api_key", "apikey", "signature",
        "secret", "password", "client_secret", "X-Amz-Security-Token", "key",
    ],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name) and is_secret_name(name.upper())


@pytest.mark.parametrize(
    "name",
    ["Content-Type", "User-Agent", "Host", "X-Request-Id", "X-Idempotency-Key", "Via", "orderId"],
)
def test_names_that_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_a_configured_name_is_secret_too() -> None:
    assert not is_secret_name("X-Vendasta-Check")
    assert is_secret_name("X-Vendasta-Check", frozenset({"x-vendasta-check"}))


def test_mask_query_masks_secret_values_and_keeps_the_rest_byte_for_byte() -> None:
    query = "a=1&token=abcdefghijklmnop&b=%20x+y&API_KEY=zz&sig&access%5Ftoken=q1w2e3&c=&&d"
    masked = mask_query(query)
    assert masked == (
        "a=1&token=••••op (16 chars)&b=%20x+y&API_KEY=•••• (2 chars)&sig"
        "&access%5Ftoken=•••• (6 chars)&c=&&d"
    )
    assert mask_query("a=1&b=2") == "a=1&b=2" and mask_query("plain") == "plain"
    assert mask_query("v=zz&x=q9", frozenset({"x"})) == "v=zz&x=•••• (2 chars)"


@pytest.mark.parametrize("secret", ["s3cret", "a-much-longer-verifier-token-value", "x"])
def test_mask_secret_never_shows_the_secret(secret: str) -> None:
    masked = mask_secret(secret)
    assert secret not in masked
    assert f"{len(secret)} chars" in masked


def test_mask_headers_masks_token_and_credentials_whatever_the_case() -> None:
    headers = [
        ("verifier-token", "tok-123456789"),
        ("X-Signature", "sig-abcdefghijk"),
        ("Authorization", "Bearer abc"),
        ("Content-Type", "application/json"),
    ]
    masked = dict(mask_headers(headers, ["x-signature"]))
    assert "tok-123456789" not in masked["verifier-token"]
    assert "sig-abcdefghijk" not in masked["X-Signature"]
    assert "abc" not in masked["Authorization"]
    assert masked["Content-Type"] == "application/json"


def test_parse_body_accepts_an_object_with_unknown_fields() -> None:
    assert parse_body(b'{"orderId": "AG-1:ORD-2", "newField": [1]}')["newField"] == [1]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty body"),
        (b"  \n", "empty body"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"orderId": ', "invalid JSON"),
        (b"[1, 2]", "JSON array, not an object"),
        (b'"text"', "JSON string, not an object"),
        (b"42", "JSON number, not an object"),
        (b"null", "JSON null, not an object"),
        (b"true", "JSON boolean, not an object"),
    ],
)
def test_parse_body_rejects_what_is_not_an_object(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidBody, match=message):
        parse_body(raw)


def test_body_ids_keeps_known_ids_in_reading_order() -> None:
    body = {"partnerId": "9YW9", "orderId": "AG-1:ORD-2", "other": "x", "userId": ""}
    assert list(body_ids(body)) == ["orderId", "partnerId"]


def test_fingerprint_is_of_the_exact_bytes() -> None:
    assert fingerprint(b'{"a":1}') == fingerprint(b'{"a":1}')
    assert fingerprint(b'{"a":1}') != fingerprint(b'{"a": 1}')


@pytest.mark.parametrize(
    ("status", "reaction"),
    [
        (200, Reaction.DONE),
        (204, Reaction.DONE),
        (301, Reaction.DROPPED),
        (400, Reaction.DROPPED),
        (401, Reaction.DROPPED),
        (499, Reaction.DROPPED),
        (500, Reaction.RESEND),
        (503, Reaction.RESEND),
        (None, Reaction.RESEND),
    ],
)
def test_vendasta_reaction(status: int | None, reaction: Reaction) -> None:
    assert vendasta_reaction(status) is reaction


@pytest.mark.parametrize(
    ("identifier", "kind"),
    [
        ("AG-7PQTGLLXQQ:ORD-S548DKHMKX", "order"),
        ("U-a6d23f70-fd09-43d2-91d2-a12c032caaa1", "user"),
        ("Automation-7a416085-5668-467c-98ad-f903ad1c4187", "automation"),
        ("AG-7PQTGLLXQQ", "account"),
        ("9YW9", None),
    ],
)
def test_id_kind(identifier: str, kind: str | None) -> None:
    assert id_kind(identifier) == kind


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[" * 100_000, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, f"JSON nested deeper than {MAX_JSON_DEPTH}"),
        (b"[" * 100_000 + b'"', f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"a":' * 129 + b"1" + b"}" * 129, f"JSON nested deeper than {MAX_JSON_DEPTH}"),
        (b'{"n": ' + b"7" * 5000 + b"}", f"number with more than {MAX_NUMBER_DIGITS} digits"),
        (b'{"n": 0.' + b"1" * 700 + b"}", f"number with more than {MAX_NUMBER_DIGITS} digits"),
        (b"[1}" * 300, "invalid JSON"),
    ],
)
def test_parsing_is_bounded_and_never_raises_anything_else(body: bytes, error: str) -> None:
    with pytest.raises(InvalidBody, match=error):
        parse_body(body)


def test_bounds_do_not_refuse_what_only_looks_deep_or_long() -> None:
    assert parse_json(b'{"a":' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH)
    # Brackets and digits inside strings are text, not structure or numbers.
    assert parse_body(b'{"a": "' + b"[" * 5000 + b'", "b": "' + b"9" * 5000 + b'"}')
    assert parse_body(b'{"a": "\\"' + b", [" * 200 + b'"}')  # an escaped quote
    assert len(parse_body(b'{"a": [' + b"[]," * 5000 + b"1]}")["a"]) == 5001
    assert parse_body(b'{"n": ' + b"7" * MAX_NUMBER_DIGITS + b"}")


# The Send a webhook step's places for a secret: query parameters and cookies.
def test_mask_cookie_masks_secret_cookies_and_keeps_the_rest() -> None:
    from vwh.webhook import cookie_names, mask_cookie

    header = "theme=dark; session=abcdefghijkl; vwh_sig=s3cret-value-1; lang=en"
    masked = mask_cookie(header, frozenset({"vwh_sig"}))
    assert masked == "theme=dark; session=••••kl (12 chars); vwh_sig=••••-1 (14 chars); lang=en"
    assert cookie_names(masked) == ["theme", "session", "vwh_sig", "lang"]
    assert mask_cookie("a=1; b=2") == "a=1; b=2"


def test_the_token_is_read_from_the_query_or_a_cookie_as_bytes() -> None:
    from vwh.webhook import find_cookie, find_query_value

    assert find_query_value(b"a=1&sig=t%C3%B6+k&sig=other", "sig") == "tö k".encode()
    assert find_query_value(b"a=1&sig", "sig") == b""
    assert find_query_value(b"a=1", "sig") is None
    headers = [(b"x", b"y"), (b"cookie", b"a=1; s=tok; s=2")]
    assert find_cookie(headers, b"s") == b"tok" and find_cookie(headers, b"z") is None


def test_one_token_place_at_a_time() -> None:
    import pytest

    from vwh.errors import UsageError
    from vwh.webhook import TokenPlace, token_place

    assert token_place() == TokenPlace("header", "Verifier-Token")
    assert token_place(query="sig").describe() == "query parameter sig"
    assert token_place(cookie="s").describe() == "cookie s"
    with pytest.raises(UsageError, match="--token-header and --token-cookie"):
        token_place("X", None, "s")
    with pytest.raises(UsageError, match="bad --token-query name"):
        token_place(query="a&b")
