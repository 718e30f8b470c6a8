"""What `vwh listen`'s options ask of the receiver, in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vwh.expect import ExpectedKey
from vwh.forward import ForwardSettings
from vwh.webhook import DEFAULT_TOKEN_HEADER, TokenPlace

DEFAULT_MAX_BODY = 1024 * 1024


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
