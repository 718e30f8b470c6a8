"""Sample bodies: Vendasta's id shapes, pinned values, and reproducible seeds."""

from __future__ import annotations

import json
import re

import pytest

from vwh.errors import UsageError
from vwh.samples import KINDS, SampleOptions, sample_body, sample_bytes

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
ACCOUNT = r"AG-[A-Z0-9]{10}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_ids_in_vendasta_shapes(kind: str) -> None:
    body = sample_body(kind, SampleOptions(step="trigger"))
    assert all(isinstance(v, str) for v in body.values())
    assert re.fullmatch(ACCOUNT, body["accountId"])
    assert re.fullmatch(f"Automation-{UUID}", body["automationId"])
    assert re.fullmatch(r"[A-Z0-9]{2,6}", body["partnerId"])
    assert body["marketId"] == "default"


@pytest.mark.parametrize("kind", KINDS)
def test_the_send_a_webhook_step_is_the_default_and_has_no_automation_id(kind: str) -> None:
    send, trigger = (sample_body(kind, SampleOptions(seed=5, step=s)) for s in ("send", "trigger"))
    assert sample_body(kind, SampleOptions(seed=5)) == send
    assert "automationId" not in send and send == {
        k: v for k, v in trigger.items() if k != "automationId"
    }


def test_custom_fields_are_added_flat_and_nesting_is_refused() -> None:
    body = sample_body("order", SampleOptions(fields=(("plan", "gold"), ("seats", 3))))
    assert body["plan"] == "gold" and body["seats"] == 3
    with pytest.raises(UsageError, match="would nest"):
        SampleOptions(fields=(("plan", {"a": 1}),)).checked()


def test_an_order_names_its_account_in_the_order_id() -> None:
    body = sample_body("order")
    assert re.fullmatch(f"{body['accountId']}:ORD-[A-Z0-9]{{10}}", body["orderId"])
    assert body["entityId"] == body["orderId"]


def test_a_user_sample_carries_a_user_id_and_an_account_sample_none() -> None:
    user = sample_body("user")
    assert re.fullmatch(f"U-{UUID}", user["userId"]) and user["entityId"] == user["userId"]
    account = sample_body("account")
    assert account["entityId"] == account["accountId"]
    assert "orderId" not in account and "userId" not in account


def test_ids_are_fresh_unless_seeded() -> None:
    assert sample_body("order") != sample_body("order")
    seeded = SampleOptions(seed=42)
    assert sample_bytes("order", seeded) == sample_bytes("order", seeded)
    assert sample_bytes("order", seeded) != sample_bytes("order", SampleOptions(seed=43))


def test_pinned_values_are_used() -> None:
    options = SampleOptions(partner="ABC", market="eu-west", account="AG-1234567").checked()
    body = sample_body("order", options)
    assert (body["partnerId"], body["marketId"], body["accountId"]) == (
        "ABC",
        "eu-west",
        "AG-1234567",
    )
    assert body["orderId"].startswith("AG-1234567:ORD-")


def test_bytes_are_pretty_json_with_a_final_newline() -> None:
    raw = sample_bytes("account", SampleOptions(seed=1))
    assert raw.endswith(b"}\n") and raw.isascii()
    assert json.loads(raw) == sample_body("account", SampleOptions(seed=1))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SampleOptions(partner="abc"), "bad partner id 'abc'"),
        (SampleOptions(partner="TOOLONG1"), "bad partner id"),
        (SampleOptions(account="1234567"), "bad account id '1234567'"),
        (SampleOptions(market=" "), "bad market id"),
    ],
)
def test_pins_in_the_wrong_shape_are_refused(options: SampleOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options.checked()


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(UsageError, match="choose one of order, account, user"):
        sample_body("invoice")


def _api_doc(name: str) -> dict:
    from tests.helpers import FIXTURES

    return json.loads((FIXTURES / "api" / f"{name}.json").read_text())


def test_a_body_from_real_records_says_which_fields_are_real() -> None:
    from vwh.samples import body_from_records

    order_id = "AG-7PQTGLLXQQ:ORD-S548DKHMKX"
    got = body_from_records(
        "order", order_id, order=_api_doc("order"), account=_api_doc("account"),
        options=SampleOptions(seed=1, step="trigger"),
    )  # fmt: skip
    assert got.body == {
        "accountId": "AG-7PQTGLLXQQ",
        "automationId": sample_body("order", SampleOptions(seed=1, step="trigger"))["automationId"],
        "entityId": order_id,
        "marketId": "saskatoon",
        "orderId": order_id,
        "partnerId": "9YW9",
    }
    assert got.real == ["accountId", "entityId", "marketId", "orderId", "partnerId"]
    assert got.sampled == ["automationId"]


def test_what_no_record_gives_keeps_the_samples_value() -> None:
    from vwh.samples import body_from_records

    user_id = "U-a6d23f70-fd09-43d2-91d2-a12c032caaa1"
    got = body_from_records(
        "user", user_id, user=_api_doc("user"), options=SampleOptions(market="m9")
    )
    assert (got.body["userId"], got.body["entityId"]) == (user_id, user_id)
    assert (got.body["partnerId"], got.body["accountId"]) == ("9YW9", "AG-7PQTGLLXQQ")
    assert got.body["marketId"] == "m9"  # the account was not read: the option's value
    assert "marketId" in got.sampled and "partnerId" in got.real
