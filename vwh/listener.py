"""`vwh listen` as a library: open the store, bind the port, serve until stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vwh.receiver import CaptureCallback, ReceiverSettings, create_app
from vwh.server import bind_socket, make_server, serve
from vwh.store import BatchWriter, CapturedRequest, CaptureStore


@dataclass
class ListenStats:
    """The counts in the listener's summary line."""

    received: int = 0
    accepted: int = 0
    rejected: int = 0
    resends: int = 0

    def add(self, record: CapturedRequest) -> None:
        self.received += 1
        if record.rejected:
            self.rejected += 1
        elif 200 <= record.status < 300:
            self.accepted += 1
        if record.is_resend:
            self.resends += 1

    def summary(self) -> str:
        return (
            f"{self.received} received, {self.accepted} accepted, "
            f"{self.rejected} rejected, {self.resends} resends"
        )


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

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(
        self,
        on_capture: CaptureCallback | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> bool:
        """Serve until Ctrl-C or SIGTERM; True when stopped by a signal."""
        writer = BatchWriter(self.store_path)
        try:
            app = create_app(self.settings, writer, self.store, on_capture)
            server = make_server(app)
            return asyncio.run(serve(server, self.sock, on_started))
        finally:
            writer.close()
            self.store.close()
            self.sock.close()
