"""Replay from the page: a kept request (or its edited body) sent with Vendasta's
resend rules, through the same delivery code as `vwh replay`.

The default target is the developer's handler when the listener forwards, else
the listener itself; the token is the listener's own, since the kept one is masked,
and goes where the listener looks for it (a header, a query parameter or a cookie).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vwh.delivery import OutgoingRequest, ResendPolicy, check_url, deliver
from vwh.errors import UsageError
from vwh.inspector.settings import InspectorSettings
from vwh.outbound import OutboundClient
from vwh.payloads import Payload
from vwh.replay import Target, url_for
from vwh.store import CapturedRequest
from vwh.webhook import InvalidBody, parse_body

MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class ReplayRequest:
    """The options a page or script posts; every field may be left out."""

    target: str | None = None
    body: str | None = None  # an edited body, sent as typed once it parses
    attempts: int = 3
    backoff: float = 1.0
    timeout: float = 60.0

    @classmethod
    def from_json(cls, raw: bytes) -> ReplayRequest:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise UsageError("the replay options are not JSON") from None
        if not isinstance(data, dict):
            raise UsageError("the replay options must be a JSON object")
        target, body = data.get("target") or None, data.get("body")
        if target is not None and not isinstance(target, str):
            raise UsageError("target must be a URL")
        if body is not None and not isinstance(body, str):
            raise UsageError("body must be the body's text")
        attempts = data.get("attempts", 3)
        if not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
            raise UsageError(f"attempts must be from 1 to {MAX_ATTEMPTS}")
        backoff, timeout = data.get("backoff", 1.0), data.get("timeout", 60.0)
        for name, value in (("backoff", backoff), ("timeout", timeout)):
            if not isinstance(value, (int, float)) or not 0 <= value <= 600:
                raise UsageError(f"{name} must be a number of seconds from 0 to 600")
        return cls(target, body, attempts, float(backoff), float(timeout) or 60.0)


def replay_target(s: InspectorSettings, record: CapturedRequest) -> str:
    """Where a replay of `record` goes unless another URL is typed in."""
    if record.forward is not None:
        return record.forward.url
    base = s.forward.url if s.forward is not None else s.listener_url or s.default_target
    return url_for(base, record.path, record.query)


def outgoing(
    s: InspectorSettings,
    record: CapturedRequest,
    url: str,
    *,
    token: str | None,
    body: bytes | None = None,
) -> OutgoingRequest:
    """The request a replay sends: the kept (or given) body and method, the token."""
    payload = Payload(
        f"#{record.id}", body if body is not None else record.body or b"", record.method
    )
    place = s.place
    target = Target(url, token, s.token_header, token_place=None if place.is_header else place)
    return target.request_for(payload)


async def replay_record(
    s: InspectorSettings, record: CapturedRequest, options: ReplayRequest
) -> dict[str, Any]:
    """Deliver once with the resend rules; the outcome with every attempt's answer."""
    url = check_url(options.target or replay_target(s, record), "target")
    body = None
    if options.body is not None:
        body = options.body.encode("utf-8", "surrogatepass")
        try:
            parse_body(body)
        except InvalidBody as exc:
            raise UsageError(str(exc)) from None
    elif record.body is None:
        raise UsageError(f"request #{record.id}: its body ({record.body_size} bytes) was not kept")
    request = outgoing(s, record, url, token=s.token, body=body)
    policy = ResendPolicy(
        attempts=options.attempts, backoff=options.backoff, timeout=options.timeout
    )
    async with OutboundClient(connections=1) as client:
        outcome = await deliver(client.send, request, policy)
    data = outcome.to_json()
    data["attempts"] = [
        {
            **a.to_json(),
            "reaction": a.reaction.value,
            "answer": a.body.decode("utf-8", "replace") if a.body else None,
        }
        for a in outcome.attempts
    ]
    return data
