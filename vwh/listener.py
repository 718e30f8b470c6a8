"""`vwh listen` as a library: open the store, bind the port, serve until stopped."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vwh.errors import UsageError
from vwh.receiver import create_app
from vwh.receiver_settings import ReceiverSettings
from vwh.server import bind_socket, make_server, serve, stop_on_signals
from vwh.store import CapturedRequest, CaptureStore
from vwh.store_writer import BatchWriter, CommitCallback, EventCallback, StoreEvent

if TYPE_CHECKING:
    import uvicorn

_LOCAL_NAMES = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::")
YOUNG_GC_ALLOCATIONS = 50_000  # see Listener._serve


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
            self.store.check(write=True)  # a damaged store fails now, not on a delivery
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
        bare = self.host.strip("[]")  # `--host '[::1]'` and `--host ::1` alike
        host = f"[{bare}]" if ":" in bare else bare
        return f"http://{host}:{self.port}/"

    def run(
        self,
        on_kept: CommitCallback | None = None,
        on_started: Callable[[], None] | None = None,
        keep: int | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_store_event: EventCallback | None = None,
    ) -> bool:
        """Serve until Ctrl-C, SIGTERM or `stop()`; True when stopped by a signal.

        `on_kept` gets each batch of kept requests, in the store's writer thread;
        `on_warning` the server's own trouble (out of file descriptors), rate-limited.
        `on_store_event` hears once when the store's file vanished or cannot be
        written (and when it can again), from whichever thread noticed.
        `keep` bounds the store to the newest `keep` requests (see BatchWriter).
        """

        def store_event(event: StoreEvent) -> None:
            if event.kind in ("recreated", "replaced"):
                self.store.reopen()  # resend lookups read the new file too
            if on_store_event is not None:
                on_store_event(event)

        interrupted = False

        def on_signal() -> None:
            nonlocal interrupted
            interrupted = True
            self.stop()

        # From here to the last commit, Ctrl-C (once or many times) asks to stop and
        # never raises: a KeyboardInterrupt mid-shutdown could lose kept requests.
        with stop_on_signals(on_signal):
            self.store.load_filter()
            writer = BatchWriter(self.store_path, on_kept, store_event, keep=keep)
            try:
                return self._serve(writer, on_started, on_warning) or interrupted
            finally:
                writer.close()
                self.store.close()
                self.sock.close()

    def _serve(
        self,
        writer: BatchWriter,
        on_started: Callable[[], None] | None,
        on_warning: Callable[[str], None] | None,
    ) -> bool:
        """The server's run in its own event loop; True when a signal stopped it."""
        app = create_app(self.settings, writer, self.store)
        server = self._server = make_server(app)
        server.should_exit = self._stop_asked
        # Everything alive now lives as long as the listener: keep it out of the
        # cyclic GC's scans, which otherwise walk it again on every collection. A
        # request leaves few cycles (reference counts free it), so the young
        # generation waits for YOUNG_GC_ALLOCATIONS: with Python's 700, collections
        # took about 3% of a request's instructions (callgrind, concurrency 64).
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_GC_ALLOCATIONS, *thresholds[1:])

        async def run() -> bool:
            try:
                return await serve(server, self.sock, on_started, on_warning)
            finally:
                await app.aclose()  # in the server's loop, which owns the connections

        try:
            return asyncio.run(run())
        finally:
            gc.set_threshold(*thresholds)
