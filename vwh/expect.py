"""The *Send a webhook* step's Response body section: which answer keys later steps get.

The partner declares key names and types; Vendasta reads the handler's 2xx answer
as one flat JSON object and passes only those keys on. An answer without them, or
with other types, feeds the next steps nothing (or the wrong thing), silently:
`judge_answer` says which key and why, for `vwh check` and `vwh listen`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vwh.errors import UsageError
from vwh.webhook import InvalidBody, json_type_name, parse_body

TYPES = ("string", "number", "boolean")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class ExpectedKey:
    name: str
    type: str  # one of TYPES
    optional: bool = False

    def __str__(self) -> str:
        return f"{self.name}:{self.type}{'?' if self.optional else ''}"


@dataclass(frozen=True)
class AnswerVerdict:
    """The judgement of one answer; `problems` empty means later steps get every key."""

    problems: tuple[str, ...]
    passed: tuple[str, ...]  # the declared keys Vendasta would pass on

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One short line for a table cell or a log line."""
        if self.ok:
            return f"ok ({len(self.passed)} keys)"
        return self.problems[0] + (
            f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        )


def parse_expected(text: str) -> tuple[ExpectedKey, ...]:
    """'KEY:TYPE,...' (TYPE string, number or boolean; a trailing '?' marks it optional)."""
    keys: list[ExpectedKey] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, kind = item.rpartition(":")
        optional = kind.endswith("?")
        kind = kind.removesuffix("?").strip().lower()
        name = name.strip()
        if not sep or not _KEY.match(name) or kind not in TYPES:
            raise UsageError(
                f"bad --expect-response item {item!r}: expected KEY:TYPE with TYPE one of"
                f" {', '.join(TYPES)}, and '?' after the type for an optional key"
            )
        if any(k.name == name for k in keys):
            raise UsageError(f"bad --expect-response: key {name!r} is declared twice")
        keys.append(ExpectedKey(name, kind, optional))
    if not keys:
        raise UsageError("bad --expect-response: declare at least one KEY:TYPE")
    return tuple(keys)


def judge_answer(expected: tuple[ExpectedKey, ...], body: bytes | None) -> AnswerVerdict:
    """What Vendasta would pass on from a 2xx answer with this body, and what goes wrong."""
    try:
        value = parse_body(body or b"")
    except InvalidBody as exc:
        return AnswerVerdict((f"the answer is not a JSON object ({exc}): Vendasta passes"
                              " nothing to later steps",), ())  # fmt: skip
    problems: list[str] = []
    passed: list[str] = []
    for key in expected:
        if key.name not in value or (key.optional and value[key.name] is None):
            if not key.optional:
                problems.append(f"{key.name} is missing: later steps get no {key.name}")
            continue
        got = json_type_name(value[key.name])
        if got in ("object", "array"):
            problems.append(
                f"{key.name} holds a JSON {got}: the step reads flat values only, later steps"
                f" get no {key.name}"
            )
        elif got != key.type:
            problems.append(
                f"{key.name} is a {got}, declared {key.type}: later steps get the wrong {key.name}"
            )
        else:
            passed.append(key.name)
    return AnswerVerdict(tuple(problems), tuple(passed))


def nested_keys(document: dict[str, Any]) -> list[str]:
    """The keys of an object whose values nest (objects or arrays): the step reads none."""
    return [k for k, v in document.items() if isinstance(v, dict | list)]


def answer_check(expected: tuple[ExpectedKey, ...], status: int, body: bytes) -> str:
    """The verdict on a handler's answer for `listen --expect-response`, as kept with it."""
    if not 200 <= status < 300:
        return f"not passed on: a {status} answer gives later steps nothing"
    return judge_answer(expected, body).summary()
