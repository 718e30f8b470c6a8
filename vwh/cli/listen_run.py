"""The running listener's screen: banner, live table or lines, and the summary."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vwh.cli.listen_view import json_shown, plain_line, request_table, shown
from vwh.cli.output import Output, untrusted
from vwh.errors import TimeoutError_
from vwh.listener import Listener, ListenStats
from vwh.paths import default_store_path
from vwh.receiver_settings import ReceiverSettings
from vwh.sanitize import json_line
from vwh.server import ignore_signals, stop_on_signals_for_good
from vwh.store import CapturedRequest
from vwh.store_writer import StoreEvent
from vwh.webhook import mask_secret

if TYPE_CHECKING:
    from vwh.cli.api_options import ApiOptions
    from vwh.cli.listen_resolve import ResolveDisplay
    from vwh.inspector import Inspector, UiOptions

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "[::1]", "localhost")


def run_listen(
    settings: ReceiverSettings,
    host: str,
    port: int,
    store_path: Path | None,
    json_out: bool,
    *,
    keep: int | None = None,
    count: int | None = None,
    exit_timeout: float | None = None,
    api: ApiOptions | None = None,
    ui: UiOptions | None = None,
) -> None:
    """Serve until stopped, or until `count` deliveries are kept (TimeoutError_ after
    `exit_timeout` seconds without them). With `api`, kept deliveries are resolved;
    with `ui`, the inspector is served beside the listener."""
    out = Output(json_mode=json_out)
    listener = Listener(settings, host, port, store_path or default_store_path())
    # Ctrl-C, however often, stops the listener and never raises: not while it
    # starts, not while it finishes its last commits and prints the summary.
    stop_on_signals_for_good(listener.stop)
    inspector: Inspector | None = None
    resolving: ResolveDisplay | None = None
    try:
        if ui is not None:
            from vwh.cli import inspector_view

            inspector = inspector_view.start_beside(listener, ui)
        if api is not None:
            from vwh.cli.listen_resolve import ResolveDisplay

            resolving = ResolveDisplay(out, api, listener.store_path)
        _listen(out, listener, inspector, resolving, keep, count, exit_timeout)
    finally:
        if resolving is not None:
            resolving.close()
        if inspector is not None:
            inspector.stop()
        ignore_signals()


def _listen(
    out: Output,
    listener: Listener,
    inspector: Inspector | None,
    resolving: ResolveDisplay | None,
    keep: int | None,
    count: int | None,
    exit_timeout: float | None,
) -> None:
    stats = ListenStats(forwarding=listener.settings.forward is not None)

    def warn(event: StoreEvent) -> None:
        out.warn(event.message)

    _banner(out, listener)
    if inspector is not None:
        from vwh.cli.inspector_view import announce as announce_inspector

        announce_inspector(out, inspector)
    announce = _Announcer(out, listener, inspector)

    def render(records: list[CapturedRequest]) -> list[str]:
        if out.json_mode:
            return [json_shown(record) for record in records]
        try:  # the usual case: one pass, without a guard per record
            return [plain_line(record) for record in records]
        except Exception:
            return [shown(plain_line, record) for record in records]

    rows: deque[CapturedRequest] = deque(maxlen=max(3, out.out.size.height - 4))
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        listener.stop()

    timer = threading.Timer(exit_timeout or 0, expire)
    timer.daemon = True

    def show(records: list[CapturedRequest]) -> None:
        announce()  # the ready line comes first, even when a request beat it
        if inspector is not None:
            inspector.settings.broadcaster.publish(records)  # a hand-off: returns at once
        for record in records:
            stats.add(record)
        if out.rich:
            rows.extend(records)
        elif resolving is None:
            out.lines(render(records))
        else:
            with resolving.lock:  # the resolver's lines come from another thread
                out.lines(render(records))
        if resolving is not None:
            resolving.submit(records)
        if count is not None and stats.deliveries >= count:
            listener.stop()

    def started() -> None:
        announce()
        if exit_timeout is not None:
            timer.start()

    try:
        if out.rich:
            from rich.live import Live

            cells = resolving.cells if resolving is not None else None
            with Live(
                get_renderable=lambda: request_table(rows.copy(), stats, stats.forwarding, cells),
                console=out.out,
                refresh_per_second=8,
            ):
                listener.run(
                    show, on_started=started, on_warning=out.warn, on_store_event=warn, keep=keep
                )
        else:
            listener.run(
                show, on_started=started, on_warning=out.warn, on_store_event=warn, keep=keep
            )
    finally:
        timer.cancel()
    out.note(f"stopped: {stats.summary()}")
    if count is not None and stats.deliveries < count and timed_out.is_set():
        raise TimeoutError_(
            f"{stats.deliveries} of {count} deliveries came within --exit-timeout {exit_timeout:g}s"
        )


def ready_event(listener: Listener, inspector: Inspector | None = None) -> dict[str, Any]:
    """The first JSON line of `vwh listen --json`: where to send, and where to look."""
    return {
        "event": "ready",
        "url": listener.url,
        "inspector": inspector.url if inspector is not None else None,
        "store": str(listener.store_path),
    }


class _Announcer:
    """Says "ready" once, from whichever thread gets there first."""

    def __init__(self, out: Output, listener: Listener, inspector: Inspector | None) -> None:
        self._out = out
        self._listener = listener
        self._inspector = inspector
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            if self._out.json_mode:
                self._out.lines([json_line(ready_event(self._listener, self._inspector))])
            self._out.note("ready: Ctrl-C to stop")


def _banner(out: Output, listener: Listener) -> None:
    s = listener.settings
    if listener.host not in LOOPBACK_HOSTS:
        out.warn(
            f"listening on {listener.host}, not loopback: anyone who can reach this machine"
            " can send requests"
        )
    out.note(f"[bold]vwh listening on {listener.url}[/bold] (any path, POST)")
    if s.token:
        where = untrusted(s.place.describe())
        out.note(f"  token:  checking {where} against {mask_secret(s.token)}")
    else:
        out.note(
            f"  token:  not checking ({untrusted(s.place.describe())} shown masked);"
            " use --token to check"
        )
    if s.forward is not None and not s.scripted:
        script = "the handler's answer (502 when it is down, 504 when too slow)"
    else:
        script = f"status {s.status or 200}"
        if s.forward is not None:
            script += " (the handler is called all the same)"
    if s.delay:
        script += f", after {s.delay:g}s" if s.forward is None else f", not before {s.delay:g}s"
    if s.fail_first:
        script += f", 503 to the first {s.fail_first} of each body"
    out.note(f"  answer: {untrusted(script)}")
    if s.forward is not None:
        _forward_banner(out, s)
    if s.expect_response is not None:
        keys = ", ".join(str(k) for k in s.expect_response)
        out.note(f"  expect: the handler's answers to hold {untrusted(keys)}")
    out.note(f"  store:  {listener.store_path}")
    if s.save_dir:
        out.note(f"  save:   {s.save_dir}")
    out.note(
        f"  expose: ngrok http {listener.port}   or   "
        f"cloudflared tunnel --url http://127.0.0.1:{listener.port}"
    )


def _forward_banner(out: Output, s: ReceiverSettings) -> None:
    from vwh.forward import probe

    fwd = s.forward
    assert fwd is not None
    where = "the request's path appended" if fwd.appends_path else "every request to this path"
    out.note(f"  forward: {untrusted(fwd.url)} ({where}, timeout {fwd.timeout:g}s)")
    token = (
        f"{s.token_header} replaced with {mask_secret(fwd.token)}"
        if fwd.token
        else f"{s.place.describe()} passed on as it came"
    )
    passed = "everything, rejected too" if fwd.forward_all else "accepted deliveries only"
    out.note(f"           {untrusted(token)}; forwarding {passed}")
    down = probe(fwd)
    if down is not None:
        out.warn(
            f"handler down: {down} at {fwd.host}:{fwd.port}; deliveries get 502 until it"
            " is up (no need to restart vwh)"
        )
