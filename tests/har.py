"""A checker for HAR 1.2 documents, from the spec's table of fields (fixtures/har/)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.helpers import FIXTURES

FIELDS: dict[str, Any] = json.loads((FIXTURES / "har" / "har-1.2-fields.json").read_text())
_TYPES = {"string": str, "number": (int, float), "object": dict, "array": list}


def har_problems(document: Any) -> list[str]:
    """Every way `document` breaks HAR 1.2: missing or mistyped fields, unknown ones."""
    problems: list[str] = []

    def check(obj: Any, kind: str, where: str) -> None:
        if not isinstance(obj, dict):
            problems.append(f"{where}: not an object")
            return
        spec = FIELDS[kind]
        for name, type_name in spec["required"].items():
            if name not in obj:
                problems.append(f"{where}: no {name}")
            elif isinstance(obj[name], bool) or not isinstance(obj[name], _TYPES[type_name]):
                problems.append(f"{where}.{name}: not a {type_name}")
        for name in obj:
            known = name in spec["required"] or name in spec["optional"]
            if not known and not name.startswith("_"):
                problems.append(f"{where}.{name}: not a HAR field (custom ones start with _)")

    if not isinstance(document, dict) or "log" not in document:
        return ["no log"]
    log = document["log"]
    check(log, "log", "log")
    if log.get("version") != "1.2":
        problems.append("log.version: not 1.2")
    check(log.get("creator"), "creator", "log.creator")
    for i, entry in enumerate(log.get("entries", [])):
        where = f"entries[{i}]"
        check(entry, "entry", where)
        try:
            datetime.fromisoformat(entry["startedDateTime"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"{where}.startedDateTime: not an ISO 8601 time")
        request, response = entry.get("request", {}), entry.get("response", {})
        check(request, "request", f"{where}.request")
        check(response, "response", f"{where}.response")
        for part, obj in (("request", request), ("response", response)):
            for j, header in enumerate(obj.get("headers", [])):
                check(header, "header", f"{where}.{part}.headers[{j}]")
        for j, item in enumerate(request.get("queryString", [])):
            check(item, "queryString", f"{where}.request.queryString[{j}]")
        if "postData" in request:
            check(request["postData"], "postData", f"{where}.request.postData")
        check(response.get("content"), "content", f"{where}.response.content")
        check(entry.get("cache"), "cache", f"{where}.cache")
        timings = entry.get("timings", {})
        check(timings, "timings", f"{where}.timings")
        spent = [timings.get(k, 0) for k in ("send", "wait", "receive")]
        if any(not isinstance(t, (int, float)) or t < 0 for t in spent):
            problems.append(f"{where}.timings: send, wait and receive must be >= 0")
        elif abs(sum(spent) - entry.get("time", -1)) > 0.01:
            problems.append(f"{where}.time: not the sum of its timings")
    return problems
