"""Delivery against real local servers that answer by script: Vendasta's resend rules."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ThreadedServer, free_port
from tests.scripted import CutShort, Scripted
from vwh.delivery import (
    USER_AGENT,
    DeliveryOutcome,
    Outcome,
    ResendPolicy,
    batch_exit_code,
    build_request,
    parse_header,
)
from vwh.delivery import deliver as deliver_with_rules
from vwh.errors import ExitCode, UsageError
from vwh.outbound import OutboundClient
from vwh.replay import deliver_all
from vwh.signing import render_raw

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()
FAST = ResendPolicy(attempts=3, backoff=0.05, timeout=5)


def deliver(url: str, policy: ResendPolicy = FAST, body: bytes = ORDER) -> DeliveryOutcome:
    [outcome] = deliver_all([build_request(url, body, token="s3cret")], policy)
    return outcome


def statuses(outcome: DeliveryOutcome) -> list[int | None]:
    return [a.status for a in outcome.attempts]


def test_503_503_200_is_delivered_on_the_third_attempt_after_backoff() -> None:
    app = Scripted(503, 503, 200)
    with ThreadedServer(app) as server:
        outcome = deliver(server.url + "/hook")
    assert outcome.outcome is Outcome.DELIVERED and statuses(outcome) == [503, 503, 200]
    assert app.count == 3
    waits = [a.waited for a in outcome.attempts]
    assert waits[0] == 0
    for number, waited in enumerate(waits[1:], start=2):
        low, high = FAST.wait_bounds(number)
        assert low <= waited <= high
    gaps = [b.at - a.at for a, b in pairwise(app.received)]
    assert all(gap >= FAST.wait_bounds(n + 2)[0] for n, gap in enumerate(gaps))


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_is_rejected_and_never_resent(status: int) -> None:
    app = Scripted(status)
    with ThreadedServer(app) as server:
        outcome = deliver(server.url)
    assert outcome.outcome is Outcome.REJECTED and statuses(outcome) == [status]
    assert app.count == 1 and outcome.exit_code is ExitCode.REJECTED


def test_3xx_is_rejected_and_the_redirect_is_not_followed() -> None:
    app = Scripted(302)
    with ThreadedServer(app) as server:
        outcome = deliver(server.url + "/hook")
    assert outcome.outcome is Outcome.REJECTED and statuses(outcome) == [302]
    assert [r.path for r in app.received] == ["/hook"]


def test_5xx_until_attempts_run_out_gives_up() -> None:
    app = Scripted(500)
    with ThreadedServer(app) as server:
        outcome = deliver(server.url, ResendPolicy(attempts=4, backoff=0.01))
    assert outcome.outcome is Outcome.GAVE_UP and statuses(outcome) == [500] * 4
    assert app.count == 4 and outcome.exit_code is ExitCode.GAVE_UP


def test_an_answer_slower_than_the_timeout_is_resent() -> None:
    app = Scripted((200, 5.0))
    with ThreadedServer(app) as server:
        outcome = deliver(server.url, ResendPolicy(attempts=2, backoff=0.01, timeout=0.2))
    assert outcome.outcome is Outcome.GAVE_UP and app.count == 2
    for attempt in outcome.attempts:
        assert attempt.timed_out and attempt.error == "no answer within 0.2s"
        assert 190 <= attempt.latency_ms < 2000


@pytest.mark.parametrize(
    ("partial", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Le", "the server closed the connection"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", "the body of the answer was cut"),
        (b"", "the server closed the connection"),
        (b"nonsense\r\n\r\n", "the answer is not valid HTTP"),
    ],
)
def test_a_connection_broken_before_the_answer_is_complete_is_resent(
    partial: bytes, reason: str
) -> None:
    with CutShort(partial) as server:
        outcome = deliver(server.url)
    assert outcome.outcome is Outcome.GAVE_UP and statuses(outcome) == [None] * 3
    assert server.count == 3
    error = outcome.last.error or ""
    assert error.startswith("connection broken before the answer was complete: ")
    assert reason in error and "\n" not in error


def test_a_refused_connection_is_resent_and_says_so() -> None:
    outcome = deliver(f"http://127.0.0.1:{free_port()}/")
    assert outcome.outcome is Outcome.GAVE_UP and len(outcome.attempts) == 3
    assert {a.error for a in outcome.attempts} == {"could not connect: connection refused"}


def test_one_attempt_when_the_policy_allows_one() -> None:
    app = Scripted(503)
    with ThreadedServer(app) as server:
        outcome = deliver(server.url, ResendPolicy(attempts=1))
    assert outcome.outcome is Outcome.GAVE_UP and app.count == 1


def test_the_body_goes_out_byte_for_byte_with_json_type_agent_and_token() -> None:
    app = Scripted(200)
    odd = b'{ "b":1,\n  "a":  "\\u00e9" }\n'
    with ThreadedServer(app) as server:
        deliver(server.url, body=odd)
    [got] = app.received
    assert got.body == odd and got.method == "POST"
    assert got.header("content-type") == "application/json"
    assert got.header("user-agent") == USER_AGENT and USER_AGENT.startswith("vwh/")
    assert got.header("verifier-token") == "s3cret"


@pytest.mark.parametrize(
    ("method", "body"), [("POST", ORDER), ("POST", b""), ("GET", b""), ("PUT", b"{}")]
)
def test_the_wire_carries_exactly_what_sign_prints(method: str, body: bytes) -> None:
    """No header is added behind our back: raw HTTP from `vwh sign` is the request."""
    seen: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/AG-1:ORD-2?x=a b&y=é"
    headers = [("X-Trace", "abc")]
    request = build_request(url, body, token="s3cret", extra_headers=headers, method=method)
    expected = render_raw(request).encode()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while len(data) < len(expected) and (chunk := conn.recv(65536)):
                data += chunk
            seen.append(data)
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    [outcome] = deliver_all([request], FAST)
    thread.join(5)
    listener.close()
    assert outcome.last.status == 204
    assert seen == [expected]


def test_equal_jitter_waits_stay_within_bounds_and_double() -> None:
    policy = ResendPolicy(backoff=1.0, max_backoff=5.0)
    assert [policy.wait_bounds(n) for n in (2, 3, 4, 5)] == [
        (0.5, 1.0),
        (1.0, 2.0),
        (2.0, 4.0),
        (2.5, 5.0),
    ]
    rng = random.Random(7)
    for n in (2, 3, 4, 5):
        low, high = policy.wait_bounds(n)
        assert all(low <= policy.wait_before(n, rng) <= high for _ in range(200))


def test_waits_are_slept_through_the_injected_sleep() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go(url: str) -> DeliveryOutcome:
        async with OutboundClient() as client:
            policy = ResendPolicy(attempts=3, backoff=10.0)
            request = build_request(url, ORDER)
            return await deliver_with_rules(
                client.send, request, policy, sleep=fake_sleep, rng=random.Random(1)
            )

    with ThreadedServer(Scripted(503)) as server:
        outcome = asyncio.run(go(server.url))
    assert slept == [a.waited for a in outcome.attempts[1:]]
    assert 5 <= slept[0] <= 10 and 10 <= slept[1] <= 20


def outcomes_of(*kinds: Outcome) -> Sequence[DeliveryOutcome]:
    request = build_request("http://h.test/", ORDER)
    return [DeliveryOutcome(request, kind, []) for kind in kinds]


def test_batch_exit_code_puts_gave_up_before_rejected() -> None:
    assert batch_exit_code(outcomes_of(Outcome.DELIVERED)) is ExitCode.OK
    assert batch_exit_code(outcomes_of(Outcome.DELIVERED, Outcome.REJECTED)) is ExitCode.REJECTED
    assert batch_exit_code(outcomes_of(Outcome.REJECTED, Outcome.GAVE_UP)) is ExitCode.GAVE_UP
    assert batch_exit_code([Outcome.DELIVERED, Outcome.REJECTED]) is ExitCode.REJECTED


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("NoColon", "expected 'Name: value'"),
        (": empty", "expected 'Name: value'"),
        ("Two Words: x", "expected 'Name: value'"),
        ("X: a\nb", "line breaks"),
        ("X: a\rb", "line breaks"),
    ],
)
def test_parse_header_refuses_what_is_not_a_header(bad: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_header(bad)
    assert parse_header("X-Trace:  a b ") == ("X-Trace", "a b")


@pytest.mark.parametrize(
    "url", ["ftp://h/", "http://", "127.0.0.1:8787", "http://h:99999/", "http://h:x/"]
)
def test_build_request_refuses_a_malformed_url(url: str) -> None:
    with pytest.raises(UsageError, match="bad URL"):
        build_request(url, ORDER)


def test_extra_headers_replace_the_defaults_of_the_same_name() -> None:
    request = build_request(
        "http://h/", ORDER, token="t", extra_headers=[("content-type", "text/plain")]
    )
    names = [n.lower() for n, _ in request.headers]
    assert names.count("content-type") == 1
    assert ("content-type", "text/plain") in request.headers


def test_a_non_ascii_token_goes_out_as_utf8_and_vwh_accepts_it(tmp_path: Path) -> None:
    from tests.helpers import served_receiver
    from vwh.receiver_settings import ReceiverSettings

    async def go(url: str) -> DeliveryOutcome:
        request = build_request(url, ORDER, token="Tö")
        async with OutboundClient() as client:
            return await deliver_with_rules(client.send, request, FAST)

    with served_receiver(tmp_path / "s.sqlite3", ReceiverSettings(token="Tö")) as served:
        outcome = asyncio.run(go(served.url))
    assert outcome.outcome is Outcome.DELIVERED and statuses(outcome) == [200]
    assert [r.verdict for r in served.shown] == ["ok"]


def test_a_token_that_is_not_utf8_is_refused_not_altered() -> None:
    with pytest.raises(UsageError, match="not UTF-8"):
        build_request("http://127.0.0.1:1/", ORDER, token="\udcffTö")


def test_query_cookies_and_the_token_in_either_place() -> None:
    from vwh.webhook import TokenPlace

    request = build_request(
        "http://h/x?a=1", b"{}", token="t k", token_place=TokenPlace("query", "sig"),
        query=[("b", "2 3")], cookies=[("theme", "dark")],
    )  # fmt: skip
    assert request.url == "http://h/x?a=1&b=2%203&sig=t%20k"
    assert ("Cookie", "theme=dark") in request.headers
    assert all(name != "Verifier-Token" for name, _ in request.headers)
    cookie = build_request(
        "http://h/x", b"{}", token="t", token_place=TokenPlace("cookie", "s"),
        extra_headers=[("Cookie", "a=1; s=old")],
    )  # fmt: skip
    assert [h for h in cookie.headers if h[0] == "Cookie"] == [("Cookie", "a=1; s=t")]
    assert cookie.url == "http://h/x"
