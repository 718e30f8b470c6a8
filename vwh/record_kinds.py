"""The record kinds vwh can fetch from the Platform API, and how users name them.

A kind is its path, its JSON:API type and the scopes the API accepts for it; a user
names one by word (order, orders, salesAccounts, ...), by an id's shape, or a webhook
body names one in a field (orderId, accountId, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from vwh.errors import UsageError
from vwh.webhook import id_kind


@dataclass(frozen=True)
class Kind:
    """A record kind vwh can fetch: its path, and the scopes the API accepts for it."""

    name: str  # what users type: order, account, ...
    label: str  # what messages say
    collection: str  # the path segment, also the JSON:API type
    scopes: tuple[str, ...]  # accepted (any one); the first is the one vwh asks for
    body_field: str | None = None  # the webhook body field that names one

    def path(self, record_id: str) -> str:
        """The record's path; ':' stays literal (an order id's colon is part of the segment)."""
        return f"/{self.collection}/{quote(record_id, safe=':@!$&()*+,;=')}"


# Scopes from Vendasta's OpenAPI spec (the spec wins over the product guide).
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("order", "order", "orders", ("order:read", "order"), "orderId"),
        Kind("account", "sales account", "salesAccounts", ("sales.account",), "accountId"),
        Kind("business", "business location", "businessLocations", ("business:read", "business")),
        Kind(
            "user",
            "user",
            "users",
            (
                "user.profile:read",
                "user.admin",
                "user.contact:read",
                "user.permission:read",
                "user.permission",
                "self.user.admin",
                "self.user.contact:read",
                "openid",
                "profile",
                "email",
                "phone",
                "address",
            ),
            "userId",
        ),
        Kind("automation", "automation", "automations", ("automation:read",), "automationId"),
    )
}
_ALIASES = {
    **{k.name: k for k in KINDS.values()},
    **{k.collection.lower(): k for k in KINDS.values()},
    **{k.name + "s": k for k in KINDS.values()},
    "sales-account": KINDS["account"],
    "location": KINDS["business"],
    "business-location": KINDS["business"],
}


def kind_named(name: str) -> Kind | None:
    """The kind a user typed (order, orders, salesAccounts, ...), or None."""
    return _ALIASES.get(name.strip().lower())


def infer_kind(record_id: str) -> Kind | None:
    """The kind an id's shape implies (`AG-` alone is taken as a sales account)."""
    name = id_kind(record_id)
    return KINDS[name] if name else None


def records_in_body(body: Mapping[str, Any]) -> list[tuple[Kind, str]]:
    """The records a webhook body names (orderId, accountId, userId, automationId)."""
    found: list[tuple[Kind, str]] = []
    for kind in KINDS.values():
        value = body.get(kind.body_field) if kind.body_field else None
        if isinstance(value, str | int) and str(value) and (kind, str(value)) not in found:
            found.append((kind, str(value)))
    return found


def targets_from_args(args: Sequence[str]) -> list[tuple[Kind, str, bool]]:
    """`[KIND] ID...` as (kind, id, guessed); guessed means the kind came from the id."""
    if len(args) == 1 and kind_named(args[0]):
        raise UsageError(f"which {args[0]}? give its id: `vwh fetch {args[0]} ID`")
    kind = kind_named(args[0]) if len(args) > 1 else None
    targets = []
    for record_id in args[1:] if kind else args:
        guessed = kind or infer_kind(record_id)
        if guessed is None:
            raise UsageError(
                f"cannot tell what kind of record {record_id!r} is: say which,"
                f" e.g. `vwh fetch order ID` ({', '.join(KINDS)})"
            )
        targets.append((guessed, record_id, kind is None))
    return targets
