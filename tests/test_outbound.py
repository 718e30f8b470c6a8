"""The one outbound client: kept-alive connections the server closed, against raw servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.handlers import PATH, TOKEN
from tests.scripted import KeepAliveCloser
from vwh.check import CheckConfig, run_checks
from vwh.delivery import Outcome, OutgoingRequest, ResendPolicy, batch_exit_code, build_request
from vwh.errors import ExitCode
from vwh.outbound import OutboundClient
from vwh.replay import deliver_all

FAST = ResendPolicy(attempts=3, backoff=0.05, timeout=5)


def bodies(count: int) -> list[bytes]:
    return [b'{"n": %d}' % n for n in range(count)]


def in_groups(url: str, groups: int, size: int, gap: float) -> Iterator[OutgoingRequest]:
    """Requests in groups with a pause between: the connections idle in the pauses."""
    for group in range(groups):
        if group:
            time.sleep(gap)  # read in the replay's reader thread: the senders go on
        for body in bodies(size):
            yield build_request(url, body.replace(b"}", b', "g": %d}' % group))


@pytest.mark.parametrize("concurrency", [1, 8])
def test_connections_closed_when_idle_are_retried_fresh_and_not_counted(concurrency: int) -> None:
    with KeepAliveCloser("idle", idle=0.05) as server:
        requests = in_groups(server.url, groups=5, size=8, gap=0.15)
        outcomes = deliver_all(requests, FAST, concurrency=concurrency)
    assert [o.outcome for o in outcomes] == [Outcome.DELIVERED] * 40
    assert batch_exit_code(outcomes) is ExitCode.OK
    assert {len(o.attempts) for o in outcomes} == {1}
    assert server.count == 40 and len(set(server.bodies)) == 40  # one request per payload
    assert server.closed_unread > 0  # kept connections the server had closed were tried


def test_a_failure_after_answer_bytes_started_counts_as_an_attempt() -> None:
    """The handler saw the request and began to answer: it may have done the work."""
    with KeepAliveCloser("partial-on-reuse") as server:
        outcomes = deliver_all(
            [build_request(server.url, b) for b in bodies(2)], FAST, concurrency=1
        )
    first, second = outcomes
    assert first.outcome is Outcome.DELIVERED and len(first.attempts) == 1
    assert second.outcome is Outcome.DELIVERED
    assert [a.status for a in second.attempts] == [None, 200]
    assert (second.attempts[0].error or "").startswith("connection broken before the answer")
    assert second.attempts[1].waited > 0  # a resend after the backoff, as Vendasta's
    assert server.bodies == [b'{"n": 0}', b'{"n": 1}', b'{"n": 1}']


def test_check_gets_the_same_rule() -> None:
    """`vwh check` sends one request after another on one kept connection."""
    with KeepAliveCloser("after-answer") as server:

        async def go() -> list[int | None]:
            async with OutboundClient(connections=1) as client:
                report = await run_checks(CheckConfig(server.url + PATH, TOKEN), client)
            return [r.attempt.status for r in report.results if r.attempt is not None]

        statuses = asyncio.run(go())
    assert statuses == [200] * 7  # no check saw a broken connection
    assert server.count == 7 and server.closed_unread == 6
