"""How `--resolve`'s findings look: a cell of the live table, a follow-up line, JSON, show.

Pure functions. Names come from Vendasta's API, so from outside: every string passes
through the sanitiser before it is returned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from vwh.cli.listen_view import iso_time
from vwh.sanitize import inert, json_line

ORDER = ("order", "account", "user", "automation")
PENDING = "…"


def _glance(kind: str, shown: Mapping[str, str]) -> str:
    if "error" in shown:
        return f"{kind}: {shown['error']}"
    if kind == "order":
        return " ".join(v for v in (shown.get("status"), shown.get("currency")) if v) or "order"
    return shown.get("name") or shown.get("email") or shown.get("id", "")


def cell_text(resolution: Mapping[str, Mapping[str, str]]) -> str:
    """One short cell: `processing USD; Patty's Irish Pub; Bill Smith; Notify ...`."""
    parts = [_glance(kind, resolution[kind]) for kind in ORDER if kind in resolution]
    return inert("; ".join(p for p in parts if p))


def plain_line(request_id: int, resolution: Mapping[str, Mapping[str, str]]) -> str:
    """The follow-up line for pipes: the request's number, then `kind=value` pairs.

    A pipe cannot redraw a line already printed, and holding the request's own line
    back until its lookups end would make the output wait on the API: the request's
    line goes out when it is kept, this one when its names arrive.
    """
    parts = [iso_time(time.time()), f"#{request_id}", "resolved"]
    for kind in ORDER:
        shown = resolution.get(kind)
        if shown is None:
            continue
        if "error" in shown:
            parts.append(f"{kind}_error={json.dumps(shown['error'], ensure_ascii=False)}")
        else:
            parts.append(f"{kind}={json.dumps(_glance(kind, shown), ensure_ascii=False)}")
    return inert(" ".join(parts))


def json_event(request_id: int, resolution: Mapping[str, Mapping[str, str]]) -> str:
    """The follow-up JSON line: `{"event": "resolved", "id": N, "resolved": {...}}`, by id."""
    return json_line({"event": "resolved", "id": request_id, "resolved": dict(resolution)})


def detail_lines(resolution: Mapping[str, Mapping[str, str]] | None) -> list[str]:
    """`vwh show`'s section: one line per record looked up."""
    if not resolution:
        return []
    lines = ["", "resolved (vwh listen --resolve):"]
    for kind in ORDER:
        shown = resolution.get(kind)
        if shown is None:
            continue
        fields = ", ".join(f"{k}: {v}" for k, v in shown.items() if k != "id")
        lines.append(inert(f"  {kind} {shown.get('id', '')}: {fields}"))
    return lines
