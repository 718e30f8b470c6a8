"""Flat body fields typed on the command line: `KEY=VALUE` and `KEY:=JSON`.

The *Send a webhook* step's body is one flat JSON object whose values the partner
configures; `vwh sample --field` adds such fields and `vwh replay --set` replaces
them in a copied request. `KEY=VALUE` is a string, `KEY:=JSON` any other scalar
(a number, true, false, null), as HTTPie spells them; an object or an array would
nest, which the step never sends, so it is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from vwh.errors import UsageError


def parse_field(text: str, option: str) -> tuple[str, Any]:
    """One 'KEY=VALUE' or 'KEY:=JSON'; UsageError naming `option` when it is neither."""
    key, sep, value = text.partition("=")
    typed = key.endswith(":")
    key = key.removesuffix(":")
    if not sep or not key:
        raise UsageError(f"bad {option} {text!r}: expected KEY=VALUE (or KEY:=JSON for a number)")
    if not typed:
        return key, value
    try:
        parsed = json.loads(value)
    except ValueError:
        raise UsageError(
            f"bad {option} {text!r}: after ':=' comes JSON (42, true, null, \"text\")"
        ) from None
    if isinstance(parsed, dict | list):
        raise UsageError(
            f"bad {option} {text!r}: the value would nest (an object or an array); the step's"
            " body is one flat object"
        )
    return key, parsed


def parse_fields(texts: Iterable[str], option: str) -> dict[str, Any]:
    """Several fields, in order; a later one of the same key wins."""
    return dict(parse_field(text, option) for text in texts)
