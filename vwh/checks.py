"""The checks of `vwh check` as data: what each expects, and what an answer means.

Each check sends one delivery and is judged by what Vendasta does with the answer
(2xx done, 4xx dropped for good, 5xx or no answer resent): the rules below say, for
each kind of answer, whether that passes and, when not, what it means in production
and how to fix it. vwh.check plans the deliveries, sends them and builds the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from vwh.delivery import Attempt, check_url
from vwh.errors import UsageError
from vwh.expect import ExpectedKey, judge_answer
from vwh.webhook import DEFAULT_TOKEN_HEADER, VENDASTA_TIMEOUT, TokenPlace

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
    # Only with --expect-response: the Send a webhook step's Response body section.
    CheckSpec(9, "response-data", "the answer's data for later steps", "declared keys"),
)
RESPONSE_DATA = "response-data"
# The checks run when none are chosen (response-data needs --expect-response).
CHECK_NAMES = tuple(spec.name for spec in CHECKS if spec.name != RESPONSE_DATA)
_BY_KEY = {key: spec for spec in CHECKS for key in (spec.name, str(spec.number))}
# The checks that send a valid body with the right token: the handler does its real work.
REAL_WORK = ("valid", "header-case", "unknown-fields", "repeat", RESPONSE_DATA)
TIMED = REAL_WORK[:4]  # response-data runs after timing: it is not timed

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
            "compare the {where} with your secret (hmac.compare_digest) before anything"
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
            "refuse a request without the {where} (a common bug: checking the token"
            " only when it is there)",
        ),
        Answer.SERVER_ERROR: (
            Result.FAILED,
            "Vendasta would resend a delivery without a token forever",
            "answer 401 when the {where} is absent; read it with a default, not a crash",
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


RULES[RESPONSE_DATA] = _EXPECT_2XX  # and a 2xx is judged by its body (_response_data)


@dataclass(frozen=True)
class CheckConfig:
    """What to check and how; validated on creation (UsageError)."""

    url: str
    token: str
    token_header: str = DEFAULT_TOKEN_HEADER
    extra_headers: tuple[tuple[str, str], ...] = ()
    token_place: TokenPlace | None = None  # None: the header token_header
    query: tuple[tuple[str, str], ...] = ()  # --query on every delivery
    cookies: tuple[tuple[str, str], ...] = ()  # --cookie on every delivery
    expect_response: tuple[ExpectedKey, ...] | None = None  # --expect-response
    payload: bytes | None = None  # the valid body (a JSON object); None: a sample order
    payload_label: str = ""  # where the payload came from, for the report
    timeout: float = VENDASTA_TIMEOUT
    warn_after: float = WARN_AFTER
    checks: tuple[str, ...] = ()  # () : every check these settings can run

    @property
    def place(self) -> TokenPlace:
        return self.token_place or TokenPlace("header", self.token_header)

    @property
    def where(self) -> str:
        """The token's place in advice: 'Verifier-Token header', 'sig query parameter'."""
        place = self.place
        kind = {"query": "query parameter"}.get(place.kind, place.kind)
        return f"{place.name} {kind}"

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
        for name, _ in self.cookies if self.place.kind == "cookie" else ():
            if name == self.place.name:
                raise UsageError(
                    f"--cookie {name}: the checks set the token cookie themselves; use --token"
                )
        for name, _ in self.query if self.place.kind == "query" else ():
            if name == self.place.name:
                raise UsageError(
                    f"--query {name}: the checks set the token parameter themselves; use --token"
                )
        checks = select_checks(
            self.checks, place=self.place.kind, expect=self.expect_response is not None
        )
        object.__setattr__(self, "checks", checks)


def select_checks(
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    *,
    place: str = "header",
    expect: bool = False,
) -> tuple[str, ...]:
    """The checks to run, in suite order, from names or numbers (comma-separated or not).

    header-case runs only for a token in a header; response-data only with
    --expect-response (asking for either otherwise is a UsageError).
    """
    available = [n for n in CHECK_NAMES if place == "header" or n != "header-case"]
    if expect:
        available.append(RESPONSE_DATA)
    asked = _check_names(only)
    if "header-case" in asked and place != "header":
        raise UsageError(
            "header-case checks the letter case of a header name: the token is not in a header"
        )
    if RESPONSE_DATA in asked and not expect:
        raise UsageError(
            "response-data needs --expect-response 'KEY:TYPE,...' (the step's Response body keys)"
        )
    wanted = asked or set(available)
    skipped = _check_names(skip)
    chosen = tuple(s.name for s in CHECKS if s.name in wanted and s.name not in skipped)
    if not chosen:
        raise UsageError("no check left to run")
    if "timing" in chosen and not set(chosen) & set(TIMED):
        raise UsageError(
            f"timing measures the valid deliveries: also run one of {', '.join(TIMED)}"
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


def judge(name: str, attempt: Attempt, config: CheckConfig) -> Rule | None:
    """The verdict on one delivery's answer; None when it passed."""
    answer = classify(attempt)
    rule = RULES[name].get(answer)
    if rule is None and answer is Answer.SUCCESS and name == "valid":
        rule = _slowness(attempt.latency_ms, config)
    if rule is None and answer is Answer.SUCCESS and name == RESPONSE_DATA:
        return _response_data(attempt, config)  # its words are final: no placeholders
    if rule is None:
        return None
    result, effect, fix = rule
    words = {"header": config.token_header, "where": config.where}
    return result, effect.format(**words), fix.format(**words)


def _response_data(attempt: Attempt, config: CheckConfig) -> Rule | None:
    """A 2xx answer whose declared keys are missing, mistyped or nested fails."""
    assert config.expect_response is not None
    verdict = judge_answer(config.expect_response, attempt.body)
    if verdict.ok:
        return None
    keys = ", ".join(str(k) for k in config.expect_response)
    return (
        Result.FAILED,
        "; ".join(verdict.problems)
        + " (Vendasta passes nothing, or the wrong thing, to the automation's later steps)",
        f"answer 2xx with one flat JSON object holding {keys}, as the step's Response body"
        " section declares them",
    )


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


def duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"
