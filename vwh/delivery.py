"""Webhook deliveries the way Vendasta makes them: the request, then its resend rules.

A delivery is a series of attempts. 2xx ends it as delivered; 3xx and 4xx end it
as rejected (Vendasta never resends those, and redirects are not followed); 5xx,
no answer in time, or a broken connection make it try again after an exponential
backoff with jitter, until the attempts run out and it gives up.

This module says what is sent and what an answer means; vwh.outbound puts each
attempt on the wire.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlsplit

from vwh import __version__
from vwh.errors import ExitCode, UsageError
from vwh.webhook import (
    DEFAULT_TOKEN_HEADER,
    VENDASTA_TIMEOUT,
    Reaction,
    TokenPlace,
    vendasta_reaction,
)

USER_AGENT = f"vwh/{__version__} (Vendasta webhook tester)"


@dataclass(frozen=True)
class OutgoingRequest:
    """Exactly what goes on the wire: `vwh sign` prints it, `vwh replay` sends it."""

    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    method: str = "POST"
    label: str = ""  # where the body came from, for reports


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' as given to -H; raise UsageError when it is not that."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise UsageError(f"bad header {text!r}: expected 'Name: value'")
    if any(c in value for c in "\r\n\0"):
        raise UsageError(f"bad header {text!r}: a value cannot hold line breaks")
    return name, value.strip()


def check_url(url: str, what: str = "URL") -> str:
    """An http(s) URL with a host, or UsageError naming `what` (the option, say)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"bad {what} {url!r}: expected http://host[:port]/path or https://...")
    try:
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise UsageError(f"bad {what} {url!r}: the port is not a number from 0 to 65535") from None
    return url


def parse_pair(text: str, option: str) -> tuple[str, str]:
    """'NAME=VALUE' as given to --query or --cookie; UsageError when it is not that."""
    name, sep, value = text.partition("=")
    bad = " \t\r\n;=&" if option == "--query" else " \t\r\n;=,"
    if not sep or not name or any(c in bad for c in name):
        raise UsageError(f"bad {option} {text!r}: expected NAME=VALUE")
    if any(c in value for c in "\r\n\0" + (";" if option == "--cookie" else "")):
        raise UsageError(f"bad {option} {text!r}: the value cannot hold this character")
    return name, value


def with_query(
    url: str, params: Sequence[tuple[str, str]], replace: str | None = None, raw: str = ""
) -> str:
    """The URL with parameters added to its query; `replace`: drop that name's first.

    Everything already in the query, and `raw` (an encoded query), stays byte for
    byte; the new ones are encoded.
    """
    from urllib.parse import quote, unquote_plus

    if not params and replace is None and not raw:
        return url
    base, hash_, fragment = url.partition("#")
    head, sep, query = base.partition("?")
    parts = [p for p in query.split("&") if p] if sep else []
    if replace is not None:
        parts = [p for p in parts if unquote_plus(p.partition("=")[0]) != replace]
    parts += [p for p in raw.split("&") if p]
    parts += [f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in params]
    return head + ("?" + "&".join(parts) if parts else "") + hash_ + fragment


def _with_cookies(
    headers: list[tuple[str, str]], cookies: Sequence[tuple[str, str]], replace: str | None
) -> list[tuple[str, str]]:
    """One Cookie header: the one given (minus `replace`), then the new cookies."""
    kept: list[str] = []
    at = len(headers)
    for i, (name, value) in enumerate(headers):
        if name.lower() == "cookie":
            at = min(at, i)
            kept += [
                c.strip()
                for c in value.split(";")
                if c.strip() and c.partition("=")[0].strip() != replace
            ]
    if not cookies and replace is None:
        return headers
    rest = [h for h in headers if h[0].lower() != "cookie"]
    pairs = kept + [f"{n}={v}" for n, v in cookies]
    if pairs:
        rest.insert(min(at, len(rest)), ("Cookie", "; ".join(pairs)))
    return rest


def build_request(
    url: str,
    body: bytes,
    *,
    token: str | None = None,
    token_header: str = DEFAULT_TOKEN_HEADER,
    extra_headers: Sequence[tuple[str, str]] = (),
    method: str = "POST",
    label: str = "",
    token_place: TokenPlace | None = None,
    query: Sequence[tuple[str, str]] = (),
    cookies: Sequence[tuple[str, str]] = (),
    base_headers: Sequence[tuple[str, str]] | None = None,
) -> OutgoingRequest:
    """The request Vendasta would send: JSON content type, our user agent, the token.

    An extra header replaces a default of the same name (all of its values). The
    token goes where `token_place` says (default: the `token_header` header); a
    query parameter or cookie of its name already there is replaced. `query` is added
    to the URL's query, `cookies` to one Cookie header. `base_headers` replace the
    defaults (a copied curl request brings its own).
    """
    place = token_place or TokenPlace("header", token_header)
    headers: list[tuple[str, str]] = (
        [("Content-Type", "application/json"), ("User-Agent", USER_AGENT)]
        if base_headers is None
        else list(base_headers)
    )
    query = list(query)
    cookies = list(cookies)
    if token is not None:
        try:
            token.encode("utf-8")  # how it goes out (vwh.outbound)
        except UnicodeEncodeError:
            raise UsageError(
                "the token holds bytes that are not UTF-8, which vwh cannot send"
            ) from None
        if place.kind == "query":
            query.append((place.name, token))
        elif place.kind == "cookie":
            cookies.append((place.name, token))
        else:
            headers = [h for h in headers if h[0].lower() != place.name.lower()]
            headers.append((place.name, token))
    overridden = {name.lower() for name, _ in extra_headers}
    headers = [h for h in headers if h[0].lower() not in overridden]
    headers.extend(extra_headers)
    replace = place.name if token is not None and not place.is_header else None
    headers = _with_cookies(headers, cookies, replace if place.kind == "cookie" else None)
    url = with_query(check_url(url), query, replace if place.kind == "query" else None)
    return OutgoingRequest(url, body, tuple(headers), method, label)


@dataclass(frozen=True)
class ResendPolicy:
    """How many times to try and how long to wait between tries.

    The wait before attempt n (n >= 2) is drawn uniformly from
    [b/2, b] with b = backoff * 2**(n-2), capped at max_backoff ("equal jitter").
    """

    attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 60.0
    timeout: float = VENDASTA_TIMEOUT

    def wait_bounds(self, attempt: int) -> tuple[float, float]:
        top = min(self.max_backoff, self.backoff * 2 ** (attempt - 2))
        return top / 2, top

    def wait_before(self, attempt: int, rng: random.Random) -> float:
        low, high = self.wait_bounds(attempt)
        return rng.uniform(low, high)


class Outcome(str, Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    GAVE_UP = "gave-up"


@dataclass
class Attempt:
    """One try: its answer (or why there was none), how long it took, the wait before."""

    number: int
    waited: float
    status: int | None
    latency_ms: float
    error: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    timed_out: bool = False

    @property
    def reaction(self) -> Reaction:
        return vendasta_reaction(self.status)

    def describe(self) -> str:
        return str(self.status) if self.status is not None else (self.error or "no answer")

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "waited_s": round(self.waited, 3),
            "status": self.status,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass
class DeliveryOutcome:
    request: OutgoingRequest
    outcome: Outcome
    attempts: list[Attempt]

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    @property
    def exit_code(self) -> ExitCode:
        return _OUTCOME_EXIT[self.outcome]

    @property
    def elapsed_ms(self) -> float:
        """Time from the first try to the last answer, waits included."""
        return sum(a.waited * 1000 + a.latency_ms for a in self.attempts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary with the handler's answer; no request header, so no token."""
        return {
            "source": self.request.label,
            "method": self.request.method,
            "url": self.request.url,
            "outcome": self.outcome.value,
            "status": self.last.status,
            "error": self.last.error,
            "answer": self.last.body.decode("utf-8", "replace") if self.last.body else None,
            "attempts": [a.to_json() for a in self.attempts],
        }


_OUTCOME_EXIT = {
    Outcome.DELIVERED: ExitCode.OK,
    Outcome.REJECTED: ExitCode.REJECTED,
    Outcome.GAVE_UP: ExitCode.GAVE_UP,
}


def batch_exit_code(outcomes: Iterable[DeliveryOutcome | Outcome]) -> ExitCode:
    """0 when all delivered; 4 when any gave up; else 3 when any was rejected."""
    kinds = {o if isinstance(o, Outcome) else o.outcome for o in outcomes}
    if Outcome.GAVE_UP in kinds:
        return ExitCode.GAVE_UP
    if Outcome.REJECTED in kinds:
        return ExitCode.REJECTED
    return ExitCode.OK


Sleep = Callable[[float], Awaitable[Any]]


class SendOnce(Protocol):
    """One try of a request (vwh.outbound.OutboundClient.send): never raises for the network."""

    async def __call__(
        self, request: OutgoingRequest, timeout: float, *, number: int = ..., waited: float = ...
    ) -> Attempt: ...


async def deliver(
    send: SendOnce,
    request: OutgoingRequest,
    policy: ResendPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
) -> DeliveryOutcome:
    """Send with Vendasta's resend rules until delivered, rejected, or out of attempts."""
    rng = rng or random.Random()
    attempts: list[Attempt] = []
    waited = 0.0
    for number in range(1, max(1, policy.attempts) + 1):
        if number > 1:
            waited = policy.wait_before(number, rng)
            await sleep(waited)
        attempt = await send(request, policy.timeout, number=number, waited=waited)
        attempts.append(attempt)
        reaction = attempt.reaction
        if reaction is Reaction.DONE:
            return DeliveryOutcome(request, Outcome.DELIVERED, attempts)
        if reaction is Reaction.DROPPED:
            return DeliveryOutcome(request, Outcome.REJECTED, attempts)
    return DeliveryOutcome(request, Outcome.GAVE_UP, attempts)
