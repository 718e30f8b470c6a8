"""The running listener's screen: banner, live table or lines, and the summary."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from vwh.cli.listen_view import cookies_of, plain_line, request_table
from vwh.cli.output import Output, untrusted
from vwh.listener import Listener, ListenStats
from vwh.paths import default_store_path
from vwh.receiver import ReceiverSettings
from vwh.sanitize import json_line
from vwh.store import CapturedRequest
from vwh.webhook import mask_secret

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "[::1]", "localhost")


def run_listen(
    settings: ReceiverSettings, host: str, port: int, store_path: Path | None, json_out: bool
) -> None:
    out = Output(json_mode=json_out)
    listener = Listener(settings, host, port, store_path or default_store_path())
    stats = ListenStats(forwarding=settings.forward is not None)
    _banner(out, listener)
    if out.rich:
        from rich.live import Live

        rows: deque[CapturedRequest] = deque(maxlen=max(3, out.out.size.height - 4))

        def show(records: list[CapturedRequest]) -> None:
            for record in records:
                stats.add(record)
            rows.extend(records)

        with Live(
            get_renderable=lambda: request_table(rows.copy(), stats, stats.forwarding),
            console=out.out,
            refresh_per_second=8,
        ):
            listener.run(show, on_started=lambda: _ready(out))
    else:
        render = _json_line if json_out else plain_line

        def show(records: list[CapturedRequest]) -> None:
            for record in records:
                stats.add(record)
            out.lines([render(record) for record in records])

        listener.run(show, on_started=lambda: _ready(out))
    out.note(f"stopped: {stats.summary()}")


def _json_line(record: CapturedRequest) -> str:
    document = record.to_json()
    cookies = cookies_of(record)
    if cookies:
        document["cookies"] = cookies
    return json_line(document)


def _ready(out: Output) -> None:
    out.note("ready: Ctrl-C to stop")


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
        else f"{s.token_header} passed on as it came"
    )
    passed = "everything, rejected too" if fwd.forward_all else "accepted deliveries only"
    out.note(f"           {untrusted(token)}; forwarding {passed}")
    down = probe(fwd)
    if down is not None:
        out.warn(
            f"handler down: {down} at {fwd.host}:{fwd.port}; deliveries get 502 until it"
            " is up (no need to restart vwh)"
        )
