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
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Receive, Scope, Send

from vwh.asgi_answer import RECEIVED, Headers, json_answer, read_body, send_answer
from vwh.errors import StoreError
from vwh.expect import ExpectedKey, answer_check
from vwh.forward import Forwarder, ForwardSettings, failure_of
from vwh.resends import DeliveryTracker
from vwh.saved import discard, name_body, stage_body
from vwh.store import BatchWriter, CapturedRequest, CaptureStore
from vwh.webhook import (
    DEFAULT_TOKEN_HEADER,
    InvalidBody,
    TokenPlace,
    TokenVerdict,
    body_ids,
    find_cookie,
    find_query_value,
    fingerprint,
    is_secret_name,
    kept_ids,
    mask_cookie,
    mask_header_value,
    mask_query,
    mask_secret,
    parse_body,
    token_bytes,
    vendasta_reaction,
    verify_token,
)

DEFAULT_MAX_BODY = 1024 * 1024
FAIL_FIRST_STATUS = 503
LOOP_STATUS = 508  # Loop Detected: a forwarded request came back
MAX_VWH_HOPS = 4  # refuse to forward what already passed through this many listeners
_REJECTED = (TokenVerdict.WRONG.value, TokenVerdict.MISSING.value)

Answer = dict[str, object] | bytes


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
    token_place: TokenPlace | None = None  # None: the header token_header
    expect_response: tuple[ExpectedKey, ...] | None = None  # judge the handler's answers

    @property
    def place(self) -> TokenPlace:
        """Where the token is looked for: --token-header, --token-query or --token-cookie."""
        return self.token_place or TokenPlace("header", self.token_header)

    @property
    def scripted(self) -> bool:
        """True when the sender's answer is set by options, not by a handler."""
        return self.status is not None or self.respond_body is not None


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
        place = self.place = settings.place
        # Only one of these is set: the header name (lower-case), or the query/cookie name.
        self._token_header = place.name.lower() if place.is_header else ""
        self._token_query = place.name if place.kind == "query" else None
        self._token_cookie = place.name.encode("latin-1") if place.kind == "cookie" else None
        self._token = token_bytes(settings.token) if settings.token is not None else None
        self._configured = place.secret_names
        self._secret: dict[str, bool] = {}  # is_secret_name, per header name seen
        self._status = settings.status or 200
        self.via_name = b"vwh-" + secrets.token_hex(4).encode()
        self.forwarder = (
            Forwarder(settings.forward, self._token_header, self.via_name, self._configured)
            if settings.forward
            else None
        )

    async def aclose(self) -> None:
        """Release what the app holds between requests (the handler connections)."""
        if self.forwarder is not None:
            await self.forwarder.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A plain ASGI app: the hot path skips routing and middleware it does not need.

        Nothing escapes it: whatever goes wrong, the request is kept with what
        happened and answered 5xx; only a request on disk gets a 2xx.
        """
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to do
        started = time.perf_counter()
        record: CapturedRequest | None = None
        try:
            record, declared = self._new_record(scope)
            status, payload, headers = await self._handle(scope, receive, record, declared, started)
        except asyncio.CancelledError:
            # The listener is stopping: keep the request and say so on the wire too.
            await send_answer(send, 503, self._stopped(record, started), None)
            raise
        except StoreError as exc:
            # Not kept means not done: a 5xx makes Vendasta resend it later.
            status, payload, headers = 500, json_answer({"error": str(exc)}, None), None
        except Exception as exc:  # a bug must cost one request, not the listener
            status, payload, headers = await self._failed(record, exc)
        await send_answer(send, status, payload, headers)

    def _new_record(self, scope: Scope) -> tuple[CapturedRequest, int]:
        """The request as it came, secrets masked, token checked, and its Content-Length.

        One pass over the headers; -1 when no usable Content-Length was given.
        """
        headers: list[tuple[str, str]] = []
        received: bytes | None = None
        declared = None
        secret = self._secret
        for raw_name, raw_value in scope["headers"]:  # ASGI names are lower-case
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            is_secret = secret.get(name)
            if is_secret is None:
                is_secret = is_secret_name(name, self._configured)
                if len(secret) < 1024:
                    secret[name] = is_secret
            if is_secret:
                if name == self._token_header and received is None:
                    received = raw_value  # compared as bytes, as it came
                if name == "cookie":  # each secret cookie masked, the others readable
                    value = mask_cookie(value, self._configured)
                else:
                    value = mask_secret(value)
            elif name == "content-length":
                declared = value
            headers.append((name, value))
        query = scope["query_string"].decode("latin-1")
        received = self._token_of(received, scope["headers"], scope["query_string"])
        record = CapturedRequest(
            received_at=time.time(),
            method=scope["method"],
            path=scope["path"],
            query=mask_query(query, self._configured) if query else query,
            headers=headers,
            verdict=verify_token(self._token, received).value,
            token_masked=mask_secret(received.decode("utf-8", "replace"))
            if received is not None
            else "",
        )
        size = int(declared) if declared is not None and declared.isdigit() else -1
        return record, size

    async def _handle(
        self, scope: Scope, receive: Receive, record: CapturedRequest, declared: int, started: float
    ) -> tuple[int, bytes, Headers | None]:
        s = self.settings
        body, record.body_size, complete = await read_body(receive, declared, s.max_body)
        record.body = body
        answer: Answer
        out_headers: Headers | None = None  # None: our own JSON answer
        if not complete:
            # The sender closed mid-body: nobody waits for an answer (status 0).
            expected = f" of {declared}" if declared >= 0 else ""
            record.error = f"body cut short: {record.body_size}{expected} bytes"
            record.status, answer = 0, {"error": record.error}
            record.ids = kept_ids(body)
        elif record.method != "POST" and self.forwarder is None:
            record.error = "method not allowed: deliveries are POST"
            record.status, answer = 405, {"error": record.error}
            record.ids = kept_ids(body)
        elif body is None:
            record.error = f"body over {s.max_body} bytes, not kept"
            record.status, answer = 413, {"error": record.error}
        elif self.forwarder is None:
            record.status, answer = await self._deliver(record, body)
        else:
            record.status, answer, out_headers = await self._relay(scope, record, body)
        staged = None
        if s.save_dir is not None and body is not None and complete and not record.rejected:
            staged = stage_body(s.save_dir, record)
            if staged is None:  # not saved: not done either
                record.status, answer, out_headers = 503, {"error": record.error}, None
        record.latency_ms = (time.perf_counter() - started) * 1000
        if self.forwarder is not None:
            record.reaction = vendasta_reaction(record.status or None).value
        try:
            await self.writer.write(record)
        except BaseException:
            if staged is not None:
                discard(staged)
            raise
        if staged is not None:
            name_body(staged, record)
        payload = answer if isinstance(answer, bytes) else json_answer(answer, record.id)
        if out_headers is None and record.status == 405:
            out_headers = [(b"content-type", b"application/json"), (b"allow", b"POST")]
        return record.status, payload, out_headers

    def _stopped(self, record: CapturedRequest | None, started: float) -> bytes:
        """Keep a request cut short by shutdown, marked 503 as its sender gets it.

        Cancelled while its commit was pending, a request is kept as it was decided.
        """
        error = "listener stopped before answering"
        if record is None or record.id is not None or record.latency_ms:
            return json_answer({"error": error}, record.id if record else None)
        record.status, record.error = 503, error
        record.latency_ms = (time.perf_counter() - started) * 1000
        if self.forwarder is not None:
            record.reaction = vendasta_reaction(503).value
        # The task is being cancelled and can no longer await the commit; the loop
        # is stopping, so blocking it briefly costs nothing.
        self.writer.write_now(record)
        return json_answer({"error": error}, record.id)

    async def _failed(
        self, record: CapturedRequest | None, exc: Exception
    ) -> tuple[int, bytes, Headers | None]:
        """An unexpected error: keep the request with what happened, answer 500."""
        error = f"internal error: {type(exc).__name__}: {exc}"[:500]
        if record is not None and record.id is None:
            record.status, record.error = 500, error
            record.reaction = vendasta_reaction(500).value if self.forwarder else None
            try:
                await self.writer.write(record)
            except StoreError as store_exc:
                return 500, json_answer({"error": f"{error}; {store_exc}"}, None), None
            except Exception:  # not even kept: still an answer
                return 500, json_answer({"error": error}, None), None
        return 500, json_answer({"error": error}, record.id if record else None), None

    async def _deliver(self, record: CapturedRequest, body: bytes) -> tuple[int, Answer]:
        """Check token and body, then answer as scripted."""
        rejection = self._check(record, body)
        if rejection is not None:
            return rejection
        if self.settings.delay > 0:
            await asyncio.sleep(self.settings.delay)
        return self._scripted(record) or (self._status, RECEIVED)

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
            return s.reject_status, {"error": f"{record.verdict} {self.place.describe()}"}
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
            return s.status, RECEIVED
        return None

    def _loop(self, scope: Scope) -> str | None:
        """Why a request must not be forwarded again (RFC 9110 7.6.3 Via), or None."""
        hops = 0
        for name, value in scope["headers"]:
            if name != b"via":
                continue
            for entry in value.split(b","):
                received_by = entry.split()[1:2]
                if received_by and received_by[0].startswith(b"vwh-"):
                    if received_by[0] == self.via_name:
                        return "forward loop: this request already passed through this listener"
                    hops += 1
        if hops >= MAX_VWH_HOPS:
            return f"forward loop: this request already passed through {hops} vwh listeners"
        return None

    async def _relay(
        self, scope: Scope, record: CapturedRequest, body: bytes
    ) -> tuple[int, Answer, Headers | None]:
        """Check, pass on to the handler, and pick the sender's answer.

        Rejected requests stay here unless --forward-all; then the handler's own
        rejection goes back. For a delivery, scripted options (--status, --respond,
        --fail-first) decide the sender's answer, though the handler is still called;
        --delay is the least time before the sender gets it. A request that already
        came through this listener (or through MAX_VWH_HOPS of them) is never
        passed on: 508, so listeners forwarding to each other cannot loop.
        """
        forwarder = self.forwarder
        assert forwarder is not None
        s = self.settings
        loop = self._loop(scope)
        if loop is not None:
            record.ids = kept_ids(body)
            record.error = loop
            return LOOP_STATUS, {"error": loop}, None
        if record.method != "POST":
            record.error = "method not allowed: deliveries are POST"
            record.ids = kept_ids(body)
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
        if reply is not None and s.expect_response is not None:
            record.answer_check = answer_check(s.expect_response, reply.status, reply.body)
        if reply is None:
            failure = failure_of(record.forward)
            assert failure is not None
            return failure.gateway_status, {"error": record.forward.error}, None
        return reply.status, reply.body, reply.headers

    def _token_of(
        self, in_header: bytes | None, fields: Iterable[tuple[bytes, bytes]], query: bytes
    ) -> bytes | None:
        """The token as it came, from the listener's one place (`in_header`: the token
        header's value, already found while reading the headers)."""
        if self._token_query is not None:
            return find_query_value(query, self._token_query)
        if self._token_cookie is not None:
            return find_cookie(fields, self._token_cookie)
        return in_header

    async def keep_refused(self, raw: bytes, received: int, status: int, error: str) -> None:
        """Keep a request the HTTP layer refused before it reached the app (malformed,
        head too large, too slow; see vwh.http_guard): its request line and header
        fields as far as they go, its first bytes as the body, secrets masked."""
        from vwh.http_guard import describe_refused

        head = describe_refused(
            raw,
            lambda name, value: mask_header_value(name, value, self._configured),
            self._token_header,
        )
        token = self._token_of(head.token, head.fields, head.query.encode("latin-1"))
        query = mask_query(head.query, self._configured) if head.query else ""
        raw = head.raw  # the request line carries the query: mask it there too
        if query != head.query:
            raw = raw.replace(head.query.encode("latin-1"), query.encode(), 1)
        record = CapturedRequest(
            received_at=time.time(),
            method=head.method,
            path=head.path,
            query=query,
            headers=head.headers,
            body=raw,
            body_size=received,
            ids=kept_ids(raw),
            verdict=verify_token(self._token, token).value,
            token_masked=mask_secret(token.decode("utf-8", "replace")) if token is not None else "",
            error=error,
            status=status,
        )
        with contextlib.suppress(StoreError):  # already answered: nothing else to do
            await self.writer.write(record)


def create_app(
    settings: ReceiverSettings,
    writer: BatchWriter,
    store: CaptureStore | None = None,
) -> Receiver:
    """Build the listener's ASGI app; the CLI alone runs it under uvicorn.

    When it forwards, await `app.aclose()` in the server's loop once it has stopped.
    """
    return Receiver(settings, writer, DeliveryTracker(store))
