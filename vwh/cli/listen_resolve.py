"""`vwh listen --resolve` on screen: hands kept deliveries to the resolver, shows what lands.

On a terminal the row itself gains a `resolved` cell when the names arrive (the live
table is redrawn anyway). Piped or with --json, lines already printed cannot change, so
the names come as a follow-up line naming the request's number; the request's own line
is never held back for them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from vwh.cli.api_options import ApiOptions
from vwh.cli.output import Output, untrusted
from vwh.cli.resolve_view import PENDING, cell_text, json_event, plain_line
from vwh.resolve import Resolution, Resolver
from vwh.sanitize import inert
from vwh.store import CapturedRequest

KEEP_CELLS = 1000  # the live table shows a screenful; older cells are dropped


class ResolveDisplay:
    def __init__(self, out: Output, api: ApiOptions, store_path: Path) -> None:
        self.out = out
        self.lock = threading.Lock()  # one writer of stdout at a time
        self.cells: dict[int, str] = {}
        client = api.client()
        self.resolver = Resolver(client, store_path, self._landed).start()
        out.note(
            untrusted(
                inert(
                    f"  resolve: order, account, user and automation names from"
                    f" {client.base_url} ({client.source.description})"
                )
            )
        )

    def submit(self, records: Iterable[CapturedRequest]) -> None:
        """From the store's writer thread, after the commit: never waits on the API."""
        for request_id in self.resolver.submit(records):
            if self.out.rich:
                self.cells[request_id] = PENDING
        while len(self.cells) > KEEP_CELLS:
            del self.cells[next(iter(self.cells))]

    def _landed(self, request_id: int, resolution: Resolution) -> None:
        """In the resolver's thread, once a request's lookups are done."""
        if self.out.rich:
            if request_id in self.cells:
                self.cells[request_id] = cell_text(resolution)
            return
        render = json_event if self.out.json_mode else plain_line
        with self.lock:
            self.out.lines([render(request_id, resolution)])

    def close(self) -> None:
        self.resolver.close()
