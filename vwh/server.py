"""Run an ASGI app under uvicorn on a socket we bind ourselves.

Binding first turns "port in use" into a clear ServerError before anything is
printed, and our own signal handling lets Ctrl-C or SIGTERM end the server
cleanly instead of re-raising the signal once uvicorn has shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from vwh.errors import ServerError, UsageError
from vwh.http_guard import CLIENT_TIMEOUT, Limits, protocol_class
from vwh.sanitize import inert

GRACEFUL_SHUTDOWN_SECONDS = 2
DRAIN_SECONDS = 2.0  # after the grace period, for answers decided at once (see serve)
WARNING_INTERVAL = 10.0  # seconds between two warnings about the same trouble
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

Warn = Callable[[str], None]


class _ListeningSocket(socket.socket):
    """A listening socket whose accept stops asyncio's retry storm when out of descriptors.

    On EMFILE asyncio stops watching the socket and retries a second later, but the
    accept loop it is in goes on for up to `backlog` (2048) more attempts, each
    failing and each scheduling one more retry. After one failure this socket answers
    "nothing to accept" to the rest of that loop: one failed attempt per second.
    """

    _failed = False

    def accept(self) -> tuple[socket.socket, Any]:
        if self._failed:
            self._failed = False
            raise BlockingIOError(errno.EAGAIN, "retrying later")
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno in _OUT_OF_RESOURCES:
                self._failed = True
            raise


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen; port 0 picks a free port (read it back with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol says TCP; without it, small answers wait ~40 ms on delayed ACKs.
    sock = _ListeningSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(
                f"port {port} on {host} is already in use (stop the other program or pick"
                " another --port)"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ServerError(f"not allowed to listen on {host}:{port} ({exc.strerror})") from None
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except (OverflowError, socket.gaierror) as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc}") from None
    sock.setblocking(False)
    return sock


def stop_on_signals_for_good(stop: Callable[[], None]) -> dict[int, Any]:
    """From now on, Ctrl-C and SIGTERM call `stop` instead of raising (main thread only).

    For a process whose whole work is to listen (`vwh listen`): once a Ctrl-C has
    asked it to stop, more presses while it finishes change nothing. Returns the
    previous handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, lambda *_: stop()) for sig in (signal.SIGINT, signal.SIGTERM)}


def ignore_signals() -> None:
    """Ctrl-C and SIGTERM ignored: the work is done and the process is exiting.

    Python puts the default handlers back while it finalises, where one more press
    would kill the process (exit -2) after a clean stop; ignored, it cannot.
    """
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, Ctrl-C and SIGTERM call `stop` instead of raising (main thread only).

    uvicorn's own handlers take over while it serves and hand back to these after,
    so a Ctrl-C during the shutdown that follows (the last commits) stops nothing
    half-way; outside, the previous handlers are back.
    """
    previous = stop_on_signals_for_good(stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the signal after a graceful stop."""

    interrupted = False
    limits = Limits()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: Any) -> None:
        self.interrupted = True
        self.handle_exit(sig, frame)


def client_timeout() -> float:
    """Seconds a client has to send a request head, or between two reads of a body.

    10 s, like nginx's client_header_timeout; VWH_CLIENT_TIMEOUT changes it.
    """
    text = os.environ.get("VWH_CLIENT_TIMEOUT", "").strip()
    if not text:
        return CLIENT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        raise UsageError(f"VWH_CLIENT_TIMEOUT={text!r} is not a number of seconds above 0")
    return value


def make_server(app: Any, *, loop: str = "asyncio") -> _Server:
    """A quiet uvicorn server: no access log, no banner, no tracebacks; we print our own.

    Requests still waiting at shutdown are cancelled after a grace period; the
    receiver keeps them and says so, so uvicorn's report of it is noise. The HTTP
    protocol is vwh.http_guard's: head limits, client timeouts, and requests the
    parser refuses handed to the app's `keep_refused` when it has one. An app with
    `take` (vwh.receiver) gets whole requests from vwh.http_exchange instead of an
    ASGI cycle per request.
    """
    limits = Limits(timeout=client_timeout())
    keep = getattr(app, "keep_refused", None)
    if hasattr(app, "take"):  # the listener's receiver: whole requests, without ASGI
        from vwh.http_exchange import exchange_class

        http: type = exchange_class(limits, keep, app)
    else:
        http = protocol_class(limits, keep)
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="critical",
        access_log=False,
        lifespan="off",
        http=http,
        ws="none",  # an upgrade request is a request like any other: kept and answered
        loop=loop,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
        proxy_headers=False,  # we read no client address; skip the per-request rewrite
    )
    server = _Server(config)
    server.limits = limits
    return server


class _LoopReporter:
    """The event loop's exception handler: one line per kind of trouble, at most every
    WARNING_INTERVAL seconds and with a count, never a traceback per occurrence."""

    def __init__(self, warn: Warn | None, limits: Limits) -> None:
        self._warn = warn
        self._limits = limits
        self._counts: dict[str, int] = {}
        self._reported: dict[str, tuple[float, int]] = {}  # kind -> (when, count then)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
            kind = "accept" if "accept" in str(context.get("message", "")) else "resources"
        else:
            kind = str(context.get("message", "event loop error"))
            if exc is not None:
                kind += f": {type(exc).__name__}: {exc}"
            kind = inert(kind)[:300]
        self._counts[kind] = self._counts.get(kind, 0) + 1
        when, _ = self._reported.get(kind, (None, 0))
        now = time.monotonic()
        if when is None or now - when >= WARNING_INTERVAL:
            self._report(kind, now)

    def flush(self) -> None:
        """Report what happened since the last line of each kind (at shutdown)."""
        for kind, count in self._counts.items():
            if count > self._reported.get(kind, (0.0, 0))[1]:
                self._report(kind, time.monotonic())

    def _report(self, kind: str, now: float) -> None:
        count = self._counts[kind]
        self._reported[kind] = (now, count)
        if self._warn is None:
            return
        if kind == "accept":
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            self._warn(
                f"out of file descriptors (ulimit -n is {soft}): new connections wait until"
                f" others close (idle ones close after {self._limits.timeout:g}s);"
                f" {count} failed accept {'attempt' if count == 1 else 'attempts'} so far"
            )
        else:
            self._warn(f"{kind} ({count} so far)")


async def serve(
    server: _Server,
    sock: socket.socket,
    on_started: Callable[[], None] | None = None,
    on_warning: Warn | None = None,
) -> bool:
    """Serve until stopped; True when stopped by Ctrl-C or SIGTERM.

    `on_warning` gets one line per kind of trouble the server meets (out of file
    descriptors, say), at most every WARNING_INTERVAL seconds.
    """
    loop = asyncio.get_running_loop()
    reporter = _LoopReporter(on_warning, server.limits)
    loop.set_exception_handler(reporter)
    if on_started is not None:

        async def _announce() -> None:
            while not server.started and not server.should_exit:
                await asyncio.sleep(0.01)
            if server.started:
                on_started()

        announcer = asyncio.ensure_future(_announce())
    try:
        await server.serve(sockets=[sock])
        await _answers_owed(server)
    finally:
        if on_started is not None:
            announcer.cancel()
        reporter.flush()
    return server.interrupted


async def _answers_owed(server: _Server) -> None:
    """Once uvicorn has stopped (its grace period over, waiting tasks cancelled), the
    requests already read still get their answers, decided at once now (vwh.http_exchange:
    a 503 for one that would wait), and are kept: at most DRAIN_SECONDS more."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline and any(
        getattr(connection, "owes_answers", bool)()
        for connection in list(server.server_state.connections)
    ):
        await asyncio.sleep(0.01)
