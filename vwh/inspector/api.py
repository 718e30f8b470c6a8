"""The inspector's JSON API: kept requests (filtered, paged by id), one in full, its
body, the live stream, and replay.

The page reads nothing else, so what it shows is what a script gets. Data goes out
as JSON (`application/json`) or as an attachment, never as markup.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from vwh.errors import VwhError
from vwh.inspector.broadcast import Gap
from vwh.inspector.replay import ReplayRequest, outgoing, replay_record, replay_target
from vwh.inspector.settings import InspectorSettings
from vwh.query import RequestFilter, parse_since, select
from vwh.signing import render_curl
from vwh.store import CapturedRequest, CaptureStore

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PING_SECONDS = 15.0


def summary(r: CapturedRequest) -> dict[str, Any]:
    """One row of the list: everything the table shows, no headers or body."""
    fwd = r.forward
    return {
        "id": r.id,
        "received_at": r.received_at,
        "method": r.method,
        "path": r.path,
        "query": r.query,
        "verdict": r.verdict,
        "error": r.error,
        "status": r.status,
        "latency_ms": round(r.latency_ms, 3),
        "body_size": r.body_size,
        "ids": r.ids,
        "attempt": r.attempt,
        "first_seen_at": r.first_seen_at,
        "reaction": r.reaction,
        "forward": None
        if fwd is None
        else {"status": fwd.status, "latency_ms": fwd.latency_ms, "error": fwd.error},
    }


def _pretty(body: bytes | None) -> str | None:
    if body is None:
        return None
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return None


class InspectorApi:
    """The endpoints, over one store (read in a worker thread: a long grep never
    holds up the stream) and the settings of the run they serve."""

    def __init__(
        self, store: CaptureStore, info: dict[str, Any], settings: InspectorSettings
    ) -> None:
        self.store = store
        self.info = info
        self.settings = settings
        self.broadcaster = settings.broadcaster

    async def get_info(self, request: Request) -> Response:
        return JSONResponse(self.info)

    async def list_requests(self, request: Request) -> Response:
        try:
            flt, page = _filter_of(request.query_params)
        except (VwhError, ValueError) as exc:
            return _error(400, str(exc))
        limit = page.pop("limit")
        rows = await run_in_threadpool(select, self.store, flt, limit=limit + 1, **page)
        return JSONResponse(
            {"requests": [summary(r) for r in rows[:limit]], "has_more": len(rows) > limit}
        )

    async def get_request(self, request: Request) -> Response:
        record = await self._record(request)
        if record is None:
            return _error(404, f"no kept request with id {request.path_params['id']}")
        timeline: list[CapturedRequest] = []
        if record.fingerprint is not None and record.attempt is not None:
            flt = RequestFilter(fingerprint=record.fingerprint)
            timeline = await run_in_threadpool(
                select, self.store, flt, limit=200, newest_first=False
            )
        data = record.to_json()
        data["body_pretty"] = _pretty(record.body)
        if record.forward is not None:
            data["forward"]["body_pretty"] = _pretty(record.forward.body)
        data["timeline"] = [summary(r) for r in timeline]
        data["replay_target"] = replay_target(self.settings, record)
        data["curl"] = self._curl(record)
        return JSONResponse(data)

    async def get_body(self, request: Request) -> Response:
        record = await self._record(request)
        if record is None or record.body is None:
            return _error(404, "no kept body for this request")
        name = f"vwh-request-{record.id}.json"
        return Response(
            record.body,
            media_type="application/octet-stream",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def replay(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "send the options as application/json")
        record = await self._record(request)
        if record is None:
            return _error(404, f"no kept request with id {request.path_params['id']}")
        try:
            options = ReplayRequest.from_json(await request.body())
            result = await replay_record(self.settings, record, options)
        except VwhError as exc:
            return _error(422, str(exc))
        return JSONResponse(result)

    async def events(self, request: Request) -> Response:
        """Server-Sent Events: `request` per kept request, `gap` when some were dropped."""
        sub = self.broadcaster.subscribe()
        resumed = "last-event-id" in request.headers

        async def stream() -> Any:
            try:
                yield b"retry: 1000\n: live\n\n"
                if resumed:  # a reconnect missed what came meanwhile
                    yield b'event: gap\ndata: {"dropped": null}\n\n'
                while True:
                    items = await sub.next(PING_SECONDS)
                    if items is None:
                        yield b": ping\n\n"
                        continue
                    if not items:
                        return
                    yield b"".join(_event(item) for item in items)
            finally:
                self.broadcaster.unsubscribe(sub)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def _record(self, request: Request) -> CapturedRequest | None:
        try:
            return await run_in_threadpool(self.store.get, int(request.path_params["id"]))
        except VwhError:
            return None

    def _curl(self, record: CapturedRequest) -> str | None:
        """Copy as curl: the token as $VWH_TOKEN, never the listener's own in clear."""
        if record.body is None:
            return None
        s = self.settings
        place = s.place
        simple = s.token is not None and place.name.replace("-", "").replace("_", "").isalnum()
        request = outgoing(
            s, record, replay_target(s, record), token=_PLACEHOLDER if simple else None
        )
        text = render_curl(request)
        if place.is_header:
            return text.replace(f"'{place.name}: {_PLACEHOLDER}'", f'"{place.name}: $VWH_TOKEN"')
        # In the URL's query or the Cookie header: both are one single-quoted word.
        return text.replace(_PLACEHOLDER, "'\"$VWH_TOKEN\"'")


_PLACEHOLDER = "VWH-TOKEN-PLACEHOLDER"


def _event(item: CapturedRequest | Gap) -> bytes:
    if isinstance(item, Gap):
        return f'event: gap\ndata: {{"dropped": {item.dropped}}}\n\n'.encode()
    data = json.dumps(summary(item), ensure_ascii=True)
    return f"id: {item.id}\nevent: request\ndata: {data}\n\n".encode()


def _filter_of(params: Any) -> tuple[RequestFilter, dict[str, Any]]:
    """The list's query parameters: the same filters as `vwh history`, and id paging."""

    def number(name: str) -> int | None:
        value = params.get(name)
        if value in (None, ""):
            return None
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, not {value!r}") from None

    def text(name: str) -> str | None:
        value = params.get(name)
        return value if value else None

    since, until = text("since"), text("until")
    flt = RequestFilter(
        verdict=text("verdict"),
        status=text("status"),
        path_prefix=text("path"),
        since=parse_since(since) if since else None,
        until=parse_since(until) if until else None,
        grep=text("q"),
        resends=params.get("resends", "") in ("1", "true", "yes"),
        outcome=text("outcome"),
    )
    given = number("limit")
    limit = DEFAULT_LIMIT if given is None else given
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be from 1 to {MAX_LIMIT}")
    order = params.get("order", "newest")
    if order not in ("newest", "oldest"):
        raise ValueError("order must be newest or oldest")
    page = {
        "limit": limit,
        "before_id": number("before_id"),
        "after_id": number("after_id"),
        "newest_first": order == "newest",
    }
    return flt, page


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
