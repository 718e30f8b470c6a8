"""The replay target (options, masking, requests) and the streaming batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from tests.helpers import ThreadedServer
from tests.scripted import Scripted
from vwh.delivery import DeliveryOutcome, Outcome, OutgoingRequest, ResendPolicy, build_request
from vwh.errors import ExitCode, InputError, UsageError
from vwh.outbound import OutboundClient
from vwh.payloads import Payload, Problem
from vwh.replay import DEFAULT_TARGET, Tally, Target, replay_stream

KEPT = Payload(
    "#1",
    b"{}",
    method="PUT",
    headers=(("User-Agent", "Vendasta/1.0"), ("X-Trace", "kept"), ("X-Sig", "old")),
)


def test_options_are_checked_as_typed() -> None:
    target = Target.from_options(DEFAULT_TARGET, "", "X-Sig", ["X-A: 1", "X-B:2"])
    assert target.token is None and target.token_header == "X-Sig"
    assert target.headers == (("X-A", "1"), ("X-B", "2"))
    with pytest.raises(UsageError, match="bad URL 'localhost:8787'"):
        Target.from_options("localhost:8787")
    with pytest.raises(UsageError, match="bad header 'X-A 1'"):
        Target.from_options(DEFAULT_TARGET, header_texts=["X-A 1"])
    with pytest.raises(UsageError, match="bad header"):
        Target.from_options(DEFAULT_TARGET, token_header="Two Words")


def test_describe_masks_the_token() -> None:
    text = Target(token="a-very-secret-token").describe()
    assert "a-very-secret-token" not in text and "Verifier-Token: " in text
    assert Target().describe() == f"{DEFAULT_TARGET} (no token)"


def test_kept_headers_only_when_asked_and_never_the_token() -> None:
    target = Target("http://h/", "now", "X-Sig", (("X-Trace", "given"),))
    plain = target.request_for(KEPT)
    assert plain.method == "PUT" and plain.label == "#1"
    assert ("X-Sig", "now") in plain.headers and ("X-Trace", "given") in plain.headers
    assert ("User-Agent", "Vendasta/1.0") not in plain.headers
    kept = target.request_for(KEPT, keep_headers=True)
    assert [h for h in kept.headers if h[0] in ("User-Agent", "X-Trace", "X-Sig")] == [
        ("X-Sig", "now"),
        ("User-Agent", "Vendasta/1.0"),
        ("X-Trace", "given"),
    ]


@pytest.mark.parametrize(
    ("to", "path", "query", "url"),
    [
        ("http://h:1/", "/hooks/a b", "x=1", "http://h:1/hooks/a%20b?x=1"),
        ("http://h:1", "/hooks", "", "http://h:1/hooks"),
        ("http://h:1/api/", "/hooks", "", "http://h:1/api/hooks"),
        ("http://h:1/exact?k=2", "/hooks", "a=1", "http://h:1/exact?k=2&a=1"),
        ("http://h:1/exact", None, "", "http://h:1/exact"),
    ],
)
def test_an_exported_request_keeps_its_path_and_query_as_forwarding_does(
    to: str, path: str | None, query: str, url: str
) -> None:
    payload = Payload("x:1", b"{}", method="PATCH", path=path, query=query)
    request = Target(to).request_for(payload)
    assert (request.url, request.method) == (url, "PATCH")


# The streaming batch


FAST = ResendPolicy(attempts=3, backoff=0.05, timeout=5)


def stream(
    url: str,
    items: Iterable[OutgoingRequest | Problem],
    concurrency: int,
    on_result: Callable[[DeliveryOutcome], None],
    **kw: Any,
) -> Tally:
    async def go() -> Tally:
        async with OutboundClient(connections=concurrency) as client:
            return await replay_stream(
                client, items, FAST, on_result, concurrency=concurrency, **kw
            )

    return asyncio.run(go())


def test_results_come_in_input_order_with_bounded_concurrency() -> None:
    # Early requests are the slowest, so they finish last.
    app = Scripted(*[(200, 0.2 - i * 0.01) for i in range(20)])
    seen: list[str] = []
    with ThreadedServer(app) as server:
        requests = [build_request(server.url, b'{"n": %d}' % i, label=f"p{i}") for i in range(20)]
        tally = stream(server.url, requests, 4, lambda o: seen.append(o.request.label))
    assert seen == [f"p{i}" for i in range(20)]
    assert tally.counts[Outcome.DELIVERED] == 20 and tally.exit_code is ExitCode.OK
    assert app.max_in_flight <= 4 and app.count == 20


def test_results_waiting_for_a_slow_one_are_bounded() -> None:
    """The first delivery takes a second; the others cannot pile up behind it."""
    app = Scripted(by_body=lambda body: (200, 1.0) if body == b'{"n": 0}' else (200, 0.0))
    sent_when_first_done: list[int] = []

    def on_result(o: DeliveryOutcome) -> None:
        if not sent_when_first_done:
            sent_when_first_done.append(app.count)

    with ThreadedServer(app) as server:
        requests = (build_request(server.url, b'{"n": %d}' % i) for i in range(200))
        tally = stream(server.url, requests, 2, on_result)
    assert tally.sent == 200
    assert sent_when_first_done[0] <= 4 * 2  # the window: 4 x concurrency


def test_a_problem_stops_the_batch_after_what_came_before() -> None:
    app = Scripted(200)
    seen: list[str] = []
    with ThreadedServer(app) as server:
        items: list[OutgoingRequest | Problem] = [
            build_request(server.url, b"{}", label="a"),
            Problem("b", "b.json: bad"),
            build_request(server.url, b"{}", label="c"),
        ]
        with pytest.raises(InputError) as info:
            stream(server.url, items, 4, lambda o: seen.append(o.request.label))
        skipped: list[Problem] = []
        tally = stream(
            server.url, items, 4, lambda o: seen.append(o.request.label),
            skip_invalid=True, on_skipped=skipped.append,
        )  # fmt: skip
    assert str(info.value) == (
        "b.json: bad (stopped there: the 1 payload before it went out, nothing after it)"
    )
    assert seen == ["a", "a", "c"] and app.count == 3
    assert tally.skipped == 1 and skipped == [items[1]]


def test_a_reader_that_fails_ends_the_batch_with_its_error() -> None:
    def broken() -> Iterator[OutgoingRequest]:
        yield build_request("http://127.0.0.1:9/", b"{}")
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        stream("http://127.0.0.1:9/", broken(), 2, lambda o: None)


# One query field: a kept or exported request's query as the store kept it, secrets
# masked; a masked value stands for a secret never kept, so it is never sent.
MASKED_QUERY = "src=v&sig=••••en (21 chars)&page=2"


@pytest.mark.parametrize("path", [None, "/hooks"], ids=["kept", "exported"])
def test_masked_query_values_are_never_sent(path: str | None) -> None:
    from vwh.webhook import TokenPlace

    payload = Payload("#1", b"{}", path=path, query=MASKED_QUERY)
    bare = Target("http://h:1/").request_for(payload)
    assert "••••" not in bare.url and "%E2%80%A2" not in bare.url
    assert bare.url.endswith("?src=v&page=2")
    place = Target("http://h:1/", "tok-now", token_place=TokenPlace("query", "sig"))
    assert place.request_for(payload).url.endswith("?src=v&page=2&sig=tok-now")


def test_a_query_with_nothing_masked_goes_out_byte_for_byte() -> None:
    payload = Payload("#1", b"{}", path="/h", query="a=%20b&&c")
    assert Target("http://h:1/").request_for(payload).url == "http://h:1/h?a=%20b&&c"
