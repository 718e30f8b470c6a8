"""How a fetched JSON:API record looks: pure functions, no I/O.

`record_view` returns a Rich renderable for terminals (fits 80 columns: long values
fold); `plain_lines` returns the same content as lines for pipes. API text is
untrusted: every name and value is made inert (`vwh.sanitize`) where it is read, and
goes into `Text` objects, never through markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from vwh.sanitize import inert, json_line

STATUS_STYLES = {
    "fulfilled": "green",
    "processing": "cyan",
    "on": "green",
    "submitted": "cyan",
    "declined": "red",
    "error": "red",
    "off": "dim",
    "archived": "dim",
}


def money(cents: Any, currency: str | None) -> str:
    """An amount in cents (as the API gives it) with its currency: `49.99 USD`."""
    if not isinstance(cents, int | float) or isinstance(cents, bool):
        return scalar(cents)
    text = f"{cents / 100:,.2f}"
    return f"{text} {currency}" if currency else text


def scalar(value: Any) -> str:
    """A leaf value as inert text: strings as they are, the rest as JSON (true, null, 3)."""
    if isinstance(value, str):
        return inert(value)
    return json_line(value)


def name(value: Any) -> str:
    """A key, type or id from the API, as inert text."""
    return inert(str(value))


def status_of(doc: Mapping[str, Any]) -> str | None:
    attrs = _data(doc).get("attributes") or {}
    value = attrs.get("statusCode", attrs.get("status"))
    return name(value) if value not in (None, "") else None


def title(doc: Mapping[str, Any]) -> str:
    data = _data(doc)
    text = f"{name(data.get('type', '?'))} {name(data.get('id', '?'))}"
    status = status_of(doc)
    return f"{text}  [{status}]" if status else text


def line_item_row(item: Mapping[str, Any], currency: str | None) -> list[str]:
    """SKU, quantity, unit price and billing interval of one line item."""
    sku = scalar(item.get("sku", ""))
    if item.get("isPackage"):
        sku += " (package)"
    elif item.get("containedInPackage"):
        sku += f" (in {scalar(item['containedInPackage'])})"
    return [
        sku,
        scalar(item.get("quantity", 1)),
        money(item.get("amount"), currency),
        scalar(item.get("intervalCode") or ""),
    ]


def relationship_ids(rel: Any) -> list[str]:
    """`type id` for each record a relationship points at."""
    data = rel.get("data") if isinstance(rel, Mapping) else None
    items = data if isinstance(data, list) else [data] if data else []
    return [
        f"{name(i.get('type', '?'))} {name(i.get('id', '?'))}"
        for i in items
        if isinstance(i, Mapping)
    ]


def plain_lines(doc: Mapping[str, Any]) -> list[str]:
    """The record as readable, inert lines, for pipes and logs."""
    data = _data(doc)
    attrs = data.get("attributes") or {}
    currency = attrs.get("currencyCode")
    lines = [title(doc)]
    for key, value in attrs.items():
        if key == "lineItems" and isinstance(value, list):
            lines.append(f"  {key}:")
            for item in value:
                if isinstance(item, Mapping):
                    sku, qty, price, interval = line_item_row(item, currency)
                    lines.append(f"    - {sku}  x{qty}  {price}  {interval}".rstrip())
        elif isinstance(value, Mapping):
            lines.append(f"  {key}:")
            lines.extend(f"    {k}: {_inline(v)}" for k, v in value.items())
        elif isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
            lines.append(f"  {key}:")
            lines.extend(f"    - {_inline(v)}" for v in value)
        else:
            lines.append(f"  {key}: {_inline(value)}")
    rels = data.get("relationships") or {}
    if rels:
        lines.append("relationships:")
        for rel_name, rel in rels.items():
            lines.append(f"  {rel_name}: {', '.join(relationship_ids(rel)) or '-'}")
    return [inert(line) for line in lines]  # keys too: each piece of a line is inert


def record_view(doc: Mapping[str, Any]) -> RenderableType:
    """The record for a terminal: title, attributes table, relationships table."""
    data = _data(doc)
    attrs = data.get("attributes") or {}
    currency = attrs.get("currencyCode")
    head = Text.assemble(
        (name(data.get("type", "?")), "bold"), " ", (name(data.get("id", "?")), "bold cyan")
    )
    status = status_of(doc)
    if status:
        head.append("  ")
        head.append(status, style=STATUS_STYLES.get(status, "yellow"))
    parts: list[RenderableType] = [head, Text("")]
    if attrs:
        table = _kv_table()
        for key, value in attrs.items():
            table.add_row(Text(name(key)), _value_view(key, value, currency))
        parts.append(table)
    rels = data.get("relationships") or {}
    if rels:
        table = _kv_table()
        for rel_name, rel in rels.items():
            table.add_row(Text(name(rel_name)), Text("\n".join(relationship_ids(rel)) or "-"))
        parts.extend([Text(""), Text("relationships", style="bold underline"), table])
    return Group(*parts)


def _kv_table() -> Table:
    """Two columns, key and value; keys never wrap, long values fold to fit the width."""
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True, max_width=26)
    table.add_column(overflow="fold")
    return table


def _value_view(key: str, value: Any, currency: str | None) -> RenderableType:
    if key == "lineItems" and isinstance(value, list):
        items = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
        items.add_column("SKU", overflow="fold", ratio=1)
        items.add_column("Qty", justify="right", no_wrap=True)
        items.add_column("Unit price", justify="right", no_wrap=True)
        items.add_column("Billing", no_wrap=True)
        for item in value:
            if isinstance(item, Mapping):
                items.add_row(*(Text(c) for c in line_item_row(item, currency)))
        return items
    if isinstance(value, Mapping):
        return Text("\n".join(f"{name(k)}: {_inline(v)}" for k, v in value.items()))
    if isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
        return Text("\n".join(_inline(v) for v in value))
    return Text(_inline(value))


def _inline(value: Any) -> str:
    """A value on one line: lists joined with commas, objects as `k=v` pairs."""
    if isinstance(value, Mapping):
        return ", ".join(f"{name(k)}={_inline(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_inline(v) for v in value)
    return scalar(value)


def _data(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    data = doc.get("data")
    return data if isinstance(data, Mapping) else {}
