"""Replaying bodies: where they go and what they carry, and the batch that sends them.

`vwh replay` and `vwh sign` share the Target, so the request sign prints is the
request replay sends. The batch streams: bodies are read while earlier ones are
delivered, so the first request goes out at once and memory does not grow with the
input.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from vwh.delivery import (
    DeliveryOutcome,
    Outcome,
    OutgoingRequest,
    ResendPolicy,
    Sleep,
    batch_exit_code,
    build_request,
    check_url,
    deliver,
    parse_header,
    parse_pair,
)
from vwh.errors import ExitCode, InputError
from vwh.outbound import OutboundClient
from vwh.payloads import Payload, Problem
from vwh.webhook import DEFAULT_TOKEN_HEADER, TokenPlace, mask_secret, unmasked_query

DEFAULT_TARGET = "http://127.0.0.1:8787/"


@dataclass(frozen=True)
class Target:
    """The handler to send to, the token to put on every request, and extra headers."""

    url: str = DEFAULT_TARGET
    token: str | None = None
    token_header: str = DEFAULT_TOKEN_HEADER
    headers: tuple[tuple[str, str], ...] = ()
    token_place: TokenPlace | None = None  # None: the header token_header
    query: tuple[tuple[str, str], ...] = ()  # --query, added to the URL's query
    cookies: tuple[tuple[str, str], ...] = ()  # --cookie

    @classmethod
    def from_options(
        cls,
        url: str,
        token: str | None = None,
        token_header: str = DEFAULT_TOKEN_HEADER,
        header_texts: Sequence[str] = (),
        *,
        token_place: TokenPlace | None = None,
        query_texts: Sequence[str] = (),
        cookie_texts: Sequence[str] = (),
    ) -> Target:
        """Check the options as a user typed them; UsageError names the bad one."""
        if token_place is not None and token_place.is_header:
            token_header, token_place = token_place.name, None
        name, _ = parse_header(f"{token_header}: x")
        headers = tuple(parse_header(text) for text in header_texts)
        query = tuple(parse_pair(text, "--query") for text in query_texts)
        cookies = tuple(parse_pair(text, "--cookie") for text in cookie_texts)
        return cls(check_url(url), token or None, name, headers, token_place, query, cookies)

    @property
    def place(self) -> TokenPlace:
        return self.token_place or TokenPlace("header", self.token_header)

    def describe(self) -> str:
        """The target for a report: the token masked, never shown."""
        if self.token is None:
            return f"{self.url} (no token)"
        place = self.place
        where = place.name if place.is_header else place.describe()
        return f"{self.url} with {where}: {mask_secret(self.token)}"

    def request_for(self, payload: Payload, *, keep_headers: bool = False) -> OutgoingRequest:
        """The request for one body: kept headers (if asked), then the token, then -H."""
        given = {name.lower() for name, _ in self.headers} | {self.token_header.lower()}
        kept = [h for h in payload.headers if h[0].lower() not in given] if keep_headers else []
        return build_request(
            url_for(self.url, payload.path, payload.query),
            payload.body,
            token=self.token,
            token_header=self.token_header,
            extra_headers=[*kept, *self.headers],
            method=payload.method,
            label=payload.label,
            token_place=self.token_place,
            query=self.query,
            cookies=[*payload.cookies, *self.cookies],
        )


def url_for(base: str, path: str | None, query: str = "") -> str:
    """Where a payload goes: --to, plus an exported request's own path and query.

    The rule is --forward-to's: a URL that ends with '/' (or has no path) gets the
    request's path appended, any other URL takes every request exactly there; the
    request's query string is always added, without its masked values (they stand for
    secrets the store never kept). A plain body (no path) goes to --to.
    """
    query = unmasked_query(query)
    if path is None and not query:
        return base
    parts = urlsplit(base)
    where = parts.path
    if path is not None and (where == "" or where.endswith("/")):
        where = where.rstrip("/") + encoded_path(path)
    joined = "&".join(q for q in (parts.query, query) if q)
    return urlunsplit((parts.scheme, parts.netloc, where or "/", joined, ""))


def encoded_path(path: str) -> str:
    """A kept path as it goes in a URL: the store keeps it decoded, as the server read it."""
    return quote(path, safe="/:@!$&'()*+,;=-._~")


@dataclass
class Tally:
    """What a batch did, counted as it went: the report needs no list of every result."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    skipped: int = 0

    @property
    def sent(self) -> int:
        return sum(self.counts.values())

    @property
    def exit_code(self) -> ExitCode:
        return batch_exit_code(kind for kind, n in self.counts.items() if n)


Item = TypeVar("Item")


class _Feed(Generic[Item]):
    """Reads items in a thread of its own, at most `ahead` of the sender.

    Reading (a pipe that waits for its writer, a slow disk, parsing a line) never holds
    up the deliveries under way, and memory stays bounded whatever the input's size.
    """

    def __init__(self, items: Iterable[Item], ahead: int) -> None:
        self._items = items
        self._space = threading.Semaphore(max(1, ahead))
        self._queue: asyncio.Queue[tuple[int, Item] | _End] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._end: _End | None = None
        # A daemon thread: one blocked on an idle stdin must not keep vwh from exiting.
        self._thread = threading.Thread(target=self._read, name="vwh-replay-read", daemon=True)
        self._thread.start()

    async def get(self) -> tuple[int, Item] | None:
        """The next (index, item), None at the end; the reader's exception, if it raised."""
        got: tuple[int, Item] | _End | None = self._end
        if got is None:
            got = await self._queue.get()
            if isinstance(got, _End):
                self._end = got
                self._queue.put_nowait(got)  # for the next worker already waiting
        if isinstance(got, _End):
            if got.error is not None:
                raise got.error
            return None
        self._space.release()
        return got

    def close(self) -> None:
        """Stop reading; workers waiting for an item get the end instead."""
        if not self._stopped:
            self._stopped = True
            self._space.release()
            self._queue.put_nowait(_End())

    def _read(self) -> None:
        iterator = iter(self._items)
        end = _End()
        try:
            for index, item in enumerate(iterator):
                while not self._space.acquire(timeout=0.2):
                    if self._stopped:
                        break
                if self._stopped:
                    break
                self._put((index, item))
        except Exception as exc:  # passed on to the sender, which raises it
            end = _End(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # files of an unfinished generator are closed here, at once
        self._put(end)

    def _put(self, item: tuple[int, Item] | _End) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is reading
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


@dataclass(frozen=True)
class _End:
    error: Exception | None = None


async def replay_stream(
    client: OutboundClient,
    items: Iterable[OutgoingRequest | Problem],
    policy: ResendPolicy,
    on_result: Callable[[DeliveryOutcome], None],
    *,
    concurrency: int = 8,
    skip_invalid: bool = False,
    on_skipped: Callable[[Problem], None] | None = None,
    on_send: Callable[[OutgoingRequest], None] | None = None,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Tally:
    """Deliver items as they are read, `concurrency` at a time; results in input order.

    A fixed set of workers takes items in turn, and at most `4 * concurrency` results
    wait for a slow one before them, so memory does not grow with the input. A Problem
    (an input that cannot be sent) stops the batch there: what came before it is
    delivered and reported, nothing after it is sent, and InputError says so. With
    `skip_invalid` it is passed to `on_skipped` instead, unless it is `fatal`.
    `on_send` hears of each request as it is taken, before its first attempt.
    """
    concurrency = max(1, concurrency)
    rng = rng or random.Random()
    tally = Tally()
    window = asyncio.Semaphore(4 * concurrency)  # taken, not yet passed on
    waiting: dict[int, DeliveryOutcome | Problem] = {}
    next_out = 0
    stop: Problem | None = None
    feed: _Feed[OutgoingRequest | Problem] = _Feed(items, ahead=2 * concurrency)

    def pass_on() -> None:
        nonlocal next_out
        while next_out in waiting:
            done = waiting.pop(next_out)
            next_out += 1
            window.release()
            if isinstance(done, Problem):
                tally.skipped += 1
                if on_skipped is not None:
                    on_skipped(done)
            else:
                tally.counts[done.outcome] += 1
                on_result(done)

    async def worker() -> None:
        nonlocal stop
        while stop is None:
            await window.acquire()
            got = await feed.get()
            if got is None or stop is not None:
                window.release()
                return
            index, item = got
            if isinstance(item, Problem):
                if not skip_invalid or item.fatal:
                    stop = item
                    window.release()
                    feed.close()
                    return
                waiting[index] = item
            else:
                if on_send is not None:
                    on_send(item)
                waiting[index] = await deliver(client.send, item, policy, rng=rng, sleep=sleep)
            pass_on()

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        feed.close()
    if stop is not None:
        raise InputError(stop.message + _stopped_after(tally))
    return tally


def _stopped_after(tally: Tally) -> str:
    if not tally.sent:
        return ""
    sent = f"{tally.sent} payload{'s' * (tally.sent != 1)}"
    return f" (stopped there: the {sent} before it went out, nothing after it)"


def deliver_all(
    requests: Iterable[OutgoingRequest], policy: ResendPolicy, *, concurrency: int = 8
) -> list[DeliveryOutcome]:
    """Deliver a batch from synchronous code, in an event loop of its own (tests, bench)."""
    outcomes: list[DeliveryOutcome] = []

    async def run() -> None:
        async with OutboundClient(connections=concurrency) as client:
            await replay_stream(client, requests, policy, outcomes.append, concurrency=concurrency)

    asyncio.run(run())
    return outcomes
