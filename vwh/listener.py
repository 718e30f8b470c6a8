"""`vwh listen` as a library: open the store, bind the port, serve until stopped."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vwh.errors import UsageError
from vwh.receiver import ReceiverSettings, create_app
from vwh.server import bind_socket, make_server, serve
from vwh.store import BatchWriter, CapturedRequest, CaptureStore, CommitCallback

if TYPE_CHECKING:
    import uvicorn

_LOCAL_NAMES = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::")


@dataclass
class ListenStats:
    """The counts in the listener's summary line."""

    received: int = 0
    deliveries: int = 0  # passed the token and body checks, whatever the answer (--count)
    accepted: int = 0
    rejected: int = 0
    resends: int = 0
    forwarding: bool = False
    forwarded: int = 0
    handler_failed: int = 0  # forwarded, but no answer (down, too slow, broken)

    def add(self, record: CapturedRequest) -> None:
        self.received += 1
        if record.rejected:
            self.rejected += 1
        else:
            self.deliveries += 1
            if 200 <= record.status < 300:
                self.accepted += 1
        if record.is_resend:
            self.resends += 1
        if record.forward is not None:
            self.forwarded += 1
            if record.forward.error is not None:
                self.handler_failed += 1

    def summary(self) -> str:
        text = (
            f"{self.received} received, {self.accepted} accepted, "
            f"{self.rejected} rejected, {self.resends} resends"
        )
        if self.forwarding:
            text += f"; {self.forwarded} forwarded, {self.handler_failed} without handler answer"
        return text


class Listener:
    """Owns the store and the bound socket; errors surface here, before serving."""

    def __init__(self, settings: ReceiverSettings, host: str, port: int, store_path: Path) -> None:
        self.settings = settings
        self.store_path = store_path
        self.store = CaptureStore(store_path)
        try:
            self.sock = bind_socket(host, port)
        except Exception:
            self.store.close()
            raise
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self._server: uvicorn.Server | None = None
        self._stop_asked = False
        if settings.forward is not None and self._is_self(
            settings.forward.host, settings.forward.port
        ):
            self.sock.close()
            self.store.close()
            raise UsageError(
                f"--forward-to {settings.forward.url} is this listener itself: every request"
                " would forward to itself; point it at your handler's port"
            )

    def _is_self(self, host: str, port: int) -> bool:
        if port != self.port:
            return False
        return host == self.host.strip("[]") or (
            host in _LOCAL_NAMES and self.host.strip("[]") in _LOCAL_NAMES
        )

    def stop(self) -> None:
        """Finish serving as Ctrl-C would, from any thread (`--count`, `--exit-timeout`).

        Requests in flight still get their answer; uvicorn checks the flag every 0.1 s.
        """
        self._stop_asked = True
        if self._server is not None:
            self._server.should_exit = True

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(
        self,
        on_kept: CommitCallback | None = None,
        on_started: Callable[[], None] | None = None,
        keep: int | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> bool:
        """Serve until Ctrl-C, SIGTERM or `stop()`; True when stopped by a signal.

        `on_kept` gets each batch of kept requests, in the store's writer thread;
        `on_warning` the server's own trouble (out of file descriptors), rate-limited.
        `keep` bounds the store to the newest `keep` requests (see BatchWriter).
        """
        writer = BatchWriter(self.store_path, on_kept, keep=keep)
        try:
            app = create_app(self.settings, writer, self.store)
            server = self._server = make_server(app)
            server.should_exit = self._stop_asked
            # Everything alive now lives as long as the listener: keep it out of the
            # cyclic GC's scans, which otherwise walk it again on every collection.
            gc.freeze()

            async def run() -> bool:
                try:
                    return await serve(server, self.sock, on_started, on_warning)
                finally:
                    await app.aclose()  # in the server's loop, which owns the connections

            return asyncio.run(run())
        finally:
            writer.close()
            self.store.close()
            self.sock.close()
