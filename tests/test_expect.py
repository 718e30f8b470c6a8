from __future__ import annotations

import pytest

from vwh.errors import UsageError
from vwh.expect import ExpectedKey, judge_answer, nested_keys, parse_expected

SPEC = parse_expected("status:string, total:number,paid:boolean, note:string?")


def test_the_declaration_reads_like_the_steps_form() -> None:
    expected = (
        ExpectedKey("status", "string"),
        ExpectedKey("total", "number"),
        ExpectedKey("paid", "boolean"),
        ExpectedKey("note", "string", optional=True),
    )
    assert expected == SPEC
    assert ",".join(map(str, SPEC)) == "status:string,total:number,paid:boolean,note:string?"


@pytest.mark.parametrize(
    "text", ["status", "status:text", ":string", "a:string,a:number", "", "a b:string"]
)
def test_a_bad_declaration_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--expect-response"):
        parse_expected(text)


@pytest.mark.parametrize(
    ("body", "problems", "passed"),
    [
        (b'{"status":"ok","total":12.5,"paid":true,"extra":[1]}', [], ["status", "total", "paid"]),
        (b'{"status":"ok","total":1,"paid":false,"note":null}', [], ["status", "total", "paid"]),
        (
            b'{"status":"ok","total":1,"paid":false,"note":"n"}',
            [],
            ["status", "total", "paid", "note"],
        ),
        (
            b'{"total":1,"paid":true}',
            ["status is missing: later steps get no status"],
            ["total", "paid"],
        ),
        (
            b'{"status":"ok","total":"12","paid":1}',
            [
                "total is a string, declared number: later steps get the wrong total",
                "paid is a number, declared boolean: later steps get the wrong paid",
            ],
            ["status"],
        ),
        (
            b'{"status":{"code":"ok"},"total":1,"paid":true}',
            [
                "status holds a JSON object: the step reads flat values only, later steps"
                " get no status"
            ],
            ["total", "paid"],
        ),
        (b"<html>ok</html>", ["the answer is not a JSON object (invalid JSON"], []),
        (b"[1, 2]", ["the answer is not a JSON object (JSON array, not an object)"], []),
        (b"", ["the answer is not a JSON object (empty body)"], []),
    ],
)
def test_answers_are_judged_as_vendasta_reads_them(
    body: bytes, problems: list[str], passed: list[str]
) -> None:
    verdict = judge_answer(SPEC, body)
    assert [p[: len(e)] for p, e in zip(verdict.problems, problems, strict=True)] == problems
    assert list(verdict.passed) == passed
    assert verdict.ok is (not problems)


def test_nested_keys_names_what_the_step_cannot_read() -> None:
    assert nested_keys({"a": 1, "b": {"c": 1}, "d": [1], "e": None}) == ["b", "d"]
