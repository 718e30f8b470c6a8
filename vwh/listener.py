"""`vwh listen` as a library: open the store, bind the port, serve until stopped."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vwh.errors import UsageError
from vwh.receiver import ReceiverSettings, create_app
from vwh.server import bind_socket, make_server, serve
from vwh.store import CapturedRequest, CaptureStore
from vwh.store_writer import BatchWriter, CommitCallback, EventCallback, StoreEvent

_LOCAL_NAMES = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::")


@dataclass
class ListenStats:
    """The counts in the listener's summary line."""

    received: int = 0
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
        elif 200 <= record.status < 300:
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
            self.store.check(write=True)  # a damaged store fails now, not on a delivery
            self.sock = bind_socket(host, port)
        except Exception:
            self.store.close()
            raise
        self.host = host
        self.port = int(self.sock.getsockname()[1])
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

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(
        self,
        on_kept: CommitCallback | None = None,
        on_started: Callable[[], None] | None = None,
        on_store_event: EventCallback | None = None,
    ) -> bool:
        """Serve until Ctrl-C or SIGTERM; True when stopped by a signal.

        `on_kept` gets each batch of kept requests, in the store's writer thread;
        `on_store_event` hears once when the store's file vanished or cannot be
        written (and when it can again), from whichever thread noticed.
        """

        def store_event(event: StoreEvent) -> None:
            if event.kind in ("recreated", "replaced"):
                self.store.reopen()  # resend lookups read the new file too
            if on_store_event is not None:
                on_store_event(event)

        self.store.load_filter()
        writer = BatchWriter(self.store_path, on_kept, store_event)
        try:
            app = create_app(self.settings, writer, self.store)
            server = make_server(app)
            # Everything alive now lives as long as the listener: keep it out of the
            # cyclic GC's scans, which otherwise walk it again on every collection.
            gc.freeze()

            async def run() -> bool:
                try:
                    return await serve(server, self.sock, on_started)
                finally:
                    await app.aclose()  # in the server's loop, which owns the connections

            return asyncio.run(run())
        finally:
            writer.close()
            self.store.close()
            self.sock.close()
