"""The check suite as a library: selection, the deliveries it plans, the verdicts, and
whole runs against handlers in-process (httpx's ASGI transport, no sockets)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from typing import Any

import pytest
from starlette.applications import Starlette

from tests import handlers
from tests.handlers import PATH, TOKEN
from tests.helpers import FIXTURES, ThreadedServer, free_port
from vwh.check import (
    CHECK_NAMES,
    UNKNOWN_FIELDS,
    CheckConfig,
    CheckReport,
    CheckSpec,
    Result,
    ensure_reachable,
    fresh_ids,
    judge,
    judge_timing,
    plan_deliveries,
    run_checks,
    select_checks,
)
from vwh.delivery import Attempt
from vwh.errors import ExitCode, UnreachableError, UsageError
from vwh.outbound import OutboundClient

URL = "http://handler.test" + PATH
ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()


def config(**kw: Any) -> CheckConfig:
    return CheckConfig(**({"url": URL, "token": TOKEN} | kw))


def answer(status: int | None, latency_ms: float = 5.0, *, timed_out: bool = False) -> Attempt:
    error = "no answer within 1s" if timed_out else None if status else "connection reset"
    return Attempt(1, 0.0, status, latency_ms, error, timed_out=timed_out)


def run_against(app: Starlette, cfg: CheckConfig) -> CheckReport:
    """The checks against `app` on a real server (cfg's URL points there)."""
    with ThreadedServer(app) as server:
        cfg = dataclasses.replace(cfg, url=server.url + PATH)

        async def go() -> CheckReport:
            async with OutboundClient(connections=1) as client:
                return await run_checks(cfg, client)

        return asyncio.run(go())


def results(report: CheckReport) -> dict[str, str]:
    return {r.spec.name: r.result.value for r in report.results}


# Selection


def test_select_checks_takes_names_numbers_and_commas_in_suite_order() -> None:
    assert select_checks() == CHECK_NAMES
    assert select_checks(["repeat,1", " Bad-JSON "]) == ("valid", "bad-json", "repeat")
    assert select_checks(skip=["timing", "7"]) == CHECK_NAMES[:6]
    assert select_checks(["1", "2"], ["2"]) == ("valid",)


@pytest.mark.parametrize(
    ("only", "skip", "message"),
    [
        (["nine"], [], "unknown check 'nine': choose from 1 valid, 2 wrong-token"),
        (["10"], [], "unknown check '10'"),  # 9 is response-data
        (["9"], [], "response-data needs --expect-response"),
        (["valid"], ["1"], "no check left to run"),
        (["timing"], [], "timing measures the valid deliveries"),
        ([], ["valid,header-case,unknown-fields,repeat"], "timing measures"),
    ],
)
def test_select_checks_refuses_what_cannot_run(
    only: list[str], skip: list[str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        select_checks(only, skip)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"url": "localhost:8000"}, "bad URL"),
        ({"token": ""}, "the token is empty"),
        ({"token_header": "Verifier Token"}, "bad token header name"),
        ({"extra_headers": (("verifier-token", "x"),)}, "set the token header themselves"),
        ({"timeout": 0}, "more than 0 seconds"),
        ({"checks": ("valid", "eleven")}, "unknown check 'eleven'"),
    ],
)
def test_config_refuses_settings_that_cannot_work(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        config(**kw)
    assert info.value.exit_code is ExitCode.USAGE


def test_config_normalises_check_numbers_to_names() -> None:
    assert config(checks=("7", "1")).checks == ("valid", "repeat")


# The deliveries


def header(delivery: Any, name: str) -> str | None:
    return {k: v for k, v in delivery.request.headers}.get(name)


def test_plan_sends_the_token_only_where_it_belongs() -> None:
    plan = plan_deliveries(config(extra_headers=(("X-Env", "staging"),)))
    right = ("valid", "bad-json", "unknown-fields", "repeat")
    assert all(header(plan[n], "Verifier-Token") == TOKEN for n in right)
    wrong = header(plan["wrong-token"], "Verifier-Token")
    assert wrong is not None and wrong != TOKEN and len(wrong) == len(TOKEN)
    assert not any(k.lower() == "verifier-token" for k, _ in plan["missing-token"].request.headers)
    assert header(plan["header-case"], "verifier-token") == TOKEN
    assert header(plan["header-case"], "Verifier-Token") is None
    assert all(header(d, "X-Env") == "staging" for d in plan.values())
    assert all(header(d, "Content-Type") == "application/json" for d in plan.values())
    assert plan["bad-json"].request.body == b'{"orderId": '


def test_plan_flips_an_all_lower_case_token_header() -> None:
    plan = plan_deliveries(config(token_header="x-hook-secret"))
    assert header(plan["header-case"], "X-HOOK-SECRET") == TOKEN
    assert header(plan["valid"], "x-hook-secret") == TOKEN


def test_plan_repeats_check_one_byte_for_byte_and_freshens_every_other_body() -> None:
    plan = plan_deliveries(config(payload=ORDER, payload_label="order.json"))
    assert plan["valid"].request.body == ORDER
    assert plan["repeat"].request == plan["valid"].request
    assert plan["valid"].sent == "order.json as-is, right token"
    order_ids = {
        json.loads(plan[n].request.body)["orderId"] for n in CHECK_NAMES[:6] if n != "bad-json"
    }
    assert len(order_ids) == 5  # valid, wrong-token, missing-token, header-case, unknown-fields
    unknown = json.loads(plan["unknown-fields"].request.body)
    assert UNKNOWN_FIELDS.items() <= unknown.items()


def test_fresh_ids_keep_account_partner_and_market() -> None:
    body = json.loads(ORDER)
    fresh = fresh_ids(body)
    assert {k: fresh[k] for k in ("accountId", "partnerId", "marketId")} == {
        k: body[k] for k in ("accountId", "partnerId", "marketId")
    }
    assert fresh["orderId"] != body["orderId"]
    assert fresh["orderId"].startswith(body["accountId"] + ":ORD-")
    assert fresh["entityId"] == fresh["orderId"]
    assert fresh["automationId"] != body["automationId"]
    user = fresh_ids({"userId": "U-1", "entityId": "U-1", "custom": "kept"})
    assert user["entityId"] == user["userId"] != "U-1"
    assert user["custom"] == "kept"
    assert "orderId" not in user and "automationId" not in user


# Verdicts


@pytest.mark.parametrize(
    ("check", "status", "expected"),
    [
        ("valid", 200, None),
        ("valid", 302, Result.FAILED),
        ("valid", 422, Result.FAILED),
        ("valid", 503, Result.FAILED),
        ("valid", None, Result.FAILED),
        ("wrong-token", 401, None),
        ("wrong-token", 204, Result.FAILED),
        ("wrong-token", 500, Result.FAILED),
        ("wrong-token", 307, Result.WARNING),
        ("missing-token", 403, None),
        ("missing-token", 200, Result.FAILED),
        ("header-case", 401, Result.FAILED),
        ("bad-json", 400, None),
        ("bad-json", 200, Result.WARNING),
        ("bad-json", 500, Result.FAILED),
        ("unknown-fields", 400, Result.FAILED),
        ("repeat", 409, Result.WARNING),
        ("repeat", 500, Result.FAILED),
        ("repeat", 200, None),
    ],
)
def test_judge_follows_what_vendasta_does_with_each_answer(
    check: str, status: int | None, expected: Result | None
) -> None:
    verdict = judge(check, answer(status), config())
    assert (verdict[0] if verdict else None) is expected
    if verdict:
        assert verdict[1] and verdict[2]  # what happens, and how to fix it


def test_judge_names_the_configured_token_header_in_its_advice() -> None:
    verdict = judge("missing-token", answer(200), config(token_header="X-Hook-Secret"))
    assert verdict is not None and "X-Hook-Secret" in verdict[2]


def test_judge_grades_a_slow_valid_delivery() -> None:
    cfg = config(warn_after=10, timeout=120)
    assert judge("valid", answer(200, 9_000), cfg) is None
    slow = judge("valid", answer(200, 11_000), cfg)
    assert slow is not None and slow[0] is Result.WARNING and "background job" in slow[2]
    too_slow = judge("valid", answer(200, 61_000), cfg)
    assert too_slow is not None and too_slow[0] is Result.FAILED and "resends" in too_slow[1]
    late = judge("valid", answer(None, 1_000, timed_out=True), cfg)
    assert late is not None and late[0] is Result.FAILED


def test_timing_reports_median_and_worst() -> None:
    def spec(n: int) -> CheckSpec:
        return CheckSpec(n, "x", "x", "2xx")

    cfg = config(warn_after=1)
    fast = judge_timing([(spec(1), answer(200, 10)), (spec(4), answer(200, 30))], cfg)
    assert (fast.result, fast.sent, fast.timing) == (
        Result.PASSED,
        "checks 1 and 4",
        {"median_ms": 20.0, "worst_ms": 30.0},
    )
    slow = judge_timing([(spec(1), answer(200, 10)), (spec(7), answer(200, 1500))], cfg)
    assert slow.result is Result.WARNING
    late = judge_timing([(spec(1), answer(200, 10)), (spec(7), answer(None, timed_out=True))], cfg)
    assert (late.result, late.got) == (Result.FAILED, "no answer within 60s to 1 of 2")


# Whole runs in-process


def test_a_correct_handler_passes_every_check() -> None:
    report = run_against(handlers.correct(), config())
    assert set(results(report).values()) == {"passed"}
    assert report.exit_code is ExitCode.OK
    assert report.summary == "8 passed, 0 warnings, 0 failed"
    assert report.notes == [
        "Checks 1, 4, 6 and 7 sent a valid body with the right token, so the handler did its"
        " real work for them: point it at test records."
    ]
    doc = report.to_json()
    assert doc["ok"] is True and doc["summary"] == {"passed": 8, "warning": 0, "failed": 0}
    valid = doc["checks"][0]
    assert (valid["status"], valid["vendasta"], valid["real_work"]) == (200, "done", True)
    assert TOKEN not in json.dumps(doc)  # tokens are masked


def test_a_handler_that_takes_any_token_fails_the_token_checks() -> None:
    report = run_against(handlers.accepts_any_token(), config())
    failed = [r.spec.name for r in report.results if r.result is Result.FAILED]
    assert failed == ["wrong-token", "missing-token"]
    assert report.exit_code is ExitCode.FAILURE
    assert report.notes[1] == (
        "Checks 2 and 3 had no right token but got 2xx: the handler may have done its work"
        " for them too."
    )


def test_repeat_alone_sends_the_delivery_twice() -> None:
    report = run_against(handlers.fails_on_repeat(), config(checks=("repeat", "timing")))
    assert results(report) == {"repeat": "failed", "timing": "passed"}
    repeat = report.results[0]
    assert repeat.sent == "a valid delivery, sent twice"
    assert repeat.got.startswith("500 in ") and "(first: 200 in " in repeat.got
    assert report.results[1].sent == "check 7"


def test_on_start_is_called_before_each_check() -> None:
    seen: list[int] = []

    async def go(url: str) -> None:
        async with OutboundClient(connections=1) as client:
            cfg = config(url=url, checks=("2", "5"))
            await run_checks(cfg, client, lambda s: seen.append(s.number))

    with ThreadedServer(handlers.correct()) as server:
        asyncio.run(go(server.url + PATH))
    assert seen == [2, 5]


# Reachability


def test_ensure_reachable_names_the_host_and_the_reason() -> None:
    port = free_port()
    with pytest.raises(UnreachableError) as info:
        asyncio.run(ensure_reachable(f"http://127.0.0.1:{port}/hook", 5))
    assert str(info.value) == f"could not reach 127.0.0.1:{port}: connection refused"
    assert info.value.exit_code is ExitCode.UNREACHABLE


def test_ensure_reachable_is_quiet_when_something_listens() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        asyncio.run(ensure_reachable(f"http://127.0.0.1:{server.getsockname()[1]}/", 5))
