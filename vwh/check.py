"""`vwh check`: a short suite of deliveries that grades a webhook handler.

The checks and their rules are data (vwh.checks); this module plans each check's
delivery, sends them one at a time in the order of CHECKS and builds the report. A
result says what was sent, what came back and, when it did not pass, what that means
in production and how to fix it. `repeat` resends check 1's exact request near the
end, as a late resend would arrive. The suite never prints: the CLI renders the report.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vwh.checks import (
    _BACKGROUND,
    _BY_KEY,
    _LATE,
    BAD_JSON,
    CHECK_NAMES,
    CHECKS,
    REAL_WORK,
    RESPONSE_DATA,
    RESPONSE_SNIPPET,
    RULES,
    TIMED,
    UNKNOWN_FIELDS,
    WARN_AFTER,
    Answer,
    CheckConfig,
    CheckSpec,
    Result,
    Rule,
    _slowness,
    classify,
    duration,
    judge,
    select_checks,
)
from vwh.delivery import Attempt, OutgoingRequest, build_request
from vwh.errors import ExitCode
from vwh.outbound import OutboundClient, ensure_reachable
from vwh.samples import SampleOptions, sample_body
from vwh.sanitize import inert_preview
from vwh.webhook import (
    InvalidBody,
    TokenPlace,
    body_ids,
    mask_headers,
    parse_body,
    vendasta_reaction,
)

__all__ = [  # what callers used from here before the checks moved to vwh.checks
    "BAD_JSON",
    "CHECKS",
    "CHECK_NAMES",
    "RULES",
    "UNKNOWN_FIELDS",
    "WARN_AFTER",
    "Answer",
    "CheckConfig",
    "CheckReport",
    "CheckResult",
    "CheckSpec",
    "Delivery",
    "Result",
    "classify",
    "ensure_reachable",
    "fresh_ids",
    "judge",
    "judge_timing",
    "plan_deliveries",
    "run",
    "run_checks",
    "select_checks",
]
# The body of the original step: what vwh check sends whatever the step (see samples).
_CHECK_SAMPLE = SampleOptions(step="trigger")


@dataclass(frozen=True)
class Delivery:
    """One request of the suite, with what a person needs to know about it."""

    request: OutgoingRequest
    sent: str
    token: str  # "right", "wrong" or "none"
    token_header: str  # the name it went under, masked in reports

    def to_json(self) -> dict[str, Any]:
        try:
            ids = body_ids(parse_body(self.request.body))
        except InvalidBody:
            ids = {}
        return {
            "token": self.token,
            "headers": mask_headers(self.request.headers, [self.token_header]),
            "bytes": len(self.request.body),
            "ids": ids,
        }


def plan_deliveries(config: CheckConfig) -> dict[str, Delivery]:
    """The request of every delivery check; `repeat` is check 1's request itself.

    Only `valid` and `repeat` send the valid body as it is; every other check sends it
    with fresh ids, so a handler that remembers deliveries sees just one repeat.
    """
    if config.payload is not None:
        base = parse_body(config.payload)
        valid_bytes = config.payload
        origin = f"{config.payload_label or 'payload'} as-is"
    else:
        base = sample_body("order", _CHECK_SAMPLE)
        valid_bytes = _encode(base)
        origin = "sample order"
    place = config.place
    header = place.name
    wrong = config.token[:-1] + ("x" if config.token[-1] != "x" else "y")
    other_case = header.lower() if header != header.lower() else header.upper()

    def make(
        body: bytes, sent: str, token: str | None = config.token, name: str = header
    ) -> Delivery:
        request = build_request(
            config.url,
            body,
            token=token,
            token_header=name,
            extra_headers=config.extra_headers,
            token_place=TokenPlace(place.kind, name),
            query=config.query,
            cookies=config.cookies,
        )
        kind = "right" if token == config.token else "none" if token is None else "wrong"
        return Delivery(request, sent, kind, name)

    valid = make(valid_bytes, f"{origin}, right token")
    primed = "valid" not in config.checks
    return {
        "valid": valid,
        "wrong-token": make(_encode(fresh_ids(base)), "fresh ids, wrong token", wrong),
        "missing-token": make(_encode(fresh_ids(base)), f"fresh ids, no {place.describe()}", None),
        "header-case": make(
            _encode(fresh_ids(base)), f"fresh ids, token in {other_case}", name=other_case
        ),
        "bad-json": make(BAD_JSON, f"{BAD_JSON.decode()!r} cut short, right token"),
        "unknown-fields": make(
            _encode(fresh_ids(base) | UNKNOWN_FIELDS),
            f"fresh ids + {len(UNKNOWN_FIELDS)} new fields, right token",
        ),
        RESPONSE_DATA: make(_encode(fresh_ids(base)), "fresh ids, right token, answer read"),
        "repeat": Delivery(
            valid.request,
            "a valid delivery, sent twice" if primed else "check 1 again, byte for byte",
            "right",
            header,
        ),
    }


def fresh_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The body with new order, user and automation ids (same account and partner)."""
    account = body.get("accountId")
    options = SampleOptions(account=str(account) if account else None, step="trigger")
    order, user = sample_body("order", options), sample_body("user", options)
    new = {"orderId": order["orderId"], "userId": user["userId"]}
    out = dict(body)
    for key, value in new.items():
        if key in body:
            out[key] = value
            if body.get("entityId") == body[key]:
                out["entityId"] = value
    if "automationId" in body:
        out["automationId"] = order["automationId"]
    return out


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class CheckResult:
    spec: CheckSpec
    result: Result
    sent: str
    got: str
    effect: str = ""  # what the answer means in production, unless passed
    fix: str = ""
    attempt: Attempt | None = None  # None for timing
    delivery: Delivery | None = None
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def real_work(self) -> bool:
        return self.spec.name in REAL_WORK

    @property
    def response(self) -> str:
        """The start of the answer's body, on one line, safe to print."""
        if self.attempt is None:
            return ""
        return inert_preview(self.attempt.body, RESPONSE_SNIPPET)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "number": self.spec.number,
            "name": self.spec.name,
            "title": self.spec.title,
            "result": self.result.value,
            "expected": self.spec.expected,
            "sent": self.sent,
            "got": self.got,
            "effect": self.effect or None,
            "fix": self.fix or None,
            "real_work": self.real_work,
        }
        if self.delivery is not None:
            doc["request"] = self.delivery.to_json()
        if self.attempt is not None:
            doc |= {
                "status": self.attempt.status,
                "error": self.attempt.error,
                "latency_ms": round(self.attempt.latency_ms, 3),
                "vendasta": vendasta_reaction(self.attempt.status).value,
                "response": self.response,
            }
        return doc | self.timing


def judge_timing(timed: Sequence[tuple[CheckSpec, Attempt]], config: CheckConfig) -> CheckResult:
    """Median and worst latency of the valid deliveries; no answer in time is a failure."""
    spec = _BY_KEY["timing"]
    numbers = sorted({s.number for s, _ in timed})
    sent = _checks(numbers).lower()
    latencies = [a.latency_ms for _, a in timed]
    worst_spec, worst = max(timed, key=lambda t: t[1].latency_ms)
    median = statistics.median(latencies)
    timing = {"median_ms": round(median, 3), "worst_ms": round(worst.latency_ms, 3)}
    late = sum(a.timed_out for _, a in timed)
    if late:
        got = f"no answer within {config.timeout:g}s to {late} of {len(timed)}"
        rule: Rule | None = (Result.FAILED, _LATE, _BACKGROUND)
    else:
        got = f"median {duration(median)}, worst {duration(worst.latency_ms)} ({worst_spec.name})"
        rule = _slowness(worst.latency_ms, config)
    result, effect, fix = rule or (Result.PASSED, "", "")
    return CheckResult(spec, result, sent, got, effect, fix, timing=timing)


def _checks(numbers: Sequence[int]) -> str:
    return f"Check{'s' * (len(numbers) > 1)} {_and(str(n) for n in numbers)}"


def _them(numbers: Sequence[int]) -> str:
    return "them" if len(numbers) > 1 else "it"


def _and(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


@dataclass(frozen=True)
class CheckReport:
    url: str
    token_header: str
    results: tuple[CheckResult, ...]
    token_where: str = ""  # 'query parameter sig' or 'cookie s' when not in a header

    def count(self, result: Result) -> int:
        return sum(r.result is result for r in self.results)

    @property
    def exit_code(self) -> ExitCode:
        """0 when nothing failed (warnings allowed): `vwh check` can gate a deployment."""
        return ExitCode.FAILURE if self.count(Result.FAILED) else ExitCode.OK

    @property
    def summary(self) -> str:
        warnings = self.count(Result.WARNING)
        return (
            f"{self.count(Result.PASSED)} passed, {warnings} warning{'s' * (warnings != 1)},"
            f" {self.count(Result.FAILED)} failed"
        )

    @property
    def notes(self) -> list[str]:
        """What a person must know beyond the rows: where the handler did its real work."""
        notes = []
        real = [r.spec.number for r in self.results if r.real_work]
        if real:
            notes.append(
                f"{_checks(real)} sent a valid body with the right token, so the handler did"
                f" its real work for {_them(real)}: point it at test records."
            )
        forged = [
            r.spec.number
            for r in self.results
            if r.spec.name in ("wrong-token", "missing-token")
            and r.attempt is not None
            and classify(r.attempt) is Answer.SUCCESS
        ]
        if forged:
            notes.append(
                f"{_checks(forged)} had no right token but got 2xx: the handler may have done"
                f" its work for {_them(forged)} too."
            )
        return notes

    @property
    def not_run(self) -> list[str]:
        """Checks these options could not run, and what would run them."""
        if any(r.spec.name == RESPONSE_DATA for r in self.results):
            return []
        return [
            "Check 9 response-data was not run: give --expect-response 'KEY:TYPE,...' (the"
            " Send a webhook step's Response body keys) to check what later steps get."
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "token_header": self.token_header,
            "token_place": self.token_where or self.token_header,
            "ok": self.exit_code is ExitCode.OK,
            "summary": {r.value: self.count(r) for r in Result},
            "checks": [r.to_json() for r in self.results],
            "notes": self.notes,
            "not_run": self.not_run,
        }


OnStart = Callable[[CheckSpec], None]


async def run_checks(
    config: CheckConfig, sender: OutboundClient, on_start: OnStart | None = None
) -> CheckReport:
    """Run the selected checks one at a time over `sender`; never raises for an answer."""
    plan = plan_deliveries(config)
    results: list[CheckResult] = []
    timed: list[tuple[CheckSpec, Attempt]] = []
    for spec in (_BY_KEY[name] for name in config.checks):
        if on_start is not None:
            on_start(spec)
        if spec.name == "timing":
            results.append(judge_timing(timed, config))
            continue
        delivery = plan[spec.name]
        first = None
        if spec.name == "repeat" and "valid" not in config.checks:
            first = await sender.send(delivery.request, config.timeout)
            timed.append((spec, first))
        attempt = await sender.send(delivery.request, config.timeout)
        if spec.name in TIMED:
            timed.append((spec, attempt))
        got = _got(attempt) + (f" (first: {_got(first)})" if first is not None else "")
        result, effect, fix = judge(spec.name, attempt, config) or (Result.PASSED, "", "")
        results.append(
            CheckResult(spec, result, delivery.sent, got, effect, fix, attempt, delivery)
        )
    place = config.place
    where = "" if place.is_header else place.describe()
    return CheckReport(config.url, place.name, tuple(results), where)


def _got(attempt: Attempt) -> str:
    if attempt.status is None:
        return attempt.describe()
    return f"{attempt.status} in {duration(attempt.latency_ms)}"


async def run(config: CheckConfig, on_start: OnStart | None = None) -> CheckReport:
    """Check the handler at config.url; UnreachableError when nothing is there at all."""
    await ensure_reachable(config.url, config.timeout)
    async with OutboundClient(connections=1) as sender:
        return await run_checks(config, sender, on_start)
