from __future__ import annotations

import pytest

from vwh.webhook import (
    InvalidBody,
    Reaction,
    TokenVerdict,
    body_ids,
    fingerprint,
    id_kind,
    mask_headers,
    mask_secret,
    parse_body,
    tokens_match,
    vendasta_reaction,
    verify_token,
)


def test_tokens_match_only_on_equal_tokens() -> None:
    assert tokens_match("s3cret", "s3cret")
    assert not tokens_match("s3cret", "s3creT")
    assert not tokens_match("s3cret", "s3cret ")
    assert not tokens_match("s3cret", None)
    assert not tokens_match("s3cret", "\udcff")  # undecodable header bytes do not crash


@pytest.mark.parametrize(
    ("expected", "received", "verdict"),
    [
        ("t", "t", TokenVerdict.OK),
        ("t", "u", TokenVerdict.WRONG),
        ("t", None, TokenVerdict.MISSING),
        (None, "anything", TokenVerdict.NOT_CHECKED),
        (None, None, TokenVerdict.NOT_CHECKED),
    ],
)
def test_verify_token(expected: str | None, received: str | None, verdict: TokenVerdict) -> None:
    assert verify_token(expected, received) is verdict


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
