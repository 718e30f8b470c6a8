"""The listener's ASGI app: verify, keep, then answer as scripted.

Order of work for each request: read the body (bounded), check the token in
constant time, parse the body, decide the answer (scripted status, fail-first,
delay), commit the record to the store, and only then answer. A request that got
an answer is therefore never lost.

With `forward` set, an accepted delivery is also passed on to the developer's
handler (see vwh.forward) and, unless a scripted answer was asked for, the
sender gets the handler's answer. Without it, the hot path does no forwarding
work at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Receive, Scope, Send

from vwh.errors import StoreError
from vwh.forward import Forwarder, ForwardSettings, failure_of
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
    vendasta_reaction,
    verify_token,
)

DEFAULT_MAX_BODY = 1024 * 1024
FAIL_FIRST_STATUS = 503
_RECEIVED: dict[str, object] = {"received": True}
_JSON = b"application/json"
_REJECTED = (TokenVerdict.WRONG.value, TokenVerdict.MISSING.value)

Answer = dict[str, object] | bytes
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class ReceiverSettings:
    """How the listener checks and answers; every field maps to a `vwh listen` option."""

    token: str | None = None
    token_header: str = DEFAULT_TOKEN_HEADER
    reject_status: int = 401
    status: int | None = None  # None: 200, or the handler's answer when forwarding
    delay: float = 0.0
    fail_first: int = 0
    respond_body: bytes | None = None
    max_body: int = DEFAULT_MAX_BODY
    save_dir: Path | None = None
    forward: ForwardSettings | None = None

    @property
    def scripted(self) -> bool:
        """True when the sender's answer is set by options, not by a handler."""
        return self.status is not None or self.respond_body is not None


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


class Receiver:
    """State behind the app: settings, the writer, the resend tracker, the forwarder."""

    def __init__(
        self,
        settings: ReceiverSettings,
        writer: BatchWriter,
        tracker: DeliveryTracker,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.tracker = tracker
        self._token_header = settings.token_header.lower()
        self._secret_names = SECRET_HEADER_NAMES | {self._token_header}
        self._status = settings.status or 200
        self.forwarder = (
            Forwarder(settings.forward, settings.token_header) if settings.forward else None
        )

    async def aclose(self) -> None:
        """Release what the app holds between requests (the handler connections)."""
        if self.forwarder is not None:
            await self.forwarder.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A plain ASGI app: the hot path skips routing and middleware it does not need."""
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to do
        try:
            status, payload, headers = await self._handle(scope, receive)
        except StoreError as exc:
            # Not kept means not done: a 5xx makes Vendasta resend it later.
            status, payload = 500, _json_bytes({"error": str(exc)}, None)
            headers = [(b"content-type", _JSON)]
        headers.append((b"content-length", b"%d" % len(payload)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes, Headers]:
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
        answer: Answer
        out_headers: Headers | None = None  # None: our own JSON answer
        if record.method != "POST" and self.forwarder is None:
            record.error = "method not allowed: deliveries are POST"
            record.status, answer = 405, {"error": record.error}
        elif body is None:
            record.error = f"body over {s.max_body} bytes, not kept"
            record.status, answer = 413, {"error": record.error}
        else:
            try:
                if self.forwarder is None:
                    record.status, answer = await self._deliver(record, body)
                else:
                    record.status, answer, out_headers = await self._relay(scope, record, body)
            except asyncio.CancelledError:
                # The listener is stopping mid-delay: keep the request, unanswered.
                record.status, record.error = 0, "listener stopped before answering"
                record.latency_ms = (time.perf_counter() - started) * 1000
                if self.forwarder is not None:
                    record.reaction = vendasta_reaction(None).value
                self.writer.write_now(record)
                raise
        record.latency_ms = (time.perf_counter() - started) * 1000
        if self.forwarder is not None:
            record.reaction = vendasta_reaction(record.status).value
        await self.writer.write(record)
        if s.save_dir is not None and body is not None and not record.rejected:
            _save_body(s.save_dir, record)
        payload = answer if isinstance(answer, bytes) else _json_bytes(answer, record.id)
        if out_headers is None:
            out_headers = [(b"content-type", _JSON)]
            if record.status == 405:
                out_headers.append((b"allow", b"POST"))
        return record.status, payload, out_headers

    async def _deliver(self, record: CapturedRequest, body: bytes) -> tuple[int, Answer]:
        """Check token and body, then answer as scripted."""
        rejection = self._check(record, body)
        if rejection is not None:
            return rejection
        if self.settings.delay > 0:
            await asyncio.sleep(self.settings.delay)
        return self._scripted(record) or (self._status, _RECEIVED)

    def _check(self, record: CapturedRequest, body: bytes) -> tuple[int, Answer] | None:
        """Token and body checks: the rejection, or None for a delivery (then counted)."""
        s = self.settings
        parsed: dict[str, object] | None
        try:
            parsed = parse_body(body)
        except InvalidBody as exc:
            record.error = str(exc)
            parsed = None
        else:
            record.ids = body_ids(parsed)
        if record.verdict in _REJECTED:
            return s.reject_status, {"error": f"{record.verdict} {s.token_header}"}
        if parsed is None:
            return 400, {"error": record.error}
        record.fingerprint = fingerprint(body)
        record.attempt, record.first_seen_at = self.tracker.arrive(
            record.fingerprint, record.received_at
        )
        return None

    def _scripted(self, record: CapturedRequest) -> tuple[int, Answer] | None:
        """The answer options ask for (--fail-first, --respond, --status), if any."""
        s = self.settings
        if record.attempt is not None and record.attempt <= s.fail_first:
            return FAIL_FIRST_STATUS, {
                "error": f"scripted failure {record.attempt} of {s.fail_first} (--fail-first)"
            }
        if s.respond_body is not None:
            return self._status, s.respond_body
        if s.status is not None:
            return s.status, _RECEIVED
        return None

    async def _relay(
        self, scope: Scope, record: CapturedRequest, body: bytes
    ) -> tuple[int, Answer, Headers | None]:
        """Check, pass on to the handler, and pick the sender's answer.

        Rejected requests stay here unless --forward-all; then the handler's own
        rejection goes back. For a delivery, scripted options (--status, --respond,
        --fail-first) decide the sender's answer, though the handler is still called;
        --delay is the least time before the sender gets it.
        """
        forwarder = self.forwarder
        assert forwarder is not None
        s = self.settings
        if record.method != "POST":
            record.error = "method not allowed: deliveries are POST"
            rejection: tuple[int, Answer] | None = (405, {"error": record.error})
        else:
            rejection = self._check(record, body)
        if rejection is not None and not forwarder.settings.forward_all:
            return rejection[0], rejection[1], None
        started = time.perf_counter()
        # A wrong or missing token goes on as it came, so the handler can reject it too.
        record.forward = forwarder.new_result(scope)
        reply = await forwarder.send(
            record.forward, scope, body, replace_token=record.verdict not in _REJECTED
        )
        if rejection is None:
            if s.delay > 0:
                remaining = s.delay - (time.perf_counter() - started)
                if remaining > 0:
                    await asyncio.sleep(remaining)
            scripted = self._scripted(record)
            if scripted is not None:
                return scripted[0], scripted[1], None
        if reply is None:
            failure = failure_of(record.forward)
            assert failure is not None
            return failure.gateway_status, {"error": record.forward.error}, None
        return reply.status, reply.body, reply.headers

    async def keep_refused(self, raw: bytes, received: int, status: int, error: str) -> None:
        """Keep a request the HTTP layer refused before it reached the app (malformed,
        head too large, too slow; see vwh.http_guard): its request line and header
        fields as far as they go, its first bytes as the body, secrets masked."""
        from vwh.http_guard import describe_refused

        head = describe_refused(raw, self._secret_names, self._token_header)
        record = CapturedRequest(
            received_at=time.time(),
            method=head.method,
            path=head.path,
            query=head.query,
            headers=head.headers,
            body=head.raw,
            body_size=received,
            verdict=verify_token(self.settings.token, head.token).value,
            token_masked=mask_secret(head.token),
            error=error,
            status=status,
        )
        with contextlib.suppress(StoreError):  # already answered: nothing else to do
            await self.writer.write(record)


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
) -> Receiver:
    """Build the listener's ASGI app; the CLI alone runs it under uvicorn.

    When it forwards, await `app.aclose()` in the server's loop once it has stopped.
    """
    return Receiver(settings, writer, DeliveryTracker(store))
