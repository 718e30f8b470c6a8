"""Kept requests out of the store: NDJSON that `vwh replay` reads back, or HAR 1.2.

Both read the store a page at a time (`vwh.query.iter_matching`) and write one
record as soon as it is read, so memory stays flat for any size of store. Both
write what the store holds, and the store holds secrets masked (the token and
every secret header): nothing here can unmask them. Every line goes through the
one sanitiser for JSON lines, so a hostile body cannot reach a terminal raw; the
escapes it uses are the same JSON values, so bodies come back byte for byte.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl

from vwh import __version__
from vwh.errors import UsageError
from vwh.payloads import EXPORT_KIND
from vwh.replay import encoded_path
from vwh.sanitize import json_line
from vwh.store import CapturedRequest

FORMATS = ("ndjson", "har")
HAR_VERSION = "1.2"


def ndjson_record(r: CapturedRequest) -> dict[str, Any]:
    """One request as `vwh replay` reads it back: method, path, query and the exact body.

    A body that is UTF-8 is `body` as text (readable, and exact); any other bytes
    are `body_base64`. `body` is null when the listener did not keep it (too large).
    """
    record: dict[str, Any] = {
        "kind": EXPORT_KIND,
        "id": r.id,
        "received_at": _iso(r.received_at),
        "method": r.method,
        "path": r.path,
        "query": r.query,
        "headers": [list(h) for h in r.headers],
        "token": r.token_masked,
        "verdict": r.verdict,
        "status": r.status,
        "attempt": r.attempt,
        "body_size": r.body_size,
    }
    text = _utf8(r.body)
    if r.body is not None and text is None:
        record["body_base64"] = base64.b64encode(r.body).decode("ascii")
    else:
        record["body"] = text
    return record


def har_entry(r: CapturedRequest) -> dict[str, Any]:
    """One request as a HAR 1.2 entry: what came in, and the answer the sender got."""
    host = r.header("host") or "localhost"
    url = f"http://{host}{encoded_path(r.path)}" + (f"?{r.query}" if r.query else "")
    request: dict[str, Any] = {
        "method": r.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],  # the store masks the Cookie header: no value to list
        "headers": _har_headers(r.headers),
        "queryString": [
            {"name": n, "value": v} for n, v in parse_qsl(r.query, keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": r.body_size,
    }
    if r.body is not None or r.body_size:
        mime = r.header("content-type") or ""
        request["postData"] = {"mimeType": mime, **_har_text(r.body, r.body_size, "_encoding")}
    latency = max(0.0, round(r.latency_ms, 3))
    return {
        "startedDateTime": _iso(r.received_at),
        "time": latency,
        "request": request,
        "response": _har_response(r),
        "cache": {},
        "timings": {"send": 0, "wait": latency, "receive": 0},
        "comment": f"vwh #{r.id}: token {r.verdict}" + (f"; {r.error}" if r.error else ""),
    }


def write_ndjson(records: Iterable[CapturedRequest], out: TextIO) -> int:
    """One record a line; how many were written."""
    count = 0
    for record in records:
        out.write(json_line(ndjson_record(record)) + "\n")
        count += 1
    return count


def write_har(records: Iterable[CapturedRequest], out: TextIO) -> int:
    """One HAR document, written entry by entry; how many entries."""
    creator = json_line({"name": "vwh", "version": __version__})
    out.write(f'{{"log": {{"version": "{HAR_VERSION}", "creator": {creator}, "entries": [\n')
    count = 0
    for record in records:
        out.write((",\n" if count else "") + json_line(har_entry(record)))
        count += 1
    out.write("\n]}}\n")
    return count


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[TextIO]:
    """A file only the user can read (0600), in place only once it is complete.

    Written to a temporary file beside it, then renamed over it: a reader never
    sees half an export, and a failed one leaves the old file as it was.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def _har_response(r: CapturedRequest) -> dict[str, Any]:
    fwd = r.forward
    # The handler's answer is kept when vwh forwarded it; vwh's own answer is not.
    if fwd is not None and fwd.status == r.status:
        size = len(fwd.body or b"")
        mime = _header(fwd.headers, "content-type") or ""
        content = {"size": size, "mimeType": mime, **_har_text(fwd.body, size, "encoding")}
        headers = _har_headers(fwd.headers)
    else:
        content = {"size": 0, "mimeType": "", "comment": "vwh's own answer, not kept"}
        headers = []
    return {
        "status": r.status,
        "statusText": _reason(r.status),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": headers,
        "content": content,
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": content["size"],
    }


def _har_text(body: bytes | None, size: int, encoding_key: str) -> dict[str, Any]:
    """A body as HAR text: as it is when UTF-8, else base64 (said under `encoding_key`).

    HAR names the encoding of a response (`encoding`) but not of a request body,
    where a custom field (`_encoding`, custom fields start with '_') says it.
    """
    if body is None:
        return {"text": "", "comment": f"body of {size} bytes not kept"}
    text = _utf8(body)
    if text is None:
        return {"text": base64.b64encode(body).decode("ascii"), encoding_key: "base64"}
    return {"text": text}


def _har_headers(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _utf8(body: bytes | None) -> str | None:
    if body is None:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
