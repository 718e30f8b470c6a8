"""Start a real automation run through Vendasta's API, then wait for the webhook it sends.

`POST /automationRuns` ("Create automation run", scope `business`) starts an automation
whose trigger is "It's triggered via API" and answers 202 with an empty body. If the
automation ends in a webhook step, the delivery reaches `vwh listen` shortly after; the
wait finds it by polling the listener's store read-only: the first request kept after
the trigger whose body names the entity.

A run is not idempotent, so only a 429 (the API did not take it) is retried; a 5xx or a
lost answer may have started the run, and the message says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vwh.api import JSONAPI, VendastaClient
from vwh.api_errors import (
    errors_detail,
    host_of,
    refusal,
    retry_after,
    status_line,
    transport_errors,
)
from vwh.errors import GaveUpError, InputError, TimeoutError_, UsageError
from vwh.store import CapturedRequest, CaptureStore
from vwh.webhook import InvalidBody, id_kind, parse_body

RUN_SCOPE = "business"
MATCH_FIELDS = ("orderId", "entityId", "accountId")  # a delivery names its entity in one


@dataclass(frozen=True)
class AutomationRun:
    """What to start: an automation, the record it runs for, and the trigger's extra data."""

    automation_id: str
    entity_id: str
    data: dict[str, Any] = field(default_factory=dict)

    def checked(self) -> AutomationRun:
        """This run, once its ids have Vendasta's shapes (else UsageError, nothing sent)."""
        if not self.automation_id.startswith("Automation-") or self.automation_id == "Automation-":
            raise UsageError(
                f"bad automation id {self.automation_id!r}: expected Automation-<uuid>"
                " (the automation's id in Partner Center)"
            )
        if id_kind(self.entity_id) not in ("order", "account"):
            raise UsageError(
                f"bad entity id {self.entity_id!r}: expected an account (AG-...) or an order"
                " (AG-...:ORD-...)"
            )
        return self

    def document(self) -> dict[str, Any]:
        """The JSON:API body: the entity in attributes.entityId (the relationships are
        deprecated), the extra data as one flat object."""
        return {
            "data": {
                "type": "automationRuns",
                "relationships": {
                    "automation": {"data": {"type": "automations", "id": self.automation_id}}
                },
                "attributes": {"entityId": self.entity_id, "data": dict(self.data)},
            }
        }


def parse_data(pairs: Iterable[str], data_file: Path | None = None) -> dict[str, Any]:
    """`--data-file` (a flat JSON object) then each `--data KEY=VALUE` over it."""
    data: dict[str, Any] = {}
    if data_file is not None:
        try:
            text = data_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --data-file {data_file}: {exc}") from None
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InputError(f"--data-file {data_file}: invalid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise InputError(f"--data-file {data_file}: expected a JSON object")
        nested = [k for k, v in loaded.items() if isinstance(v, dict | list)]
        if nested:
            raise InputError(
                f"--data-file {data_file}: the trigger reads a flat object, but"
                f" {', '.join(map(repr, nested[:3]))} hold objects or lists"
            )
        data.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--data {pair!r}: expected KEY=VALUE")
        data[key.strip()] = value
    return data


async def start_run(api: VendastaClient, run: AutomationRun) -> None:
    """POST the run; returns once Vendasta accepted it (2xx), else raises one vwh error."""
    scopes = api.scopes or (RUN_SCOPE,)
    url = api.base_url + "/automationRuns"
    body = json.dumps(run.document()).encode()
    auth = api.source.auth(scopes)
    attempt = 0
    while True:
        try:
            with transport_errors(api.timeout):
                response = await api.http.post(
                    url, content=body, headers={"Content-Type": JSONAPI}, auth=auth
                )
        except TimeoutError_ as exc:
            raise TimeoutError_(f"{exc} (the run may have started all the same)") from None
        if response.status_code != 429 or attempt >= api.retries:
            break
        attempt += 1
        asked = retry_after(response.headers.get("Retry-After"))
        await asyncio.sleep(min(asked if asked is not None else api.backoff * 2**attempt, 30.0))
    _check_run(api, response, run, scopes)


def _check_run(
    api: VendastaClient, response: httpx.Response, run: AutomationRun, scopes: tuple[str, ...]
) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    host, detail = host_of(response), errors_detail(response)
    if status in (400, 422):
        raise UsageError(f"{host} refused the run ({status_line(response)}){detail or ''}")
    if status == 429:
        raise GaveUpError(
            f"{host} answered {status_line(response)} until the retries ran out{detail}"
        )
    if status >= 500:
        raise GaveUpError(
            f"{host} answered {status_line(response)}; the run may or may not have started"
            f" (not retried: a run is not idempotent){detail}"
        )
    raise refusal(
        response,
        why_unauthorized=api.why_unauthorized(),
        forbidden=f"starting automation runs needs the {RUN_SCOPE} scope"
        f" (the token was minted for: {' '.join(scopes)})",
        missing=f"automation {run.automation_id} {api.where_missing()}",
    )


# ---- waiting for the delivery ---------------------------------------------------------


def names_entity(body: bytes | None, entity_id: str) -> bool:
    """True when a kept body names the entity in orderId, entityId or accountId."""
    if not body:
        return False
    try:
        parsed = parse_body(body)
    except InvalidBody:
        return False
    return any(str(parsed.get(f, "")) == entity_id for f in MATCH_FIELDS)


class StoreWatch:
    """Polls a listener's store read-only for new requests; the store may not exist yet.

    Only `id`, `received_at` and `body` are read while polling, through a read-only
    connection, so a listener writing at the same time is never held up.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self.last_id = 0

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.exists():
            with contextlib.suppress(sqlite3.Error):
                self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        return self._conn

    def mark(self) -> None:
        """Remember the newest request now: only later ones can be the run's delivery."""
        for request_id, _, _ in self._rows("SELECT max(id), 0, NULL FROM requests"):
            self.last_id = int(request_id or 0)

    def new_requests(self) -> list[tuple[int, float, bytes | None]]:
        rows = self._rows(
            "SELECT id, received_at, body FROM requests WHERE id > ? ORDER BY id", (self.last_id,)
        )
        if rows:
            self.last_id = rows[-1][0]
        return rows

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        conn = self._connection()
        if conn is None:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error:  # the listener is creating the schema: try on the next poll
            return []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def wait_for_delivery(
    watch: StoreWatch,
    entity_id: str,
    *,
    since: float,
    timeout: float,
    poll: float = 0.1,
    on_tick: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CapturedRequest:
    """The first request kept after the trigger that names the entity; TimeoutError_ else."""
    start = clock()
    while True:
        for request_id, received_at, body in watch.new_requests():
            if received_at >= since and names_entity(body, entity_id):
                with CaptureStore.open_existing(watch.path) as store:
                    return store.get(int(request_id))
        elapsed = clock() - start
        if elapsed >= timeout:
            raise TimeoutError_(
                f"no delivery naming {entity_id} reached {watch.path} within {timeout:g} s:"
                " is `vwh listen` running on that store (--store, VWH_STORE)? does the"
                " automation's webhook step point at its URL (your tunnel's)? is the"
                " automation on, and does it end in a webhook step?"
            )
        if on_tick is not None:
            on_tick(elapsed)
        time.sleep(min(poll, max(0.0, timeout - elapsed)))
