"""The listener's ASGI app: verify, keep, then answer as scripted.

Order of work for each request: read the body (bounded), check the token in
constant time, parse the body, decide the answer (scripted status, fail-first,
delay), commit the record to the store, and only then answer. A request that got
an answer is therefore never lost.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.types import Receive, Scope, Send

from vwh.errors import StoreError
from vwh.store import BatchWriter, CapturedRequest, CaptureStore
from vwh.webhook import (
    DEFAULT_TOKEN_HEADER,
    SECRET_HEADER_NAMES,
    InvalidBody,
    TokenVerdict,
    body_ids,
    fingerprint,
    mask_secret,
    parse_body,
    verify_token,
)

DEFAULT_MAX_BODY = 1024 * 1024
FAIL_FIRST_STATUS = 503
_RECEIVED: dict[str, object] = {"received": True}
_JSON = b"application/json"


@dataclass(frozen=True)
class ReceiverSettings:
    """How the listener checks and answers; every field maps to a `vwh listen` option."""

    token: str | None = None
    token_header: str = DEFAULT_TOKEN_HEADER
    reject_status: int = 401
    status: int = 200
    delay: float = 0.0
    fail_first: int = 0
    respond_body: bytes | None = None
    max_body: int = DEFAULT_MAX_BODY
    save_dir: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)


class DeliveryTracker:
    """Counts arrivals of each distinct body, to spot Vendasta's resends.

    Recent bodies live in a bounded LRU, so memory stays flat under load; older
    ones are looked up in the store, so resends are recognised across restarts.
    """

    def __init__(self, store: CaptureStore | None, capacity: int = 4096) -> None:
        self._store = store
        self._capacity = capacity
        self._seen: OrderedDict[int, list[float]] = OrderedDict()  # fp -> [count, first_seen]

    def arrive(self, fp: int, now: float) -> tuple[int, float]:
        """Record one arrival; return its attempt number (1 = first) and first arrival."""
        entry = self._seen.get(fp)
        if entry is None:
            count, first = self._store.deliveries_of(fp) if self._store else (0, None)
            entry = [float(count), first if first is not None else now]
            self._seen[fp] = entry
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(fp)
        entry[0] += 1
        return int(entry[0]), entry[1]


CaptureCallback = Callable[[CapturedRequest], None]


class Receiver:
    """State behind the app: settings, the writer, the resend tracker, the callback."""

    def __init__(
        self,
        settings: ReceiverSettings,
        writer: BatchWriter,
        tracker: DeliveryTracker,
        on_capture: CaptureCallback | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.tracker = tracker
        self.on_capture = on_capture
        self._token_header = settings.token_header.lower()
        self._secret_names = SECRET_HEADER_NAMES | {self._token_header}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A plain ASGI app: the hot path skips routing and middleware it does not need."""
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to do
        try:
            status, payload, headers = await self._handle(scope, receive)
        except StoreError as exc:
            # Not kept means not done: a 5xx makes Vendasta resend it later.
            status, payload, headers = 500, _json_bytes({"error": str(exc)}, None), []
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        started = time.perf_counter()
        s = self.settings
        # One pass over the headers: find the token and the size, mask every secret.
        headers: list[tuple[str, str]] = []
        received_token = declared_size = None
        for raw_name, raw_value in scope["headers"]:  # ASGI names are lower-case
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            if name in self._secret_names:
                if name == self._token_header and received_token is None:
                    received_token = value
                value = mask_secret(value)
            elif name == "content-length":
                declared_size = value
            headers.append((name, value))
        record = CapturedRequest(
            received_at=time.time(),
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            verdict=verify_token(s.token, received_token).value,
            token_masked=mask_secret(received_token),
        )
        body, record.body_size = await _read_body(receive, declared_size, s.max_body)
        record.body = body
        answer: dict[str, object] | bytes
        if record.method != "POST":
            record.error = "method not allowed: deliveries are POST"
            record.status, answer = 405, {"error": record.error}
        elif body is None:
            record.error = f"body over {s.max_body} bytes, not kept"
            record.status, answer = 413, {"error": record.error}
        else:
            try:
                record.status, answer = await self._deliver(record, body)
            except asyncio.CancelledError:
                # The listener is stopping mid-delay: keep the request, unanswered.
                record.status, record.error = 0, "listener stopped before answering"
                record.latency_ms = (time.perf_counter() - started) * 1000
                self.writer.write_nowait(record)
                raise
        record.latency_ms = (time.perf_counter() - started) * 1000
        await self.writer.write(record)
        if s.save_dir is not None and body is not None and not record.rejected:
            _save_body(s.save_dir, record)
        if self.on_capture is not None:
            self.on_capture(record)
        payload = answer if isinstance(answer, bytes) else _json_bytes(answer, record.id)
        return record.status, payload, [(b"allow", b"POST")] if record.status == 405 else []

    async def _deliver(
        self, record: CapturedRequest, body: bytes
    ) -> tuple[int, dict[str, object] | bytes]:
        """Check token and body, then answer as scripted (or as the handler did)."""
        s = self.settings
        try:
            parsed = parse_body(body)
        except InvalidBody as exc:
            record.error = str(exc)
            parsed = None
        else:
            record.ids = body_ids(parsed)
        if record.verdict in (TokenVerdict.WRONG.value, TokenVerdict.MISSING.value):
            return s.reject_status, {"error": f"{record.verdict} {s.token_header}"}
        if parsed is None:
            return 400, {"error": record.error}
        record.fingerprint = fingerprint(body)
        record.attempt, record.first_seen_at = self.tracker.arrive(
            record.fingerprint, record.received_at
        )
        if s.delay > 0:
            await asyncio.sleep(s.delay)
        if record.attempt <= s.fail_first:
            return FAIL_FIRST_STATUS, {
                "error": f"scripted failure {record.attempt} of {s.fail_first} (--fail-first)"
            }
        if s.respond_body is not None:
            return s.status, s.respond_body
        return s.status, _RECEIVED


async def _read_body(
    receive: Receive, declared: str | None, limit: int
) -> tuple[bytes | None, int]:
    """The body, or None with the size seen when it is larger than `limit`."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None, int(declared)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, size
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), size


def _json_bytes(answer: dict[str, object], request_id: int | None) -> bytes:
    if request_id is not None and answer is _RECEIVED:
        return b'{"received":true,"id":%d}' % request_id  # the hot path, without json.dumps
    return json.dumps({**answer, "id": request_id}, separators=(",", ":")).encode()


def _save_body(directory: Path, record: CapturedRequest) -> None:
    """Write the body byte for byte, named so `ls` sorts files in arrival order."""
    assert record.body is not None
    (directory / f"vwh-{record.id:06d}.json").write_bytes(record.body)


def create_app(
    settings: ReceiverSettings,
    writer: BatchWriter,
    store: CaptureStore | None = None,
    on_capture: CaptureCallback | None = None,
) -> Receiver:
    """Build the listener's ASGI app; the CLI alone runs it under uvicorn."""
    return Receiver(settings, writer, DeliveryTracker(store), on_capture)
