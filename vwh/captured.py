"""What the listener keeps of one request: the request, its answer, and what the
developer's handler answered when it was forwarded (secrets already masked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ForwardResult:
    """What the developer's own handler answered when the listener forwarded to it."""

    url: str
    status: int | None = None
    latency_ms: float | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    error: str | None = None


@dataclass(slots=True)
class CapturedRequest:
    """One request as the listener received and answered it (secrets already masked)."""

    received_at: float
    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None  # None when the body was too large to keep
    body_size: int = 0
    verdict: str = "not checked"
    token_masked: str = ""
    error: str | None = None
    status: int = 200
    latency_ms: float = 0.0
    fingerprint: int | None = None
    attempt: int | None = None  # 1 for a first delivery, 2+ for resends of the same body
    first_seen_at: float | None = None
    ids: dict[str, str] = field(default_factory=dict)
    forward: ForwardResult | None = None
    reaction: str | None = None
    id: int | None = None
    answer_check: str | None = None  # --expect-response: what later steps would get

    @property
    def rejected(self) -> bool:
        """Refused by the token or body checks (a scripted status is not a rejection)."""
        return self.verdict in ("wrong", "missing") or self.error is not None

    @property
    def is_resend(self) -> bool:
        return self.attempt is not None and self.attempt > 1

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the body as text when it is UTF-8, else as latin-1 escapes."""
        data: dict[str, Any] = {
            "id": self.id,
            "received_at": self.received_at,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [list(h) for h in self.headers],
            "body": _body_text(self.body),
            "body_size": self.body_size,
            "verdict": self.verdict,
            "token": self.token_masked,
            "error": self.error,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "attempt": self.attempt,
            "first_seen_at": self.first_seen_at,
            "ids": self.ids,
            "reaction": self.reaction,
        }
        if self.answer_check is not None:
            data["answer_check"] = self.answer_check
        if self.forward is not None:
            data["forward"] = {
                "url": self.forward.url,
                "status": self.forward.status,
                "latency_ms": self.forward.latency_ms,
                "headers": [list(h) for h in self.forward.headers],
                "body": _body_text(self.forward.body),
                "error": self.forward.error,
            }
        return data


def _body_text(body: bytes | None) -> str | None:
    if body is None:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")
