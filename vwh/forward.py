"""`vwh listen --forward-to`: pass each delivery on to the developer's own handler.

vwh sits between the sender (Vendasta, or `vwh replay`) and the handler: the body
goes on byte for byte with the original method, query and headers (hop-by-hop ones
excepted), and the handler's answer comes back to be relayed to the sender.

This module holds the forwarding rules; the request goes out through vwh.outbound,
the one client of webhook traffic, so the handler gets what replay and check get: no
header of the client's own, no redirect followed, no proxy or .netrc, and a kept-alive
connection the handler had closed retried on a fresh one. There are no other retries
(resending is the sender's job): the handler gets one request per delivery.

Where a request goes (one rule, shown in `vwh listen --help`):
- `--forward-to` without a trailing "/" (http://127.0.0.1:8000/webhooks/vendasta):
  every request goes to exactly that path;
- with a trailing "/" or no path (http://127.0.0.1:8000, http://127.0.0.1:8000/api/):
  the incoming path is appended (/orders -> /api/orders), as a plain proxy does.
The incoming query string is always added (after the URL's own, if it has one).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from vwh.delivery import check_url
from vwh.errors import UsageError
from vwh.http1 import os_reason
from vwh.outbound import NoAnswer, OutboundClient, Stage
from vwh.store import ForwardResult
from vwh.webhook import VENDASTA_TIMEOUT, is_secret_name, mask_query, mask_secret, token_bytes

LOOP_STATUS = 508  # Loop Detected: a forwarded request came back
MAX_VWH_HOPS = 4  # refuse to forward what already passed through this many listeners

KEPT_BODY_LIMIT = 64 * 1024  # how much of the handler's answer is kept in the store
ANSWER_LIMIT = 16 * 1024 * 1024  # a larger answer is cut off and counts as broken
MAX_CONNECTIONS = 100  # to the handler at once; more deliveries wait for one (in their timeout)

# Never passed on as they came (RFC 9110 7.6.1, plus what the new connection sets itself).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
# Not relayed from the handler's answer: the listener's server sets these itself.
_NOT_RELAYED = HOP_BY_HOP | {b"date"}


class Failure(str, Enum):
    """Why the handler gave no answer; the prefix of ForwardResult.error."""

    DOWN = "handler down"  # could not connect
    TIMEOUT = "handler too slow"  # no answer within --forward-timeout
    BROKEN = "handler broke the connection"  # closed, reset or garbled before answering

    @property
    def gateway_status(self) -> int:
        """What the sender gets instead: 504 for a timeout, else 502."""
        return 504 if self is Failure.TIMEOUT else 502

    @property
    def label(self) -> str:
        return {"handler down": "down", "handler too slow": "timeout"}.get(self.value, "broken")


def failure_of(result: ForwardResult) -> Failure | None:
    """The failure behind a kept ForwardResult (None when the handler answered)."""
    if result.error is None:
        return None
    return next((f for f in Failure if result.error.startswith(f.value)), Failure.BROKEN)


def handler_label(result: ForwardResult) -> str:
    """The handler's status, or 'down', 'timeout' or 'broken'."""
    failure = failure_of(result)
    if failure is not None:
        return failure.label
    return str(result.status)


@dataclass(frozen=True)
class ForwardSettings:
    """Where and how to forward; each field maps to a `vwh listen --forward-*` option."""

    url: str
    token: str | None = None  # replaces a good (or unchecked) token on the way
    timeout: float = VENDASTA_TIMEOUT
    forward_all: bool = False  # also forward what the listener rejected

    def __post_init__(self) -> None:
        check_url(self.url, "--forward-to")
        if self.timeout <= 0:
            raise UsageError("--forward-timeout must be more than 0 seconds")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def appends_path(self) -> bool:
        """True when the incoming path is appended (the URL ends with '/' or has no path)."""
        path = urlsplit(self.url).path
        return path == "" or path.endswith("/")


@dataclass
class HandlerReply:
    """The handler's answer as the sender gets it: hop-by-hop headers removed."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Forwarder:
    """Passes requests on to the handler over the outbound client's kept-alive pool.

    Create it anywhere; it opens its client in the running event loop on first use.
    Call `aclose()` from that loop when done.
    """

    def __init__(
        self,
        settings: ForwardSettings,
        token_header: str,
        via: bytes = b"vwh",
        secret_names: frozenset[str] = frozenset(),
    ) -> None:
        self.settings = settings
        self._via = (b"via", b"1.1 " + via)  # RFC 9110 7.6.3: how loops are caught
        parts = urlsplit(settings.url)
        self._url = settings.url
        self._host = (b"host", parts.netloc.rpartition("@")[2].encode("idna"))
        base = parts.path or "/"
        self._appends = settings.appends_path
        self._base_path = (base.rstrip("/") if self._appends else base).encode("latin-1")
        self._base_query = parts.query.encode("latin-1")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._token_header = token_header.lower().encode("latin-1")
        # The token's own name (header, query parameter or cookie): masked wherever kept.
        self._configured = secret_names | frozenset({token_header.lower()} - {""})
        self._token = token_bytes(settings.token) if settings.token is not None else None
        self._client: OutboundClient | None = None

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def target(self, raw_path: bytes, query: bytes) -> bytes:
        """The request target (path and query) for an incoming path and query string."""
        path = self._base_path + raw_path if self._appends else self._base_path
        if self._appends and not path:
            path = b"/"
        if self._base_query and query:
            return path + b"?" + self._base_query + b"&" + query
        if self._base_query or query:
            return path + b"?" + (self._base_query or query)
        return path

    def outgoing_headers(
        self, headers: Sequence[tuple[bytes, bytes]], replace_token: bool
    ) -> list[tuple[bytes, bytes]]:
        """The incoming headers minus hop-by-hop ones, the token swapped, Via added."""
        drop = HOP_BY_HOP
        for name, value in headers:
            if name == b"connection":  # names listed in Connection are hop-by-hop too
                drop = drop | {t.strip().lower() for t in value.split(b",")}
        swap = replace_token and self._token is not None and bool(self._token_header)
        out = [
            (name, value)
            for name, value in headers
            if name not in drop and not (swap and name == self._token_header)
        ]
        if swap:
            assert self._token is not None
            out.append((self._token_header, self._token))
        out.append(self._via)
        return out

    def new_result(self, scope: Mapping[str, Any]) -> ForwardResult:
        """The handler's side of one request, so far only where it goes (secrets masked)."""
        path, _, query = self._target(scope).decode("latin-1").partition("?")
        masked = f"{path}?{mask_query(query, self._configured)}" if query else path
        return ForwardResult(url=self._origin + masked)

    def _target(self, scope: Mapping[str, Any]) -> bytes:
        return self.target(scope.get("raw_path") or scope["path"].encode(), scope["query_string"])

    async def send(
        self,
        result: ForwardResult,
        scope: Mapping[str, Any],
        body: bytes,
        *,
        replace_token: bool = True,
    ) -> HandlerReply | None:
        """Send one request on; fill `result` in place; the handler's answer, or None.

        In place, so the record is complete even when the listener stops mid-way.
        """
        if self._client is None:  # no await before it is set: one client per loop
            self._client = OutboundClient(connections=MAX_CONNECTIONS).open()
        headers = [self._host, *self.outgoing_headers(scope["headers"], replace_token)]
        started = time.perf_counter()
        try:
            answer = await self._client.exchange(
                scope["method"], self._url, self._target(scope), headers, body,
                self.settings.timeout, limit=ANSWER_LIMIT, whole=True,
            )  # fmt: skip
        except NoAnswer as exc:
            result.error = f"{_FAILURES[exc.stage].value}: {exc.reason}"
            return None
        except asyncio.CancelledError:
            result.error = f"{Failure.BROKEN.value}: the listener stopped before it answered"
            raise
        finally:
            result.latency_ms = (time.perf_counter() - started) * 1000
        result.status = answer.status
        result.body = answer.body[:KEPT_BODY_LIMIT]
        kept: list[tuple[str, str]] = []
        relayed: list[tuple[bytes, bytes]] = []
        for name, value in answer.headers:
            text = value.decode("latin-1")
            secret = is_secret_name(text_name := name.decode("latin-1"), self._configured)
            kept.append((text_name, mask_secret(text) if secret else text))
            if name.lower() not in _NOT_RELAYED:
                relayed.append((name, value))
        result.headers = kept
        return HandlerReply(answer.status, relayed, answer.body)

    async def forward(
        self, scope: Mapping[str, Any], body: bytes, *, replace_token: bool = True
    ) -> tuple[ForwardResult, HandlerReply | None]:
        """`new_result` and `send` in one call."""
        result = self.new_result(scope)
        reply = await self.send(result, scope, body, replace_token=replace_token)
        return result, reply


_FAILURES = {
    Stage.CONNECT: Failure.DOWN,
    Stage.TIMEOUT: Failure.TIMEOUT,
    Stage.BROKEN: Failure.BROKEN,
}


def probe(settings: ForwardSettings, timeout: float = 0.5) -> str | None:
    """Can the handler be reached right now? None when it can, else why not.

    For the banner only: a listener started before its handler keeps working, and
    each delivery says again whether the handler was up.
    """
    try:
        socket.create_connection((settings.host, settings.port), timeout=timeout).close()
    except socket.gaierror:
        return f"cannot resolve {settings.host}"
    except TimeoutError:
        return f"no connection within {timeout:g}s"
    except OSError as exc:
        return os_reason(exc)
    return None


def forward_loop(headers: Iterable[tuple[bytes, bytes]], via_name: bytes) -> str | None:
    """Why a request must not be forwarded again (RFC 9110 7.6.3 Via), or None: it
    already came through this listener (`via_name`), or through MAX_VWH_HOPS of them."""
    hops = 0
    for name, value in headers:
        if name != b"via":
            continue
        for entry in value.split(b","):
            received_by = entry.split()[1:2]
            if received_by and received_by[0].startswith(b"vwh-"):
                if received_by[0] == via_name:
                    return "forward loop: this request already passed through this listener"
                hops += 1
    if hops >= MAX_VWH_HOPS:
        return f"forward loop: this request already passed through {hops} vwh listeners"
    return None
