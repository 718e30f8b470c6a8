"""Running an inspector: bind its port first (a taken port moves to a free one), then
serve it in a thread of its own beside a listener, or in the foreground alone.

Beside a listener it has its own event loop in its own thread: the receiver's
loop never runs an inspector request, and the store's writer thread only hands
records to the broadcaster, which never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from dataclasses import dataclass

from vwh.errors import ServerError
from vwh.inspector.app import create_inspector
from vwh.inspector.settings import InspectorSettings
from vwh.server import bind_socket, make_server, serve
from vwh.store import CaptureStore

DEFAULT_UI_PORT = 8788
LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")


@dataclass(frozen=True)
class UiOptions:
    """The `--ui-host` and `--ui-port` options; `secret` fixed only for scripts (VWH_UI_TOKEN)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_UI_PORT
    secret: str | None = None

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK


class Inspector:
    """A bound inspector; `moved_from` is the port asked for when it was taken."""

    def __init__(
        self, settings: InspectorSettings, store: CaptureStore, options: UiOptions
    ) -> None:
        self.settings = settings
        self.moved_from: int | None = None
        try:
            self.sock = bind_socket(options.host, options.port)
        except ServerError:
            if options.port == 0:
                raise
            self.sock = bind_socket(options.host, 0)
            self.moved_from = options.port
        self.host = options.host
        self.port = int(self.sock.getsockname()[1])
        self.secret = options.secret or secrets.token_urlsafe(24)
        self.store = store
        app = create_inspector(settings, store, secret=self.secret, host=self.host, port=self.port)
        self.server = make_server(app)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def url(self) -> str:
        """The address to open: it carries the run's secret, as Jupyter's does."""
        return f"{self.base_url}?token={self.secret}"

    async def _serve(self, started: threading.Event | None = None) -> bool:
        self._loop = asyncio.get_running_loop()
        self.settings.broadcaster.attach(self._loop)
        try:
            return await serve(self.server, self.sock, started.set if started else None)
        finally:
            self.settings.broadcaster.close()
            if started is not None:
                started.set()

    def run(self) -> bool:
        """Serve in the foreground until Ctrl-C or SIGTERM (`vwh inspect`)."""
        try:
            return asyncio.run(self._serve())
        finally:
            self.close()

    def start(self) -> None:
        """Serve in a thread of its own until `stop` (beside `vwh listen`)."""
        started = threading.Event()

        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(started),), name="vwh-inspector", daemon=True
        )
        self._thread.start()
        started.wait(10)

    def stop(self) -> None:
        """End the streams, stop the server, wait for its thread, close the store."""
        loop = self._loop
        if loop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # already stopped
                loop.call_soon_threadsafe(self.settings.broadcaster.close)
            self.server.should_exit = True
            self._thread.join(10)
        self.close()

    def close(self) -> None:
        self.sock.close()
        self.store.close()
