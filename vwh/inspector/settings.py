"""What an inspector serves: which store, beside which listener, replaying how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vwh.forward import ForwardSettings
from vwh.inspector.broadcast import Broadcaster
from vwh.replay import DEFAULT_TARGET
from vwh.webhook import DEFAULT_TOKEN_HEADER, TokenPlace


@dataclass(frozen=True)
class InspectorSettings:
    """`listener_url` is None for `vwh inspect` (a store alone: no live stream)."""

    store_path: Path
    listener_url: str | None = None
    default_target: str = DEFAULT_TARGET  # replays go here without a listener or handler
    token: str | None = None  # the token replays send (the kept one is masked)
    token_header: str = DEFAULT_TOKEN_HEADER
    forward: ForwardSettings | None = None
    broadcaster: Broadcaster = field(default_factory=Broadcaster)
    token_place: TokenPlace | None = None  # the listener's --token-query/--token-cookie

    @property
    def place(self) -> TokenPlace:
        """Where replays put the token: where the listener looks for it."""
        return self.token_place or TokenPlace("header", self.token_header)

    @property
    def live(self) -> bool:
        return self.listener_url is not None
