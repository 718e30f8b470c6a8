"""`vwh sample` as a user runs it."""

from __future__ import annotations

import json
import re

from tests.helpers import invoke, run_vwh
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
