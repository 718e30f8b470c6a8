"""`vwh show`'s view of one kept request in full, as inert plain lines: what came in,
what went out, and the handler's side (the short formatters are vwh.cli.listen_view's)."""

from __future__ import annotations

import json

from vwh.cli.listen_view import (
    answer_check_text,
    iso_time,
    resend_text,
    status_text,
    verdict_text,
)
from vwh.forward import KEPT_BODY_LIMIT
from vwh.sanitize import inert, inert_lines
from vwh.store import CapturedRequest, ForwardResult
from vwh.webhook import InvalidBody, parse_json


def request_details(record: CapturedRequest) -> list[str]:
    """`vwh show` as plain lines: what came in, what went out, and the handler's side.

    Every line is inert: a header, a path or a body line can neither forge a line nor
    reach the terminal as a control sequence.
    """
    target = record.path + (f"?{record.query}" if record.query else "")
    lines = [
        f"#{record.id}  {iso_time(record.received_at)}",
        f"{record.method} {target}",
        *(f"{name}: {value}" for name, value in record.headers),
        "",
        *_body_lines(record.body, record.body_size),
        "",
        f"token:   {verdict_text(record)}",
        f"answer:  {status_text(record)} in {record.latency_ms:.1f} ms",
    ]
    if record.error:
        lines.append(f"error:   {record.error}")
    if record.attempt:
        lines.append(
            f"attempt: {record.attempt}" + (f"  {resend_text(record)}" if record.is_resend else "")
        )
    fwd = record.forward
    if fwd is not None:
        lines += ["", f"forwarded to {fwd.url}"]
        latency = f" after {fwd.latency_ms:.1f} ms" if fwd.latency_ms is not None else ""
        if fwd.error:
            lines.append(f"handler: {fwd.error}{latency}")
        else:
            lines.append(f"handler answered {fwd.status}{latency.replace('after', 'in')}")
            lines += [f"{name}: {value}" for name, value in fwd.headers]
            lines += ["", *_body_lines(fwd.body, len(fwd.body or b""))]
            cut = _truncation_note(fwd)
            if cut:
                lines.append(cut)
    elif record.reaction:
        lines += ["", "not forwarded: rejected here (--forward-all passes rejections on)"]
    if record.answer_check is not None:
        lines.append(f"response data: {answer_check_text(record)}")
    if record.reaction:
        lines += ["", f"Vendasta would: {_NEXT_WORDS.get(record.reaction, record.reaction)}"]
    return [inert(line) for line in lines]


_NEXT_WORDS = {
    "done": "done (it got a 2xx)",
    "dropped": "drop it for good (a 4xx is never resent)",
    "resend": "resend it (5xx, no answer in time, or a broken connection)",
}


def _truncation_note(fwd: ForwardResult) -> str:
    """Say when the kept answer is only the first part of what the handler sent."""
    kept = len(fwd.body or b"")
    length = next((v for k, v in fwd.headers if k.lower() == "content-length"), "")
    if length.isdigit() and int(length) > kept:
        return f"(truncated: first {kept} of {int(length)} bytes kept)"
    if kept >= KEPT_BODY_LIMIT:
        return f"(truncated: first {kept} bytes kept)"
    return ""


def _body_lines(body: bytes | None, size: int) -> list[str]:
    """A body as inert lines: JSON pretty-printed, other text as it came, bytes escaped."""
    if body is None:
        return [f"(body of {size} bytes not kept)"]
    if not body:
        return ["(empty body)"]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        escaped = inert_lines(body.decode("utf-8", "backslashreplace"))
        return [f"(binary body, {size} bytes; not UTF-8: bytes shown as \\xNN)", *escaped]
    try:  # the bounded parser: a hostile body cannot take `vwh show` down
        # Only the indentation's newlines: JSON strings carry theirs escaped.
        return inert_lines(json.dumps(parse_json(body), indent=2, ensure_ascii=False))
    except (InvalidBody, RecursionError):  # not JSON, or nested too deep to re-indent
        return inert_lines(text)
