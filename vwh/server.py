"""Run an ASGI app under uvicorn on a socket we bind ourselves.

Binding first turns "port in use" into a clear ServerError before anything is
printed, and our own signal handling lets Ctrl-C or SIGTERM end the server
cleanly instead of re-raising the signal once uvicorn has shut down.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from vwh.errors import ServerError

GRACEFUL_SHUTDOWN_SECONDS = 2


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen; port 0 picks a free port (read it back with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol says TCP; without it, small answers wait ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the signal after a graceful stop."""

    interrupted = False

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


def make_server(app: Any, *, http: str = "auto", loop: str = "asyncio") -> _Server:
    """A quiet uvicorn server: no access log, no banner, no tracebacks; we print our own.

    Requests still waiting at shutdown are cancelled after a grace period; the
    receiver keeps them and says so, so uvicorn's report of it is noise.
    """
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="critical",
        access_log=False,
        lifespan="off",
        http=http,
        loop=loop,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
        proxy_headers=False,  # we read no client address; skip the per-request rewrite
    )
    return _Server(config)


async def serve(
    server: _Server, sock: socket.socket, on_started: Callable[[], None] | None = None
) -> bool:
    """Serve until stopped; True when stopped by Ctrl-C or SIGTERM."""
    if on_started is not None:
        import asyncio

        async def _announce() -> None:
            while not server.started and not server.should_exit:
                await asyncio.sleep(0.01)
            if server.started:
                on_started()

        announcer = asyncio.ensure_future(_announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        if on_started is not None:
            announcer.cancel()
    return server.interrupted
