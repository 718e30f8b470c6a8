"""How captured requests look: a plain line, a JSON object, or a row of the live table.

Pure functions of records; nothing here prints. Request data is untrusted and goes
into `Text` objects, never into markup strings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from vwh.listener import ListenStats
from vwh.store import CapturedRequest

# Short labels for the ids a body carries, in the order they are shown.
ID_LABELS = (
    ("orderId", "order"),
    ("entityId", "entity"),
    ("accountId", "account"),
    ("automationId", "automation"),
    ("userId", "user"),
)


def ids_text(record: CapturedRequest) -> str:
    ids = dict(record.ids)
    if ids.get("entityId") == ids.get("orderId"):
        ids.pop("entityId", None)  # Vendasta sends the order id twice for orders
    return " ".join(f"{label}={ids[key]}" for key, label in ID_LABELS if key in ids)


def resend_text(record: CapturedRequest) -> str:
    if not record.is_resend or record.first_seen_at is None:
        return ""
    return f"resend #{record.attempt} (+{record.received_at - record.first_seen_at:.1f}s)"


def status_text(record: CapturedRequest) -> str:
    return str(record.status) if record.status else "no answer"


def verdict_text(record: CapturedRequest) -> str:
    if record.verdict == "not checked" and record.token_masked:
        return f"not checked [{record.token_masked}]"
    return record.verdict


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def iso_time(epoch: float) -> str:
    """UTC with milliseconds, e.g. 2026-11-30T02:27:41.640Z (cheap: one per request)."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"
    )


def plain_line(record: CapturedRequest) -> str:
    """One line per request, for pipes and logs: stable, space separated, grep-able."""
    target = record.path + (f"?{record.query}" if record.query else "")
    parts = [
        iso_time(record.received_at),
        f"#{record.id}",
        record.method,
        target,
        f"token={record.verdict.replace(' ', '-')}",
        f"status={status_text(record).replace(' ', '-')}",
        f"size={record.body_size}",
        f"latency={record.latency_ms:.1f}ms",
    ]
    if record.ids:
        parts.append(ids_text(record))
    if record.is_resend:
        parts.append(f"resend={record.attempt}")
    if record.error:
        parts.append(f"error={record.error!r}")
    return " ".join(p for p in parts if p)


_VERDICT_STYLES = {"ok": "green", "not checked": "dim"}


def _status_style(status: int) -> str:
    if 200 <= status < 300:
        return "green"
    if 400 <= status < 500:
        return "yellow"
    return "red"


def request_table(records: Iterable[CapturedRequest], stats: ListenStats) -> RenderableType:
    """The live table (oldest row first) with the summary line under it."""
    table = Table(expand=True, pad_edge=False, box=None, header_style="bold")
    table.add_column("time", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("request", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("token", no_wrap=True)
    table.add_column("ids", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("status", justify="right", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("resend", no_wrap=True)
    for r in records:
        verdict_style = (
            "green" if r.verdict == "ok" else "dim" if r.verdict == "not checked" else "red"
        )
        table.add_row(
            time.strftime("%H:%M:%S", time.localtime(r.received_at)),
            str(r.id),
            Text(f"{r.method} {r.path}"),
            Text(verdict_text(r), style=verdict_style),
            Text(ids_text(r) or (r.error or "")),
            size_text(r.body_size),
            Text(status_text(r), style=_status_style(r.status)),
            f"{r.latency_ms:.0f}",
            Text(resend_text(r), style="magenta"),
        )
    summary = Text(stats.summary(), style="bold")
    return Group(table, summary)


def history_table(records: Iterable[CapturedRequest]) -> RenderableType:
    """Kept requests as a table, in the order given (newest first for history)."""
    table = Table(pad_edge=False, box=None, header_style="bold")
    for name in ("#", "received", "request", "token", "status", "ids"):
        table.add_column(name, no_wrap=name != "ids", overflow="fold")
    for r in records:
        table.add_row(
            str(r.id),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.received_at)),
            Text(f"{r.method} {r.path}"),
            Text(r.verdict, style=_VERDICT_STYLES.get(r.verdict, "red")),
            Text(status_text(r), style=_status_style(r.status)),
            Text(ids_text(r) or (r.error or "")),
        )
    return table


def request_details(record: CapturedRequest) -> list[str]:
    """`vwh show` as plain lines: what came in, what went out, and the handler's side."""
    target = record.path + (f"?{record.query}" if record.query else "")
    lines = [
        f"#{record.id}  {iso_time(record.received_at)}",
        f"{record.method} {target}",
        *(f"{name}: {value}" for name, value in record.headers),
        "",
        *_body_lines(record.body, record.body_size),
        "",
        f"token:   {verdict_text(record)}",
        f"answer:  {status_text(record)} in {record.latency_ms:.1f} ms",
    ]
    if record.error:
        lines.append(f"error:   {record.error}")
    if record.attempt:
        lines.append(
            f"attempt: {record.attempt}" + (f"  {resend_text(record)}" if record.is_resend else "")
        )
    fwd = record.forward
    if fwd is not None:
        lines += ["", f"forwarded to {fwd.url}"]
        if fwd.error:
            lines.append(f"handler: {fwd.error}")
        else:
            latency = f" in {fwd.latency_ms:.1f} ms" if fwd.latency_ms is not None else ""
            lines.append(f"handler answered {fwd.status}{latency}")
            lines += [f"{name}: {value}" for name, value in fwd.headers]
            lines += ["", *_body_lines(fwd.body, len(fwd.body or b""))]
        if record.reaction:
            lines.append(f"Vendasta would: {record.reaction}")
    return lines


def _body_lines(body: bytes | None, size: int) -> list[str]:
    if body is None:
        return [f"(body of {size} bytes not kept)"]
    if not body:
        return ["(empty body)"]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [f"(binary body, {size} bytes)", repr(body[:200])]
    try:
        import json

        return json.dumps(json.loads(text), indent=2, ensure_ascii=False).splitlines()
    except ValueError:
        return text.splitlines()
