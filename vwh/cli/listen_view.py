"""How captured requests look: a plain line, a JSON object, or a row of the live table.

Pure functions of records; nothing here prints. Request data is untrusted and goes
into `Text` objects, never into markup strings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone

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
    return (
        datetime.fromtimestamp(epoch, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
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
