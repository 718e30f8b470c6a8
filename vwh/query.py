"""Which kept requests to read: one filter for `vwh history`, `vwh export` and the inspector.

A `RequestFilter` becomes one SQL WHERE clause with bound parameters, so every
reader of the store filters the same way and none loads rows only to drop them.
Pages go by id (`before_id`, `after_id`), which stays fast at any depth of history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from vwh.errors import UsageError
from vwh.store import CapturedRequest, CaptureStore
from vwh.store_schema import FINGERPRINT_MATCH

VERDICTS = {"ok": "ok", "wrong": "wrong", "missing": "missing", "unchecked": "not checked"}
OUTCOMES = ("accepted", "rejected", "resends", "handler-failed")

_REJECTED = "(verdict IN ('wrong', 'missing') OR error IS NOT NULL)"
_OUTCOME_SQL = {
    "accepted": f"(status BETWEEN 200 AND 299 AND NOT {_REJECTED})",
    "rejected": _REJECTED,
    "resends": "attempt > 1",
    "handler-failed": (
        "(forward_url IS NOT NULL AND (forward_status IS NULL"
        " OR forward_status NOT BETWEEN 200 AND 299))"
    ),
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_STATUS = re.compile(r"^([1-5])(?:xx|\d\d)$", re.IGNORECASE)


@dataclass(frozen=True)
class RequestFilter:
    """What to read; every field None (or False) means no condition on it."""

    verdict: str | None = None  # ok | wrong | missing | unchecked
    status: str | None = None  # "401", or a class such as "5xx"
    path_prefix: str | None = None
    since: float | None = None  # epoch seconds
    until: float | None = None  # epoch seconds, exclusive
    grep: str | None = None  # in the path, query or body (ids are in the body), any case
    resends: bool = False
    outcome: str | None = None  # one of OUTCOMES
    fingerprint: int | None = None  # every delivery of one body (the resend timeline)

    def __post_init__(self) -> None:
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise UsageError(f"unknown verdict {self.verdict!r}: use one of {', '.join(VERDICTS)}")
        if self.status is not None and not _STATUS.match(self.status):
            raise UsageError(f"bad status {self.status!r}: use a code such as 401 or a class: 5xx")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise UsageError(f"unknown filter {self.outcome!r}: use one of {', '.join(OUTCOMES)}")

    def where(self) -> tuple[str, tuple[Any, ...]]:
        """The SQL condition and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.verdict is not None:
            clauses.append("verdict = ?")
            params.append(VERDICTS[self.verdict])
        if self.status is not None:
            if self.status[1:].lower() == "xx":
                low = int(self.status[0]) * 100
                clauses.append("status BETWEEN ? AND ?")
                params += [low, low + 99]
            else:
                clauses.append("status = ?")
                params.append(int(self.status))
        if self.path_prefix:
            clauses.append("substr(path, 1, ?) = ?")
            params += [len(self.path_prefix), self.path_prefix]
        if self.since is not None:
            clauses.append("received_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("received_at < ?")
            params.append(self.until)
        if self.grep:
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", self.grep) + "%"
            clauses.append(
                "(path LIKE ? ESCAPE '\\' OR query LIKE ? ESCAPE '\\'"
                " OR CAST(body AS TEXT) LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern, pattern]
        if self.resends:
            clauses.append(_OUTCOME_SQL["resends"])
        if self.outcome is not None:
            clauses.append(_OUTCOME_SQL[self.outcome])
        if self.fingerprint is not None:
            clauses.append(FINGERPRINT_MATCH)
            params.extend((self.fingerprint, self.fingerprint))
        return " AND ".join(clauses) or "1", tuple(params)


def select(
    store: CaptureStore,
    flt: RequestFilter | None = None,
    *,
    limit: int | None = 20,
    before_id: int | None = None,
    after_id: int | None = None,
    newest_first: bool = True,
) -> list[CapturedRequest]:
    """One page of kept requests that match, newest first unless asked otherwise."""
    where, params = (flt or RequestFilter()).where()
    if before_id is not None:
        where += " AND id < ?"
        params += (before_id,)
    if after_id is not None:
        where += " AND id > ?"
        params += (after_id,)
    return store.find(where, params, newest_first=newest_first, limit=limit)


def iter_matching(
    store: CaptureStore,
    flt: RequestFilter | None = None,
    *,
    page: int = 500,
    newest_first: bool = False,
) -> Iterator[CapturedRequest]:
    """Every match, oldest first unless asked, a page at a time: memory stays flat."""
    edge: int | None = None
    while True:
        if newest_first:
            rows = select(store, flt, limit=page, before_id=edge)
        else:
            rows = select(store, flt, limit=page, after_id=edge, newest_first=False)
        yield from rows
        if len(rows) < page:
            return
        edge = rows[-1].id


def parse_since(text: str, now: float | None = None) -> float:
    """'10m', '2h', '7d' (that long ago) or an ISO date/time (local unless it says) as epoch."""
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return (time.time() if now is None else now) - seconds
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad time {text!r}: use a duration (30s, 10m, 2h, 7d, 1w) or an ISO time"
            " (2026-12-01T10:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as a person types it
    return moment.astimezone(timezone.utc).timestamp()


def delete_matching(store: CaptureStore, flt: RequestFilter | None = None) -> int:
    """Drop every kept request that matches (all of them with no filter); how many went."""
    where, params = (flt or RequestFilter()).where()
    return store.delete(where, params)
