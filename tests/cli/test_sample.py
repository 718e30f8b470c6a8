"""`vwh sample` as a user runs it."""

from __future__ import annotations

import json
import re

from tests.fakes.vendasta import RunningFake
from tests.helpers import invoke, run_vwh
from vwh.errors import ExitCode
from vwh.samples import SampleOptions, sample_bytes


def test_prints_the_sample_bytes_that_a_file_would_hold() -> None:
    r = invoke("sample", "order", "--seed", "7")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.encode() == sample_bytes("order", SampleOptions(seed=7))


def test_a_real_process_writes_json_with_fresh_ids() -> None:
    first, second = run_vwh("sample", "user"), run_vwh("sample", "user")
    assert first.returncode == 0 and second.returncode == 0
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert re.fullmatch(r"U-[0-9a-f-]{36}", a["userId"]) and a["userId"] != b["userId"]


def test_pins_and_seed() -> None:
    args = ("sample", "account", "--partner", "ABC", "--market", "m1", "--account", "AG-X1")
    body = json.loads(invoke(*args).stdout)
    assert (body["partnerId"], body["marketId"], body["accountId"]) == ("ABC", "m1", "AG-X1")
    assert invoke(*args, "--seed", "3").stdout == invoke(*args, "--seed", "3").stdout


def test_bad_kind_or_pin_is_one_line_exit_2() -> None:
    kind = invoke("sample", "invoice")
    assert kind.exit_code == 2 and kind.stdout == ""
    assert kind.stderr == (
        "vwh: error: unknown sample kind 'invoice': choose one of order, account, user\n"
    )
    pin = invoke("sample", "order", "--partner", "lower")
    assert pin.exit_code == 2 and pin.stderr.startswith("vwh: error: bad partner id 'lower'")


def test_step_and_fields_as_a_user_types_them() -> None:
    send = json.loads(invoke("sample", "order", "--seed", "1").stdout)
    trigger = json.loads(invoke("sample", "order", "--seed", "1", "--step", "trigger").stdout)
    assert "automationId" not in send and trigger["automationId"].startswith("Automation-")
    custom = invoke("sample", "user", "--field", "plan=gold", "--field", "seats:=3")
    assert custom.exit_code == 0, custom.stderr
    assert json.loads(custom.stdout) | {"plan": "gold", "seats": 3} == json.loads(custom.stdout)
    nested = invoke("sample", "order", "--field", 'plan:={"tier": "gold"}')
    assert nested.exit_code == 2 and nested.stdout == ""
    assert nested.stderr.startswith("vwh: error: bad --field")
    assert "would nest" in nested.stderr and len(nested.stderr.splitlines()) == 1
    bad_step = invoke("sample", "order", "--step", "other")
    assert bad_step.exit_code == 2 and "unknown step 'other'" in bad_step.stderr


ORDER_ID = "AG-7PQTGLLXQQ:ORD-S548DKHMKX"
USER_ID = "U-a6d23f70-fd09-43d2-91d2-a12c032caaa1"


def test_from_a_real_order(vendasta: RunningFake) -> None:
    r = invoke("sample", "order", "--from", ORDER_ID, "--step", "trigger")
    assert r.exit_code == 0, r.stderr
    body = json.loads(r.stdout)
    assert (body["orderId"], body["entityId"], body["accountId"]) == (
        ORDER_ID, ORDER_ID, "AG-7PQTGLLXQQ",
    )  # fmt: skip
    assert (body["partnerId"], body["marketId"]) == ("9YW9", "saskatoon")
    assert r.stderr == (
        "real (from the API): accountId, entityId, marketId, orderId, partnerId;"
        " sample: automationId\n"
    )
    assert r.stdout.endswith("}\n") and r.stdout.startswith("{\n  ")  # as `vwh sample` writes


def test_from_a_real_order_for_the_send_step_is_all_real(vendasta: RunningFake) -> None:
    """The default step's body has no automationId: every field then comes from the API."""
    r = invoke("sample", "order", "--from", ORDER_ID)
    assert r.exit_code == 0, r.stderr
    body = json.loads(r.stdout)
    assert "automationId" not in body
    assert (body["orderId"], body["partnerId"], body["marketId"]) == (ORDER_ID, "9YW9", "saskatoon")
    assert r.stderr == (
        "real (from the API): accountId, entityId, marketId, orderId, partnerId; sample: none\n"
    )
    custom = invoke("sample", "order", "--from", ORDER_ID, "--field", "plan=gold")
    assert json.loads(custom.stdout)["plan"] == "gold" and "sample: plan" in custom.stderr


def test_from_a_real_account_and_user_with_json_meta(vendasta: RunningFake) -> None:
    account = json.loads(
        invoke(
            "sample", "account", "--from", "AG-7PQTGLLXQQ", "--json-meta", "--step", "trigger"
        ).stdout
    )
    assert account["body"]["entityId"] == "AG-7PQTGLLXQQ"
    assert account["real"] == ["accountId", "entityId", "marketId", "partnerId"]
    assert account["sample"] == ["automationId"] and account["notes"] == []
    user = json.loads(invoke("sample", "user", "--from", USER_ID, "--json-meta").stdout)
    assert user["body"]["userId"] == USER_ID and user["body"]["marketId"] == "saskatoon"


def test_an_unreadable_account_keeps_sample_values_and_says_so(vendasta: RunningFake) -> None:
    token = vendasta.fake.issue_token(["order:read"])
    r = invoke("sample", "order", "--from", ORDER_ID, "--access-token", token, "--market", "m1",
               "--step", "trigger")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["orderId"] == ORDER_ID and body["marketId"] == "m1"
    assert "warning: could not read the sales account AG-7PQTGLLXQQ:" in r.stderr
    assert "lacks the scope" in r.stderr
    assert "sample: automationId, marketId, partnerId" in r.stderr


def test_from_errors_are_the_fetch_ones(vendasta: RunningFake) -> None:
    missing = invoke("sample", "order", "--from", "AG-7PQTGLLXQQ:ORD-0000000000")
    assert missing.exit_code == ExitCode.NOT_FOUND and missing.stdout == ""
    assert missing.stderr.startswith("vwh: error: no order AG-7PQTGLLXQQ:ORD-0000000000")
    shape = invoke("sample", "order", "--from", "AG-7PQTGLLXQQ")
    assert shape.exit_code == ExitCode.USAGE
    assert "is not an order id (AG-...:ORD-...)" in shape.stderr
    assert invoke("sample", "order", "--json-meta").exit_code == ExitCode.USAGE
    both = invoke("sample", "account", "--from", "AG-7PQTGLLXQQ", "--account", "AG-X")
    assert both.exit_code == ExitCode.USAGE


def test_compact_is_one_line_with_the_same_body() -> None:
    """`--compact` builds JSON-lines files: one body a line, equal in value."""
    r = invoke("sample", "user", "--seed", "5", "--compact")
    assert r.exit_code == 0 and r.stdout.count("\n") == 1 and r.stdout.endswith("}\n")
    assert json.loads(r.stdout) == json.loads(invoke("sample", "user", "--seed", "5").stdout)
    assert " " not in r.stdout
