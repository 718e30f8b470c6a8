"""Realistic webhook bodies with fresh ids in Vendasta's formats."""

from __future__ import annotations

import json
import random
import re
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vwh.errors import UsageError, VwhError

if TYPE_CHECKING:
    from vwh.api import VendastaClient

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


# ---- samples from real records ----------------------------------------------------------

_FROM_SHAPES = {"order": "order", "account": "account", "user": "user"}  # kind -> id_kind


@dataclass
class RealSample:
    """A sample whose fields come from real records where the API gave them."""

    body: dict[str, Any]
    real: list[str]  # the fields the API gave
    notes: list[str] = field(default_factory=list)  # records that could not be read, and why

    @property
    def sampled(self) -> list[str]:
        return [k for k in self.body if k not in self.real]

    def meta(self) -> dict[str, Any]:
        return {"body": self.body, "real": self.real, "sample": self.sampled, "notes": self.notes}


def _related_id(document: Mapping[str, Any], name: str) -> str | None:
    """The id a to-one (or the first of a to-many) relationship points at."""
    data = document.get("data")
    rels = data.get("relationships") if isinstance(data, Mapping) else None
    rel = rels.get(name) if isinstance(rels, Mapping) else None
    target = rel.get("data") if isinstance(rel, Mapping) else None
    if isinstance(target, list):
        target = target[0] if target else None
    value = target.get("id") if isinstance(target, Mapping) else None
    return str(value) if isinstance(value, str | int) and str(value) else None


def body_from_records(
    kind: str,
    record_id: str,
    *,
    account: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    order: Mapping[str, Any] | None = None,
    options: SampleOptions | None = None,
) -> RealSample:
    """The body Vendasta would send for these records; the rest from the sample.

    partnerId is the account's business partner (a user's own partner too), marketId
    the account's market; accountId is the order's business location, or a user's
    first one. A field no record gives keeps the sample's value (`options`, or drawn).
    """
    found: dict[str, str] = {"entityId": record_id}
    if kind == "order":
        found["orderId"] = record_id
        found["accountId"] = (order and _related_id(order, "businessLocation")) or (
            record_id.split(":", 1)[0]
        )
    elif kind == "account":
        found["accountId"] = record_id
    elif kind == "user":
        found["userId"] = record_id
        if user is not None:
            for name, value in (
                ("partnerId", _related_id(user, "partner")),
                ("accountId", _related_id(user, "businessLocations")),
            ):
                if value:
                    found[name] = value
    if account is not None:
        partner = _related_id(account, "businessPartner")
        market = _related_id(account, "businessMarket")
        if partner:
            found["partnerId"] = partner
        if market:
            found["marketId"] = market
    body = sample_body(kind, options)
    body.update(found)
    return RealSample(dict(sorted(body.items())), sorted(found))


async def sample_from_api(
    api: VendastaClient, kind: str, record_id: str, options: SampleOptions | None = None
) -> RealSample:
    """Fetch the record (its errors are the caller's), then its account for partner/market.

    The account is a second lookup that may be refused (another scope): then partnerId
    and marketId keep the sample's values and a note says why.
    """
    from vwh.record_kinds import KINDS as API_KINDS
    from vwh.webhook import id_kind

    if kind not in _FROM_SHAPES:
        raise UsageError(f"unknown sample kind {kind!r}: choose one of {', '.join(KINDS)}")
    if id_kind(record_id) != _FROM_SHAPES[kind]:
        shape = {
            "order": "an order id (AG-...:ORD-...)",
            "account": "an account id (AG-...)",
            "user": "a user id (U-...)",
        }[kind]
        raise UsageError(f"--from {record_id!r} is not {shape}")
    main = await api.fetch(API_KINDS[kind], record_id)
    docs: dict[str, Mapping[str, Any]] = {kind: main.document}
    notes: list[str] = []
    account_id = None
    if kind == "order":
        account_id = _related_id(main.document, "businessLocation") or record_id.split(":")[0]
    elif kind == "user":
        account_id = _related_id(main.document, "businessLocations")
    if kind != "account" and account_id:
        try:
            docs["account"] = (await api.fetch(API_KINDS["account"], account_id)).document
        except VwhError as exc:
            notes.append(f"sales account {account_id}: {exc}")
    sample = body_from_records(
        kind,
        record_id,
        account=docs.get("account"),
        user=docs.get("user"),
        order=docs.get("order"),
        options=options,
    )
    sample.notes = notes
    return sample
