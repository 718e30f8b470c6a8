"""Realistic webhook bodies with fresh ids in Vendasta's formats."""

from __future__ import annotations

import json
import random
import re
import string
import uuid
from dataclasses import dataclass
from typing import Any

from vwh.errors import UsageError

KINDS = ("order", "account", "user")
# Send a webhook (the newer step, the default) sends no automationId; Trigger a webhook does.
STEPS = ("send", "trigger")
_ALNUM = string.ascii_uppercase + string.digits
_PARTNER = re.compile(r"[A-Z0-9]{2,6}")
_ACCOUNT = re.compile(r"AG-[A-Z0-9]+")


@dataclass(frozen=True)
class SampleOptions:
    """Values to pin; the rest are drawn at random (from `seed`, when given)."""

    partner: str | None = None
    market: str = "default"
    account: str | None = None
    seed: int | None = None
    step: str = "send"  # one of STEPS
    fields: tuple[tuple[str, Any], ...] = ()  # flat custom fields the partner configured

    def checked(self) -> SampleOptions:
        """These options, once the pinned ids are in Vendasta's shapes (else UsageError).

        Not done on creation: `vwh check` pins whatever account a user's own body has.
        """
        if self.partner is not None and not _PARTNER.fullmatch(self.partner):
            raise UsageError(
                f"bad partner id {self.partner!r}: expected 2-6 upper-case letters or digits"
            )
        if self.account is not None and not _ACCOUNT.fullmatch(self.account):
            raise UsageError(
                f"bad account id {self.account!r}: expected AG- and upper-case letters or digits"
            )
        if not self.market.strip():
            raise UsageError("bad market id: it cannot be empty")
        if self.step not in STEPS:
            raise UsageError(
                f"unknown step {self.step!r}: choose send (Send a webhook) or trigger"
                " (Trigger a webhook)"
            )
        for key, value in self.fields:
            if isinstance(value, dict | list):
                raise UsageError(f"field {key!r} would nest: the step's body is one flat object")
        return self


def _code(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def sample_body(kind: str, options: SampleOptions | None = None) -> dict[str, Any]:
    """A body like the one Vendasta sends for an order, account or user automation."""
    if kind not in KINDS:
        raise UsageError(f"unknown sample kind {kind!r}: choose one of {', '.join(KINDS)}")
    opts = options or SampleOptions()
    rng = random.Random(opts.seed) if opts.seed is not None else random.SystemRandom()
    account = opts.account or f"AG-{_code(rng, 10)}"
    body: dict[str, Any] = {
        "accountId": account,
        "automationId": f"Automation-{_uuid(rng)}",
        "entityId": account,
        "marketId": opts.market,
        "partnerId": opts.partner or _code(rng, 4),
    }
    if kind == "order":
        order = f"{account}:ORD-{_code(rng, 10)}"
        body["entityId"] = body["orderId"] = order
    elif kind == "user":
        user = f"U-{_uuid(rng)}"
        body["entityId"] = body["userId"] = user
    if opts.step != "trigger":
        del body["automationId"]  # the Send a webhook step's example body has none
    return dict(sorted(body.items())) | dict(opts.fields)


def sample_bytes(kind: str, options: SampleOptions | None = None) -> bytes:
    """The sample as the bytes a file holds (pretty, with a final newline)."""
    return (json.dumps(sample_body(kind, options), indent=2) + "\n").encode()
