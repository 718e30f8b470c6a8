"""How captured requests look: a plain line, a JSON object, or a row of the live table.

Pure functions of records; nothing here prints. Request data is untrusted: every
line and every cell leaves here inert (`vwh.sanitize`), in `Text` objects, never in
markup strings. A record that cannot be drawn becomes a one-line note saying so, so
it never stops the display of those after it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from vwh.forward import handler_label
from vwh.listener import ListenStats
from vwh.sanitize import inert, inert_preview, json_line
from vwh.store import CapturedRequest, ForwardResult
from vwh.webhook import cookie_names

# Short labels for the ids a body carries, most telling first.
ID_LABELS = (
    ("orderId", "order"),
    ("userId", "user"),
    ("entityId", "entity"),
    ("accountId", "account"),
    ("automationId", "automation"),
)


def ids_text(record: CapturedRequest, *, compact: bool = False) -> str:
    """The ids a body carries; `compact` (the live table) drops labels and repeats.

    Vendasta repeats the record's id as entityId, and an order id starts with its
    account id: the table shows each once, so the order id fits in 100 columns.
    """
    ids = record.ids
    entity = ids.get("entityId")
    # entityId is left out when another id has its value (it appears twice).
    repeated = entity is not None and list(ids.values()).count(entity) > 1
    shown: list[str] = []
    for key, label in ID_LABELS:
        value = ids.get(key)
        if value is None or (repeated and key == "entityId"):
            continue
        if compact and key == "accountId" and ids.get("orderId", "").startswith(value + ":"):
            continue
        shown.append(value if compact else f"{label}={value}")
    return " ".join(shown)


def cookies_of(record: CapturedRequest) -> list[str]:
    """The names of the cookies a request carried (their values stay in `vwh show`)."""
    names: list[str] = []
    for name, value in record.headers:
        if len(name) == 6 and name.lower() == "cookie":  # the length first: most are not
            names += cookie_names(value)
    return names


def sent_with(record: CapturedRequest) -> str:
    """The query string (secrets masked) and cookie names, for the live table."""
    cookies = cookies_of(record)
    parts = ["cookies " + ",".join(cookies)] if cookies else []  # short: first
    if record.query:
        parts.append(f"?{record.query}")
    return inert(" ".join(parts))


def answer_check_text(record: CapturedRequest) -> str:
    """The --expect-response verdict on the handler's answer ('' when not judged)."""
    return inert(record.answer_check or "")


def resend_text(record: CapturedRequest, *, compact: bool = False) -> str:
    if not record.is_resend or record.first_seen_at is None:
        return ""
    since = record.received_at - record.first_seen_at
    if compact:
        return f"#{record.attempt} +{since:.1f}s"
    return f"resend #{record.attempt} (+{since:.1f}s)"


def status_text(record: CapturedRequest) -> str:
    return str(record.status) if record.status else "no answer"


def verdict_text(record: CapturedRequest) -> str:
    if record.verdict == "not checked" and record.token_masked:
        return f"not checked [{record.token_masked}]"
    return record.verdict


def handler_text(record: CapturedRequest) -> str:
    """The handler's side in a word: its status, 'down', 'timeout', 'broken' or 'not sent'."""
    if record.forward is None:
        return "not sent" if record.reaction is not None else ""
    return handler_label(record.forward)


def handler_said(fwd: ForwardResult | None) -> str:
    """The first part of the handler's answer, or why there was none (beside its label)."""
    if fwd is None:
        return ""
    if fwd.error:
        return fwd.error.partition(": ")[2] or fwd.error
    return inert_preview(fwd.body)


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def iso_time(epoch: float) -> str:
    """UTC with milliseconds, e.g. 2026-11-30T02:27:41.640Z.

    One per request in the listener's output: the formatted second is cached, as
    the requests of a burst share it.
    """
    millis = int(epoch * 1000)
    return f"{_utc_second(millis // 1000)}.{millis % 1000:03d}Z"


def plain_line(record: CapturedRequest) -> str:
    """One line per request, for pipes and logs: stable, space separated, grep-able.

    The writer thread formats every request it commits, so this is on the
    listener's hot path (about a tenth of a request's instructions): one string
    grows by f-strings, with no list of parts to filter and join.
    """
    line = f"{iso_time(record.received_at)} #{record.id}"
    if record.method:  # empty for some requests the HTTP parser refused
        line += f" {record.method}"
    target = f"{record.path}?{record.query}" if record.query else record.path
    if target:
        line += f" {target}"
    line += (
        f" token={_DASHED.get(record.verdict, record.verdict)}"
        f" status={status_text(record).replace(' ', '-')} size={record.body_size}"
        f" latency={record.latency_ms:.1f}ms"
    )
    ids = ids_text(record) if record.ids else ""
    if ids:
        line += f" {ids}"
    cookies = cookies_of(record)
    if cookies:
        line += f" cookies={inert(','.join(cookies)).replace(' ', '%20')}"
    if record.is_resend:
        line += f" resend={record.attempt}"
    if record.error:
        line += f" error={record.error!r}"
    if record.reaction is not None:  # forwarding: the handler's side, then Vendasta's next step
        fwd = record.forward
        line += f" handler={handler_text(record).replace(' ', '-')}"
        if fwd is not None and fwd.latency_ms is not None:
            line += f" handler_ms={fwd.latency_ms:.1f}"
        line += f" next={record.reaction}"
        if fwd is not None and fwd.error:
            line += f" handler_error={fwd.error!r}"
        elif fwd is not None and fwd.body:
            line += f" handler_body={inert_preview(fwd.body, 40)!r}"
        if record.answer_check is not None:
            line += f" response_data={answer_check_text(record)!r}"
    return inert(line)


def json_text(record: CapturedRequest) -> str:
    """One request as one JSON line (`vwh listen --json`): inert, equal in value."""
    document = record.to_json()
    cookies = cookies_of(record)
    if cookies:  # names only: their values (secrets masked) stay in `vwh show`
        document["cookies"] = cookies
    return json_line(document)


def unshowable(record: CapturedRequest, exc: Exception) -> str:
    """The line that stands for a record that could not be drawn; it names the way out."""
    return inert(
        f"#{record.id} could not be shown ({type(exc).__name__}: {exc});"
        f" it is kept: vwh show {record.id} --json"
    )


def shown(render: Callable[[CapturedRequest], str], record: CapturedRequest) -> str:
    """`render(record)`, or the note that it failed: one bad record stops nothing."""
    try:
        return render(record)
    except Exception as exc:  # any bug in drawing one record, never the next ones
        return unshowable(record, exc)


def json_shown(record: CapturedRequest) -> str:
    """`json_text`, or a JSON line that says the record could not be drawn."""
    try:
        return json_text(record)
    except Exception as exc:
        return json_line({"id": record.id, "unshowable": unshowable(record, exc)})


_DASHED = {"not checked": "not-checked"}
_VERDICT_STYLES = {"ok": "green", "not checked": "dim"}


def _status_style(status: int) -> str:
    if 200 <= status < 300:
        return "green"
    if 400 <= status < 500:
        return "yellow"
    return "red"


_NEXT_STYLES = {"done": "green", "dropped": "yellow", "resend": "red"}


def request_table(
    records: Iterable[CapturedRequest],
    stats: ListenStats,
    forwarding: bool = False,
    resolved: Mapping[int, str] | None = None,
) -> RenderableType:
    """The live table (oldest row first) with the summary line under it.

    Forwarding adds the handler's side: its status, latency and first words, and
    what Vendasta would do next with the answer the sender got. To fit in 100
    columns, the size goes and resends show as their attempt number.
    """
    records = list(records)
    extras = any(r.query or cookies_of(r) for r in records)
    judged = forwarding and any(r.answer_check is not None for r in records)
    table = Table(
        expand=True, pad_edge=False, box=None, header_style="bold", collapse_padding=forwarding
    )
    table.add_column("time", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column(
        "request", no_wrap=True, overflow="ellipsis", max_width=16 if forwarding else 18
    )
    if extras:  # the Send a webhook step: what the query and cookies carried
        table.add_column("query, cookies", no_wrap=True, overflow="ellipsis", ratio=1, min_width=12)
    table.add_column("token", no_wrap=True)
    table.add_column("ids", no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
    if resolved is not None:  # --resolve: names from the API (what a glance wants most)
        table.add_column("resolved", no_wrap=True, overflow="ellipsis", ratio=2, min_width=8)
    if not forwarding:
        table.add_column("size", justify="right", no_wrap=True)
    table.add_column("status", justify="right", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    if forwarding:
        table.add_column("try", justify="right", no_wrap=True)
        table.add_column("handler", justify="right", no_wrap=True)
        table.add_column("h ms", justify="right", no_wrap=True)
        table.add_column("handler said", no_wrap=True, overflow="ellipsis", ratio=2, min_width=12)
        if judged:
            table.add_column("response data", no_wrap=True, overflow="ellipsis", ratio=2)
        table.add_column("next", no_wrap=True)
    else:
        table.add_column("resend", no_wrap=True)
    for r in records:
        try:
            cells = _live_cells(r, forwarding, resolved, extras=extras, judged=judged)
        except Exception as exc:  # one record that cannot be drawn stops no other
            note = _cell(unshowable(r, exc), "red")
            cells = ["", str(r.id), "", *([""] if extras else []), "", note]
        table.add_row(*cells)
    summary = Text(stats.summary(), style="bold")
    return Group(table, summary)


def _cell(text: str, style: str = "") -> Text:
    """A table cell of text from outside: inert, and never read as markup."""
    return Text(inert(text), style=style)


def _live_cells(
    r: CapturedRequest,
    forwarding: bool,
    resolved: Mapping[int, str] | None = None,
    *,
    extras: bool = False,
    judged: bool = False,
) -> list[RenderableType]:
    """One row; `extras`: the query and cookies column, `judged`: the response data one."""
    verdict_style = "green" if r.verdict == "ok" else "dim" if r.verdict == "not checked" else "red"
    cells: list[RenderableType] = [
        time.strftime("%H:%M:%S", time.localtime(r.received_at)),
        str(r.id),
        _cell(f"{r.method} {r.path}"),
        *([_cell(sent_with(r))] if extras else []),
        _cell(verdict_text(r), verdict_style),
        _cell(ids_text(r, compact=True) or (r.error or "")),
    ]
    if resolved is not None:
        cells.append(_cell(resolved.get(r.id or 0, ""), "cyan"))
    if not forwarding:
        cells.append(size_text(r.body_size))
    cells += [Text(status_text(r), style=_status_style(r.status)), f"{r.latency_ms:.0f}"]
    if forwarding:
        fwd = r.forward
        cells += [
            Text(str(r.attempt) if r.is_resend else "", style="magenta"),
            _cell(handler_text(r), _status_style(fwd.status or 0) if fwd else "dim"),
            f"{fwd.latency_ms:.0f}" if fwd and fwd.latency_ms is not None else "",
            _cell(handler_said(fwd), "red" if fwd and fwd.error else ""),
        ]
        if judged:
            ok = (r.answer_check or "").startswith("ok")
            cells.append(_cell(answer_check_text(r), "green" if ok else "red"))
        cells.append(Text(r.reaction or "", style=_NEXT_STYLES.get(r.reaction or "", "")))
    else:
        cells.append(Text(resend_text(r, compact=True), style="magenta"))
    return cells


def history_table(records: Iterable[CapturedRequest]) -> RenderableType:
    """Kept requests as a table, in the order given (newest first for history)."""
    table = Table(pad_edge=False, box=None, header_style="bold")
    for name in ("#", "received", "request", "token", "status", "ids"):
        # A long path folds: with no_wrap it would push the ids off the table.
        table.add_column(name, no_wrap=name not in ("request", "ids"), overflow="fold")
    for r in records:
        try:
            table.add_row(
                str(r.id),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.received_at)),
                _cell(f"{r.method} {r.path}"),
                _cell(r.verdict, _VERDICT_STYLES.get(r.verdict, "red")),
                Text(status_text(r), style=_status_style(r.status)),
                _cell(ids_text(r, compact=True) or (r.error or "")),
            )
        except Exception as exc:  # one record that cannot be drawn stops no other
            table.add_row(str(r.id), "", "", "", "", _cell(unshowable(r, exc), "red"))
    return table


def __getattr__(name: str) -> object:
    """`from vwh.cli.listen_view import request_details` goes on working (vwh.cli.show_view
    reads this module's formatters, so it is loaded only when asked for)."""
    if name == "request_details":
        from vwh.cli.show_view import request_details

        return request_details
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
