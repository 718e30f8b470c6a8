"""The listener's rules: verify, keep, then answer as scripted.

Order of work for each request: check the token in constant time (vwh.intake),
parse the body, decide the answer (scripted status, fail-first, delay), commit the
record to the store, and only then answer. A request that got an answer is
therefore never lost. `vwh listen` hands whole requests to `Receiver.take` from its
own protocol (vwh.http_exchange); the receiver is a plain ASGI app too.

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
from collections.abc import Coroutine
from typing import Any

from starlette.types import Receive, Scope, Send

from vwh.asgi_answer import RECEIVED, Headers, Reply, awaited_reply, json_answer, serve_asgi
from vwh.errors import StoreError
from vwh.expect import answer_check
from vwh.forward import LOOP_STATUS, Forwarder, failure_of, forward_loop
from vwh.intake import Intake, Request
from vwh.receiver_settings import ReceiverSettings
from vwh.resends import DeliveryTracker
from vwh.saved import discard, name_body, stage_body
from vwh.store import BatchWriter, CapturedRequest, CaptureStore
from vwh.webhook import (
    InvalidBody,
    TokenVerdict,
    body_ids,
    fingerprint,
    kept_ids,
    parse_body,
    vendasta_reaction,
)

FAIL_FIRST_STATUS = 503
_REJECTED = (TokenVerdict.WRONG.value, TokenVerdict.MISSING.value)

_STOPPED = "listener stopped before answering"

Answer = dict[str, object] | bytes
Decided = tuple[int, Answer, Headers | None]  # status, answer, headers (None: our JSON)


class Receiver:
    """State behind the app: settings, the writer, the resend tracker, the forwarder."""

    def __init__(
        self,
        settings: ReceiverSettings,
        writer: BatchWriter,
        tracker: DeliveryTracker,
    ) -> None:
        self.settings = settings
        self.max_body = settings.max_body  # read by the protocol, which buffers the body
        self.writer = writer
        self.tracker = tracker
        intake = self.intake = Intake(settings)
        self.place = intake.place
        self._status = settings.status or 200
        self.via_name = b"vwh-" + secrets.token_hex(4).encode()
        self.forwarder = (
            Forwarder(settings.forward, intake.token_header, self.via_name, intake.configured)
            if settings.forward
            else None
        )

    async def aclose(self) -> None:
        """Release what the app holds between requests (the handler connections)."""
        if self.forwarder is not None:
            await self.forwarder.aclose()

    def take(
        self,
        scope: Request,
        body: bytes | None,
        size: int,
        complete: bool,
        reply: Reply,
        *,
        stopped: bool = False,
        stopping: bool = False,
    ) -> Coroutine[Any, Any, None] | None:
        """One request as the listener's protocol read it (vwh.http_exchange).

        `reply(status, payload, headers)` sends the answer once the request is on
        disk (status 0: nobody waits, the sender went away mid-body). Decided here,
        the request is committed and answered from the commit's callback, without a
        task; when the answer must wait (forwarding, --delay) the coroutine to run as a
        task comes back instead, unless the listener is `stopping`: then, as when it
        `stopped` before the body came, the request is kept and answered 503 at once.
        Nothing escapes: whatever goes wrong, the request is kept with what happened
        and answered 5xx; only a request on disk gets a 2xx.
        """
        started = time.perf_counter()
        record: CapturedRequest | None = None
        try:
            record, declared = self.intake.record(scope)
            record.body, record.body_size = body, size
            if stopped:
                reply(503, self._stopped(record, started), None)
                return None
            decided = self._decide(record, body, complete, declared)
            if decided is None and stopping:  # no wait may start now: it would be cut off
                reply(503, self._stopped(record, started), None)
            elif decided is None:
                return self._take_later(scope, record, started, reply)
            else:
                self._keep(record, decided, started, reply)
        except Exception as exc:  # a bug must cost one request, not the listener
            self._failed(record, exc, reply)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same receiver as a plain ASGI app, for ASGI servers and test transports;
        the listener's own protocol reads the body itself and calls `take`."""
        if scope["type"] == "http":  # lifespan and websockets: nothing to do
            await serve_asgi(self.take, self.max_body, _STOPPED, scope, receive, send)

    def _decide(
        self, record: CapturedRequest, body: bytes | None, complete: bool, declared: int
    ) -> Decided | None:
        """The answer the rules give at once, or None when it must wait (forward, delay)."""
        s = self.settings
        if not complete:
            # The sender closed mid-body: nobody waits for an answer (status 0).
            expected = f" of {declared}" if declared >= 0 else ""
            record.error = f"body cut short: {record.body_size}{expected} bytes"
            record.ids = kept_ids(body)
            return 0, {"error": record.error}, None
        if record.method != "POST" and self.forwarder is None:
            record.error = "method not allowed: deliveries are POST"
            record.ids = kept_ids(body)
            return 405, {"error": record.error}, None
        if body is None:
            record.error = f"body over {s.max_body} bytes, not kept"
            return 413, {"error": record.error}, None
        if self.forwarder is not None:
            return None
        rejection = self._check(record, body)
        if rejection is not None:
            return rejection[0], rejection[1], None
        if s.delay > 0:
            return None
        status, answer = self._scripted(record) or (self._status, RECEIVED)
        return status, answer, None

    async def _take_later(
        self, scope: Request, record: CapturedRequest, started: float, reply: Reply
    ) -> None:
        """A request whose answer waits: for the handler, or for --delay."""
        try:
            decided: Decided
            if self.forwarder is None:  # checked and counted already: only the delay is left
                await asyncio.sleep(self.settings.delay)
                status, answer = self._scripted(record) or (self._status, RECEIVED)
                decided = status, answer, None
            else:
                assert record.body is not None
                decided = await self._relay(scope, record, record.body)
            future, keep_reply = awaited_reply()
            self._keep(record, decided, started, keep_reply)
            status, payload, headers = await future
        except asyncio.CancelledError:
            # The listener is stopping: keep the request and say so on the wire too.
            reply(503, self._stopped(record, started), None)
            raise
        except Exception as exc:
            self._failed(record, exc, reply)
            return
        reply(status, payload, headers)

    def _keep(
        self, record: CapturedRequest, decided: Decided, started: float, reply: Reply
    ) -> None:
        """Commit the request as decided, then answer from the commit's callback: a body
        to --save is written first, so a 2xx means both happened."""
        status, answer, headers = decided
        s = self.settings
        record.status = status
        staged = None
        if s.save_dir is not None and record.body is not None and not record.rejected:
            staged = stage_body(s.save_dir, record)
            if staged is None:  # not saved: not done either
                record.status, answer, headers = 503, {"error": record.error}, None
        record.latency_ms = (time.perf_counter() - started) * 1000
        if self.forwarder is not None:
            record.reaction = vendasta_reaction(record.status or None).value

        def committed(error: StoreError | None) -> None:
            if error is not None:  # not kept means not done: a 5xx makes Vendasta resend it
                if staged is not None:
                    discard(staged)
                reply(500, json_answer({"error": str(error)}, None), None)
                return
            if staged is not None:
                name_body(staged, record)
            payload = answer if isinstance(answer, bytes) else json_answer(answer, record.id)
            if headers is None and record.status == 405:
                reply(405, payload, [(b"content-type", b"application/json"), (b"allow", b"POST")])
            else:
                reply(record.status, payload, headers)

        self.writer.submit(record, committed)

    def _stopped(self, record: CapturedRequest | None, started: float) -> bytes:
        """Keep a request cut short by shutdown, marked 503 as its sender gets it.

        Cancelled while its commit was pending, a request is kept as it was decided.
        """
        if record is None or record.id is not None or record.latency_ms:
            return json_answer({"error": _STOPPED}, record.id if record else None)
        record.status, record.error = 503, _STOPPED
        record.latency_ms = (time.perf_counter() - started) * 1000
        if self.forwarder is not None:
            record.reaction = vendasta_reaction(503).value
        # The task is being cancelled and can no longer await the commit; the loop
        # is stopping, so blocking it briefly costs nothing.
        self.writer.write_now(record)
        return json_answer({"error": _STOPPED}, record.id)

    def _failed(self, record: CapturedRequest | None, exc: Exception, reply: Reply) -> None:
        """An unexpected error: keep the request with what happened, answer 500."""
        error = f"internal error: {type(exc).__name__}: {exc}"[:500]
        if record is None or record.id is not None or record.latency_ms:
            # Not built, or already on its way to the store: only the answer is left.
            reply(500, json_answer({"error": error}, record.id if record else None), None)
            return
        record.status, record.error = 500, error
        record.reaction = vendasta_reaction(500).value if self.forwarder else None

        def committed(store_error: StoreError | None) -> None:
            said = f"{error}; {store_error}" if store_error is not None else error
            reply(500, json_answer({"error": said}, record.id), None)

        try:
            self.writer.submit(record, committed)
        except Exception:  # not even kept: still an answer
            reply(500, json_answer({"error": error}, None), None)

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

    async def _relay(self, scope: Request, record: CapturedRequest, body: bytes) -> Decided:
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
        loop = forward_loop(scope["headers"], self.via_name)
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

    async def keep_refused(self, raw: bytes, received: int, status: int, error: str) -> None:
        """Keep a request the HTTP layer refused before it reached the app (malformed,
        head too large, too slow; see vwh.http_guard), masked as any other."""
        record = self.intake.refused(raw, received, status, error)
        with contextlib.suppress(StoreError):  # already answered: nothing else to do
            await self.writer.write(record)


def create_app(
    settings: ReceiverSettings,
    writer: BatchWriter,
    store: CaptureStore | None = None,
) -> Receiver:
    """Build the listener's receiver; the CLI alone serves it (vwh.server.make_server).

    When it forwards, await `app.aclose()` in the server's loop once it has stopped.
    """
    return Receiver(settings, writer, DeliveryTracker(store))
