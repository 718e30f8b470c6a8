"""`vwh check` as a user runs it: the real CLI against real handlers under uvicorn."""

from __future__ import annotations

import asyncio
import inspect
import io
import json

import pytest
from rich.console import Console
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests import handlers
from tests.handlers import PATH, TOKEN
from tests.helpers import FIXTURES, CliResult, ThreadedServer, free_port, invoke, run_vwh, vwh_env
from vwh.check import WARN_AFTER, CheckConfig, CheckReport, Result, run_checks
from vwh.cli.check import check as check_command
from vwh.cli.check_view import report_table
from vwh.outbound import OutboundClient

PASSED = dict.fromkeys(
    (
        "valid",
        "wrong-token",
        "missing-token",
        "header-case",
        "bad-json",
        "unknown-fields",
        "repeat",
        "timing",
    ),
    "passed",
)


def check(url: str, *args: str) -> CliResult:
    return invoke("check", url + PATH, "--token", TOKEN, *args)


def graded(result: CliResult) -> dict[str, str]:
    doc = json.loads(result.stdout)
    return {c["name"]: c["result"] for c in doc["checks"]}


@pytest.mark.parametrize(
    ("app", "args", "expected", "code"),
    [
        pytest.param(handlers.correct(), [], {}, 0, id="correct"),
        pytest.param(
            handlers.accepts_any_token(),
            [],
            {"wrong-token": "failed", "missing-token": "failed"},
            1,
            id="accepts-any-token",
        ),
        pytest.param(
            handlers.crashes_on_bad_json(), [], {"bad-json": "failed"}, 1, id="500-on-bad-json"
        ),
        pytest.param(
            handlers.slow(1.0),
            ["--timeout", "0.5"],
            dict.fromkeys(("valid", "header-case", "unknown-fields", "repeat", "timing"), "failed"),
            1,
            id="slower-than-the-timeout",
        ),
        pytest.param(
            handlers.slow(0.3),
            ["--warn-after", "0.1"],
            {"valid": "warning", "timing": "warning"},
            0,
            id="slow-but-in-time",
        ),
        pytest.param(handlers.fails_on_repeat(), [], {"repeat": "failed"}, 1, id="500-on-repeat"),
        pytest.param(
            handlers.fails_on_repeat(409), [], {"repeat": "warning"}, 0, id="409-on-repeat"
        ),
        pytest.param(
            handlers.rejects_unknown_fields(),
            [],
            {"unknown-fields": "failed"},
            1,
            id="rejects-unknown-fields",
        ),
    ],
)
def test_each_handler_gets_exactly_its_failures(
    app: Starlette, args: list[str], expected: dict[str, str], code: int
) -> None:
    with ThreadedServer(app) as running:
        result = check(running.url, "--json", *args)
    assert graded(result) == PASSED | expected
    assert result.exit_code == code, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is (code == 0)
    for row in doc["checks"]:
        assert (row["effect"] is None) is (row["result"] == "passed")


def test_the_human_report_says_what_happens_and_how_to_fix_it() -> None:
    with ThreadedServer(handlers.accepts_any_token()) as running:
        result = run_vwh("check", running.url + PATH, env=vwh_env(VWH_TOKEN=TOKEN))
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"vwh check {running.url}{PATH} (token in Verifier-Token)"
    assert lines[1].startswith(
        "1 valid          passed   sent: sample order, right token; got: 200"
    )
    assert lines[2].startswith("2 wrong-token    failed   sent: fresh ids, wrong token; got: 200")
    assert lines[3] == '    answer: {"status":"processed"}'
    assert lines[4] == (
        "    impact: forged requests are accepted: anyone who finds the URL can trigger the handler"
    )
    assert lines[5].startswith("    fix: compare the Verifier-Token header with your secret")
    assert "Checks 2 and 3 had no right token but got 2xx" in result.stdout
    assert lines[-1] == "6 passed, 0 warnings, 2 failed"


def test_payload_and_extra_headers_reach_the_handler() -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []

    async def record(request: Request) -> Response:
        seen.append((await request.body(), dict(request.headers)))
        return Response(status_code=200)

    app = Starlette(routes=[Route(PATH, record, methods=["POST"])])
    payload = FIXTURES / "payloads" / "order.json"
    with ThreadedServer(app) as running:
        result = check(
            running.url, "--only", "valid,repeat", "--payload", str(payload), "-H", "X-Env: ci"
        )
    assert result.exit_code == 0, result.stderr
    assert [body for body, _ in seen] == [payload.read_bytes()] * 2
    assert all(h["x-env"] == "ci" and h["verifier-token"] == TOKEN for _, h in seen)
    assert "sent: order.json as-is, right token" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--only", "wrong-token,3"], ["wrong-token", "missing-token"]),
        (["--skip", "timing", "--skip", "1,2,3,4,5"], ["unknown-fields", "repeat"]),
    ],
)
def test_only_and_skip_pick_checks(args: list[str], expected: list[str]) -> None:
    with ThreadedServer(handlers.correct()) as running:
        result = check(running.url, "--json", *args)
    assert list(graded(result)) == expected
    assert result.exit_code == 0


def test_an_unreachable_url_is_one_line_and_exit_6() -> None:
    port = free_port()
    result = invoke("check", f"http://127.0.0.1:{port}{PATH}", "--token", TOKEN, "--json")
    assert result.exit_code == 6
    assert result.stdout == ""
    assert result.stderr == f"vwh: error: could not reach 127.0.0.1:{port}: connection refused\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1:1/hook"], "missing --token (or VWH_TOKEN)"),
        (["ftp://example.com/hook", "--token", "t"], "bad URL 'ftp://example.com/hook'"),
        (["http://127.0.0.1:1/", "--token", "t", "--only", "teapot"], "unknown check 'teapot'"),
        (["http://127.0.0.1:1/", "--token", "t", "--only", "1", "--skip", "valid"], "no check"),
        (["http://127.0.0.1:1/", "--token", "t", "-H", "Verifier-Token: x"], "use --token"),
        (["http://127.0.0.1:1/", "--token", "t", "-H", "no colon"], "bad header 'no colon'"),
        (["http://127.0.0.1:1/", "--token", "t", "--payload", "/nonexistent.json"], "no such"),
    ],
)
def test_usage_errors_exit_2_before_sending_anything(args: list[str], message: str) -> None:
    result = invoke("check", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_the_cli_default_for_warn_after_is_the_librarys() -> None:
    default = inspect.signature(check_command).parameters["warn_after"].default
    assert default.default == WARN_AFTER


def render(report: CheckReport, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, no_color=True, highlight=False)
    console.print(report_table(report))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return str(text)


@pytest.mark.parametrize("width", [80, 100])
def test_the_terminal_report_fits_the_width_and_carries_the_advice(width: int) -> None:
    report = _report_for(handlers.accepts_any_token())
    text = render(report, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "forged requests are accepted" in text
    assert "6 passed, 0 warnings, 2 failed" in text
    assert text.count("failed") == 2 + 2 + 1  # two rows, two advice headings, the summary


def _report_for(app: Starlette) -> CheckReport:
    async def go(url: str) -> CheckReport:
        async with OutboundClient(connections=1) as client:
            return await run_checks(CheckConfig(url + PATH, TOKEN), client)

    with ThreadedServer(app) as server:
        report = asyncio.run(go(server.url))
    assert {r.result for r in report.results} == {Result.PASSED, Result.FAILED}
    return report


# The Send a webhook step: the token in a query parameter or cookie; the answer's data.
@pytest.mark.parametrize(
    ("kind", "name"), [("header", "X-Signature"), ("query", "sig"), ("cookie", "vwh_sig")]
)
def test_the_token_checks_run_where_the_token_is(kind: str, name: str) -> None:
    place = ["--token-" + kind, name]
    with ThreadedServer(handlers.make_handler(place=(kind, name))) as running:
        right = check(running.url, "--json", *place, "--query", "src=v", "--cookie", "t=d")
    with ThreadedServer(handlers.make_handler(place=(kind, name), check_token=False)) as running:
        lax = check(running.url, "--json", *place)
    expected = dict(PASSED)
    if kind != "header":
        del expected["header-case"]  # a letter-case check is for header names only
    assert graded(right) == expected, right.stdout
    assert right.exit_code == 0
    assert graded(lax) == expected | {"wrong-token": "failed", "missing-token": "failed"}
    doc = json.loads(lax.stdout)
    where = {"header": f"{name} header", "query": f"{name} query parameter"}.get(
        kind, f"{name} cookie"
    )
    fixes = {c["name"]: c["fix"] for c in doc["checks"]}
    assert f"compare the {where} with your secret" in fixes["wrong-token"]
    assert TOKEN not in json.dumps(doc)  # the report masks it in every place


def test_header_case_with_a_query_token_is_a_usage_error() -> None:
    result = invoke("check", "http://127.0.0.1:1/", "--token", "t", "--token-query", "s",
                    "--only", "header-case")  # fmt: skip
    assert result.exit_code == 2 and "the token is not in a header" in result.stderr


EXPECT = "dealId:string,amount:number,won:boolean?"


@pytest.mark.parametrize(
    ("answer", "result", "words"),
    [
        pytest.param({"dealId": "D-1", "amount": 3, "extra": [1]}, "passed", "", id="right"),
        pytest.param({"amount": 3}, "failed", "dealId is missing", id="missing"),
        pytest.param({"dealId": "D-1", "amount": "3"}, "failed", "amount is a string", id="type"),
        pytest.param(
            {"dealId": {"id": "D-1"}, "amount": 3},
            "failed",
            "dealId holds a JSON object",
            id="nested",
        ),
        pytest.param(b"processed", "failed", "not a JSON object", id="not-json"),
    ],
)
def test_expect_response_grades_the_data_later_steps_get(
    answer: object, result: str, words: str
) -> None:
    with ThreadedServer(handlers.make_handler(answer=answer)) as running:
        graded_run = check(running.url, "--json", "--expect-response", EXPECT)
        plain = check(running.url, "--only", "9", "--expect-response", EXPECT)
    doc = json.loads(graded_run.stdout)
    row = doc["checks"][-1]
    assert (row["number"], row["name"], row["result"]) == (9, "response-data", result)
    assert graded_run.exit_code == (0 if result == "passed" else 1)
    assert doc["not_run"] == []
    if result == "failed":
        assert words in row["effect"] and "passes nothing, or the wrong thing" in row["effect"]
        assert "dealId:string, amount:number, won:boolean?" in row["fix"]
        assert words in plain.stdout and plain.exit_code == 1


def test_without_expect_response_the_report_says_it_can_check_the_answer() -> None:
    with ThreadedServer(handlers.correct()) as running:
        result = check(running.url, "--only", "valid")
    assert result.exit_code == 0
    assert "Check 9 response-data was not run: give --expect-response" in result.stdout
    assert not any(line.startswith("9 ") for line in result.stdout.splitlines())


HOSTILE_ANSWER = b"\x1b]0;pwned\x07 \x1b[31mred\xc2\x9b2J \xe2\x80\xae \xff\r\nforged: line"


def _answers_hostile() -> Starlette:
    async def hook(request: Request) -> Response:
        return Response(HOSTILE_ANSWER, status_code=200)

    return Starlette(routes=[Route(PATH, hook, methods=["POST"])])


def test_a_hostile_answer_is_shown_inert() -> None:
    from tests.hostile import assert_inert, run_vwh_bytes

    with ThreadedServer(_answers_hostile()) as running:
        env = vwh_env(VWH_TOKEN=TOKEN)
        plain = run_vwh_bytes("check", running.url + PATH, env=env)
        as_json = run_vwh_bytes("check", running.url + PATH, "--json", env=env)
    text = assert_inert(plain.stdout)
    assert plain.returncode == 1, plain.stderr
    assert "    answer: \\x1b]0;pwned\\x07 \\x1b[31mred\\x9b2J \\u202e \\xff forged: line" in text
    assert "\nforged" not in text
    doc = json.loads(assert_inert(as_json.stdout))
    assert doc["checks"][1]["response"].startswith("\\x1b]0;pwned\\x07")

    async def go(url: str) -> CheckReport:
        async with OutboundClient() as sender:
            return await run_checks(CheckConfig(url + PATH, TOKEN), sender)

    with ThreadedServer(_answers_hostile()) as running:
        report = asyncio.run(go(running.url))
    table = render(report, 100)
    assert "\\x1b]0;pwned" in table
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in table
