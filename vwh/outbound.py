"""The one HTTP client for webhook traffic: `vwh replay`, `vwh check` and the
forwarding of `vwh listen --forward-to` (vwh.forward) all send through it.

Every rule about the wire is written here once: the request carries no header of the
client's own (the wire holds exactly what `vwh sign` prints, or what the sender sent,
plus Host and Content-Length), no redirect is followed, no proxy setting or .netrc is
read, what is kept of an answer is bounded, each try has its own timeout, and every
network failure becomes NoAnswer with the stage it reached (connect, timeout,
broken) and a one-line reason.

And the rule of a kept-alive connection: a server may close an idle connection at
the moment a request goes out on it. A failure on a REUSED connection before any byte
of the answer came back means the server never saw the request, so it is retried at
once on a fresh connection and not counted as an attempt (Vendasta's sender does the
same). A failure after answer bytes started counts: the handler may have done the work.

Requests go out over vwh.http1, a small HTTP/1.1 client on asyncio and httptools (its
docstring says why not aiohttp's, with the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from vwh.delivery import Attempt, OutgoingRequest
from vwh.errors import UnreachableError
from vwh.http1 import Answer, NoAnswer, Origin, Pool, Stage, request_bytes

__all__ = ["Answer", "NoAnswer", "OutboundClient", "Stage", "ensure_reachable"]

RESPONSE_BODY_LIMIT = 64 * 1024  # how much of an answer is kept for reports


class OutboundClient:
    """Sends webhook requests over one pool of `connections`; an async context manager.

    `open()` and `aclose()` do the same for a caller that lives longer than one block
    (the listener's forwarder); both run in the loop that sends.
    """

    def __init__(self, *, connections: int = 8) -> None:
        self._connections = max(1, connections)
        self._pool: Pool | None = None

    def open(self) -> OutboundClient:
        self._pool = Pool(self._connections)
        return self

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def __aenter__(self) -> OutboundClient:
        return self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(
        self, request: OutgoingRequest, timeout: float, *, number: int = 1, waited: float = 0.0
    ) -> Attempt:
        """One attempt of a delivery; network trouble becomes an Attempt with an error."""
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        headers: list[tuple[str, str]] = []
        body = b""
        timed_out = False
        try:
            target, host = wire_target(request.url)
            fields = [(n.encode(), v.encode()) for n, v in request.headers]
            if not any(n.lower() == "host" for n, _ in request.headers):
                fields.insert(0, (b"Host", host.encode()))
            answer = await self.exchange(
                request.method, request.url, target.encode(), fields, request.body, timeout
            )
        except NoAnswer as exc:
            error = _ATTEMPT_ERRORS[exc.stage].format(exc.reason)
            timed_out = exc.stage is Stage.TIMEOUT
        else:
            status, body = answer.status, answer.body
            headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in answer.headers]
        latency = (time.perf_counter() - started) * 1000
        return Attempt(number, waited, status, latency, error, headers, body, timed_out)

    async def exchange(
        self,
        method: str,
        url: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        timeout: float,
        *,
        limit: int = RESPONSE_BODY_LIMIT,
        whole: bool = False,
    ) -> Answer:
        """One request to `url`'s origin for `target` (path and query, as they go on the
        wire) and its answer within `timeout`, or NoAnswer.

        The answer is read to its end (a cut-short body must show); its first `limit`
        bytes are kept, or with `whole` all of it, a longer one being NoAnswer. A stale
        kept-alive connection is not the try: it is retried once on a fresh one.
        """
        assert self._pool is not None, "open the OutboundClient first"
        request = request_bytes(method, target, list(headers), body)
        origin = Origin.of(url)
        head_only = method == "HEAD"
        for fresh in (False, True):
            try:
                async with _timeout(timeout):
                    return await self._pool.exchange(
                        origin, request, head_only=head_only, limit=limit, whole=whole, fresh=fresh
                    )
            except TimeoutError:
                raise NoAnswer(Stage.TIMEOUT, f"no answer within {timeout:g}s") from None
            except NoAnswer as exc:
                if fresh or not exc.stale:
                    raise
        raise AssertionError("unreachable: the fresh try returns or raises")


# How replay and check word a failure in an Attempt (vwh.forward words its own).
_ATTEMPT_ERRORS = {
    Stage.CONNECT: "could not connect: {}",
    Stage.TIMEOUT: "{}",
    Stage.BROKEN: "connection broken before the answer was complete: {}",
}


def wire_target(url: str) -> tuple[str, str]:
    """The request target and Host for a URL, as `vwh sign` prints them.

    yarl computes them (percent-encoding, default ports, IPv6 brackets), so what sign
    prints and what replay sends match byte for byte.
    """
    from yarl import URL

    parsed = URL(url)
    return parsed.raw_path_qs, parsed.host_port_subcomponent or ""


async def ensure_reachable(url: str, timeout: float) -> None:
    """Connect (and shake hands for https) once, so a wrong URL is one clear error
    instead of a report in which every request failed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    context = ssl.create_default_context() if https else None  # the trust the client uses
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), timeout
        )
    except socket.gaierror as exc:
        reason = f"cannot resolve the host name ({exc.strerror})"
    except (TimeoutError, asyncio.TimeoutError):
        reason = f"no connection within {timeout:g}s"
    except ssl.SSLError as exc:
        reason = f"TLS handshake failed ({exc.reason or exc})"
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    else:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise UnreachableError(f"could not reach {where}: {reason}")


class _Deadline:
    """asyncio.timeout for Python 3.10, which lacks it; raises TimeoutError."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._expired = False

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        self._handle = asyncio.get_running_loop().call_later(self._seconds, self._expire)

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and exc_type is asyncio.CancelledError:
            raise TimeoutError
        return False


_timeout: Callable[[float], Any] = getattr(asyncio, "timeout", _Deadline)
