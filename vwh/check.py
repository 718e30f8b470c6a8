"""`vwh check`: a short suite of deliveries that grades a webhook handler.

Each check sends one delivery and judges the answer by what Vendasta does with it
(2xx done, 4xx dropped for good, 5xx or no answer resent). A result says what was
sent, what came back and, when it did not pass, what that means in production and
how to fix it. Checks run one at a time in the order of CHECKS; `repeat` resends
check 1's exact request near the end, as a late resend would arrive. The suite never
prints: the CLI renders the report.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from vwh.delivery import Attempt, OutgoingRequest, build_request, check_url
from vwh.errors import ExitCode, UsageError
from vwh.outbound import OutboundClient, ensure_reachable
from vwh.samples import SampleOptions, sample_body
from vwh.sanitize import inert
from vwh.webhook import (
    DEFAULT_TOKEN_HEADER,
    VENDASTA_TIMEOUT,
    InvalidBody,
    body_ids,
    mask_headers,
    parse_body,
    vendasta_reaction,
)

WARN_AFTER = 10.0  # seconds: slower valid deliveries get a warning
BAD_JSON = b'{"orderId": '  # cut short, as a broken client or proxy would
UNKNOWN_FIELDS = {"vwhNewField": "added by vwh check", "vwhNewFlag": "true"}
RESPONSE_SNIPPET = 200  # characters of an answer's body kept in a result


class Result(str, Enum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"


class Answer(str, Enum):
    """The kind of answer a delivery got: what the verdict of a check turns on."""

    SUCCESS = "2xx"
    REDIRECT = "3xx"
    REFUSED = "4xx"
    SERVER_ERROR = "5xx"
    NO_ANSWER = "no answer"  # nothing within the timeout
    BROKEN = "broken"  # the connection failed or closed before a full answer


def classify(attempt: Attempt) -> Answer:
    status = attempt.status
    if status is None:
        return Answer.NO_ANSWER if attempt.timed_out else Answer.BROKEN
    if 200 <= status < 300:
        return Answer.SUCCESS
    if 300 <= status < 400:
        return Answer.REDIRECT
    return Answer.SERVER_ERROR if status >= 500 else Answer.REFUSED


@dataclass(frozen=True)
class CheckSpec:
    number: int
    name: str
    title: str
    expected: str


CHECKS = (
    CheckSpec(1, "valid", "a valid delivery", "2xx"),
    CheckSpec(2, "wrong-token", "a wrong token", "4xx"),
    CheckSpec(3, "missing-token", "no token header", "4xx"),
    CheckSpec(4, "header-case", "the token header in another letter case", "2xx"),
    CheckSpec(5, "bad-json", "malformed JSON", "4xx"),
    CheckSpec(6, "unknown-fields", "unknown extra fields", "2xx"),
    CheckSpec(7, "repeat", "the same delivery again", "2xx"),
    CheckSpec(8, "timing", "latency of the valid deliveries", "answers in time"),
)
CHECK_NAMES = tuple(spec.name for spec in CHECKS)
_BY_KEY = {key: spec for spec in CHECKS for key in (spec.name, str(spec.number))}
# The checks that send a valid body with the right token: the handler does its real work.
REAL_WORK = ("valid", "header-case", "unknown-fields", "repeat")

# (result, what it means in production, how to fix it); "{header}" is the token header.
Rule = tuple[Result, str, str]

_LATE = f"Vendasta stops waiting after {VENDASTA_TIMEOUT:g} s and resends: the work may run twice"
_BACKGROUND = (
    "answer 2xx within seconds and hand slow work to a background job (a queue, a workflow)"
)
_OPEN_SCHEMA = (
    "ignore fields you do not know: no closed schema (extra='forbid', additionalProperties: false)"
)
_EXPECT_2XX: dict[Answer, Rule] = {
    Answer.REDIRECT: (
        Result.FAILED,
        "Vendasta does not follow redirects: it records a failed step and never resends",
        "give the automation the final URL (check http or https, and the trailing slash)",
    ),
    Answer.REFUSED: (
        Result.FAILED,
        "Vendasta records a failed step and never resends: the delivery is lost",
        "accept a delivery with the right token and a valid body; the answer says why it did not",
    ),
    Answer.SERVER_ERROR: (
        Result.FAILED,
        "Vendasta resends it, again and again while it keeps failing",
        "find the error in the handler's log; answer 2xx once a delivery is handled",
    ),
    Answer.NO_ANSWER: (Result.FAILED, _LATE, _BACKGROUND),
    Answer.BROKEN: (
        Result.FAILED,
        "Vendasta resends it",
        "the connection failed or closed before a full answer: look for a crash or a proxy",
    ),
}
_EXPECT_4XX: dict[Answer, Rule] = {
    Answer.REDIRECT: (
        Result.WARNING,
        "Vendasta would not follow the redirect nor resend, but a redirect hides the reason",
        "answer 401 or 403 to a request you refuse",
    ),
    Answer.SERVER_ERROR: (
        Result.FAILED,
        "Vendasta would resend it again and again, and it can never succeed",
        "answer a 4xx, never 5xx, to a request you will never accept",
    ),
    Answer.NO_ANSWER: (
        Result.FAILED,
        "Vendasta would resend it again and again, and it can never succeed",
        "refuse it at once with a 4xx, before any slow work",
    ),
    Answer.BROKEN: (
        Result.FAILED,
        "Vendasta would resend it",
        "refuse it with a 4xx instead of dropping the connection",
    ),
}
# An answer with no rule passes.
RULES: dict[str, dict[Answer, Rule]] = {
    "valid": _EXPECT_2XX,
    "wrong-token": {
        **_EXPECT_4XX,
        Answer.SUCCESS: (
            Result.FAILED,
            "forged requests are accepted: anyone who finds the URL can trigger the handler",
            "compare the {header} header with your secret (hmac.compare_digest) before anything"
            " else; answer 401 when it differs",
        ),
        Answer.SERVER_ERROR: (
            Result.FAILED,
            "Vendasta would resend a delivery with a wrong token (say, after the secret"
            " changed) forever",
            "answer 401, never 5xx, to a wrong token",
        ),
    },
    "missing-token": {
        **_EXPECT_4XX,
        Answer.SUCCESS: (
            Result.FAILED,
            "requests without a token are accepted: anyone who finds the URL can trigger the"
            " handler",
            "refuse a request without the {header} header (a common bug: checking the token"
            " only when it is there)",
        ),
        Answer.SERVER_ERROR: (
            Result.FAILED,
            "Vendasta would resend a delivery without a token forever",
            "answer 401 when the {header} header is absent; read it with a default, not a crash",
        ),
    },
    "header-case": {
        **_EXPECT_2XX,
        Answer.REFUSED: (
            Result.FAILED,
            "deliveries whose header name arrives in another case (proxies and HTTP/2"
            " lower-case them) are refused and never resent",
            "look the {header} header up case-insensitively, as the framework's headers"
            " object does",
        ),
    },
    "bad-json": {
        **_EXPECT_4XX,
        Answer.SUCCESS: (
            Result.WARNING,
            "Vendasta would record success for a body the handler could not read",
            "answer 400 when the body is not valid JSON",
        ),
        Answer.SERVER_ERROR: (
            Result.FAILED,
            "Vendasta would resend a body that can never be parsed, again and again",
            "catch the JSON error and answer 400",
        ),
    },
    "unknown-fields": {
        **_EXPECT_2XX,
        Answer.REFUSED: (
            Result.FAILED,
            "the day Vendasta adds a field, every delivery is refused and never resent",
            _OPEN_SCHEMA,
        ),
        Answer.SERVER_ERROR: (
            Result.FAILED,
            "the day Vendasta adds a field, every delivery fails and is resent",
            _OPEN_SCHEMA,
        ),
    },
    "repeat": {
        **_EXPECT_2XX,
        Answer.REFUSED: (
            Result.WARNING,
            "Vendasta records a failed step for a delivery the handler already processed",
            "answer 2xx to a delivery already handled, without doing the work again",
        ),
        Answer.SERVER_ERROR: (
            Result.FAILED,
            "a resent delivery fails again, so Vendasta keeps resending it",
            "make the handler idempotent: remember handled deliveries (say, by automationId"
            " and orderId) and answer 2xx to a repeat",
        ),
    },
}


@dataclass(frozen=True)
class CheckConfig:
    """What to check and how; validated on creation (UsageError)."""

    url: str
    token: str
    token_header: str = DEFAULT_TOKEN_HEADER
    extra_headers: tuple[tuple[str, str], ...] = ()
    payload: bytes | None = None  # the valid body (a JSON object); None: a sample order
    payload_label: str = ""  # where the payload came from, for the report
    timeout: float = VENDASTA_TIMEOUT
    warn_after: float = WARN_AFTER
    checks: tuple[str, ...] = CHECK_NAMES

    def __post_init__(self) -> None:
        check_url(self.url)
        if not self.token:
            raise UsageError("the token is empty: give the token your automation sends")
        if not self.token_header or any(c in self.token_header for c in " \t\r\n:"):
            raise UsageError(f"bad token header name {self.token_header!r}")
        for name, _ in self.extra_headers:
            if name.lower() == self.token_header.lower():
                raise UsageError(
                    f"header {name}: the checks set the token header themselves; use --token"
                )
        if self.timeout <= 0:
            raise UsageError("the timeout must be more than 0 seconds")
        object.__setattr__(self, "checks", select_checks(self.checks))


def select_checks(only: Iterable[str] = (), skip: Iterable[str] = ()) -> tuple[str, ...]:
    """The checks to run, in suite order, from names or numbers (comma-separated or not)."""
    wanted = _check_names(only) or set(CHECK_NAMES)
    skipped = _check_names(skip)
    chosen = tuple(n for n in CHECK_NAMES if n in wanted and n not in skipped)
    if not chosen:
        raise UsageError("no check left to run")
    if "timing" in chosen and not set(chosen) & set(REAL_WORK):
        raise UsageError(
            f"timing measures the valid deliveries: also run one of {', '.join(REAL_WORK)}"
        )
    return chosen


def _check_names(values: Iterable[str]) -> set[str]:
    names = set()
    for value in values:
        for key in filter(None, (k.strip().lower() for k in value.split(","))):
            if key not in _BY_KEY:
                choices = ", ".join(f"{s.number} {s.name}" for s in CHECKS)
                raise UsageError(f"unknown check {key!r}: choose from {choices}")
            names.add(_BY_KEY[key].name)
    return names


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
        base = sample_body("order")
        valid_bytes = _encode(base)
        origin = "sample order"
    header = config.token_header
    wrong = config.token[:-1] + ("x" if config.token[-1] != "x" else "y")
    other_case = header.lower() if header != header.lower() else header.upper()

    def make(
        body: bytes, sent: str, token: str | None = config.token, name: str = header
    ) -> Delivery:
        request = build_request(
            config.url, body, token=token, token_header=name, extra_headers=config.extra_headers
        )
        kind = "right" if token == config.token else "none" if token is None else "wrong"
        return Delivery(request, sent, kind, name)

    valid = make(valid_bytes, f"{origin}, right token")
    primed = "valid" not in config.checks
    return {
        "valid": valid,
        "wrong-token": make(_encode(fresh_ids(base)), "fresh ids, wrong token", wrong),
        "missing-token": make(_encode(fresh_ids(base)), f"fresh ids, no {header}", None),
        "header-case": make(
            _encode(fresh_ids(base)), f"fresh ids, token in {other_case}", name=other_case
        ),
        "bad-json": make(BAD_JSON, f"{BAD_JSON.decode()!r} cut short, right token"),
        "unknown-fields": make(
            _encode(fresh_ids(base) | UNKNOWN_FIELDS),
            f"fresh ids + {len(UNKNOWN_FIELDS)} new fields, right token",
        ),
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
    options = SampleOptions(account=str(account) if account else None)
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
        text = inert(" ".join(self.attempt.body.decode("utf-8", "backslashreplace").split()))
        return text if len(text) <= RESPONSE_SNIPPET else text[: RESPONSE_SNIPPET - 1] + "…"

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


def judge(name: str, attempt: Attempt, config: CheckConfig) -> Rule | None:
    """The verdict on one delivery's answer; None when it passed."""
    answer = classify(attempt)
    rule = RULES[name].get(answer)
    if rule is None and answer is Answer.SUCCESS and name == "valid":
        rule = _slowness(attempt.latency_ms, config)
    if rule is None:
        return None
    result, effect, fix = rule
    return result, effect.format(header=config.token_header), fix.format(header=config.token_header)


def _slowness(latency_ms: float, config: CheckConfig) -> Rule | None:
    if latency_ms > VENDASTA_TIMEOUT * 1000:
        return Result.FAILED, _LATE, _BACKGROUND
    if latency_ms > config.warn_after * 1000:
        return (
            Result.WARNING,
            f"Vendasta waits up to {VENDASTA_TIMEOUT:g} s, but a handler this slow risks"
            " timeouts and resends when it is busy",
            _BACKGROUND,
        )
    return None


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


def duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


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

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "token_header": self.token_header,
            "ok": self.exit_code is ExitCode.OK,
            "summary": {r.value: self.count(r) for r in Result},
            "checks": [r.to_json() for r in self.results],
            "notes": self.notes,
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
        if spec.name in REAL_WORK:
            timed.append((spec, attempt))
        got = _got(attempt) + (f" (first: {_got(first)})" if first is not None else "")
        result, effect, fix = judge(spec.name, attempt, config) or (Result.PASSED, "", "")
        results.append(
            CheckResult(spec, result, delivery.sent, got, effect, fix, attempt, delivery)
        )
    return CheckReport(config.url, config.token_header, tuple(results))


def _got(attempt: Attempt) -> str:
    if attempt.status is None:
        return attempt.describe()
    return f"{attempt.status} in {duration(attempt.latency_ms)}"


async def run(config: CheckConfig, on_start: OnStart | None = None) -> CheckReport:
    """Check the handler at config.url; UnreachableError when nothing is there at all."""
    await ensure_reachable(config.url, config.timeout)
    async with OutboundClient(connections=1) as sender:
        return await run_checks(config, sender, on_start)
