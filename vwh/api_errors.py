"""How the Platform API's failures become vwh errors: one mapping for every API call.

Transport failures (timeouts, unreachable hosts, broken connections), the API's answers
(401, 403, 404 and the rest, with the JSON:API `errors[]` detail) and Retry-After are
read here, so `fetch`, `token` and `trigger` word the same failure the same way.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from vwh.errors import (
    ForbiddenError,
    GaveUpError,
    NotFoundError,
    RejectedError,
    TimeoutError_,
    UnauthorizedError,
    UnreachableError,
    UsageError,
    VwhError,
)
from vwh.tokens import scrub


@contextlib.contextmanager
def transport_errors(timeout: float) -> Iterator[None]:
    """Turn httpx's transport failures into one-line vwh errors naming the host."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TimeoutError_(f"{_exc_host(exc)} did not answer within {timeout:g} s") from None
    except httpx.ConnectError as exc:
        raise UnreachableError(f"could not reach {_exc_host(exc)}: {_why(exc)}") from None
    except httpx.UnsupportedProtocol as exc:
        raise UsageError(f"cannot use that URL: {exc}") from None
    except httpx.TransportError as exc:
        raise GaveUpError(f"the connection to {_exc_host(exc)} broke: {_why(exc)}") from None


def refusal(
    response: httpx.Response, *, why_unauthorized: str, forbidden: str, missing: str | None
) -> VwhError:
    """The error for a non-2xx answer: 401 says why, 403 what was lacking, 404 (when
    `missing` names what was looked for, and where) what is not there."""
    status, host, detail = response.status_code, host_of(response), errors_detail(response)
    if status == 401:
        return UnauthorizedError(
            f"{host} did not accept the access token ({why_unauthorized}){detail}"
        )
    if status == 403:
        return ForbiddenError(f"{host} refused: {forbidden}{detail}")
    if status == 404 and missing is not None:
        return NotFoundError(f"no {missing}{detail}")
    return RejectedError(f"{host} answered {status_line(response)}{detail}")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def host_of(response: httpx.Response) -> str:
    return response.request.url.netloc.decode("ascii", "replace")


def status_line(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


def scope_list(scopes: Sequence[str]) -> str:
    """`a` or `one of a, b, c, d (or N more)`: the scopes a message names."""
    shown = list(scopes[:4])
    more = len(scopes) - len(shown)
    text = shown[0] if len(shown) == 1 else f"one of {', '.join(shown)}"
    return text + (f" (or {more} more)" if more > 0 else "")


def errors_text(body: Any) -> str:
    """A JSON:API `errors[]` body as `title: detail; ...`, or '' when it is not one."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for err in errors[:3]:
        if not isinstance(err, dict):
            continue
        title, detail = err.get("title"), err.get("detail")
        text = ": ".join(str(t) for t in (title, detail) if t not in (None, ""))
        if text:
            parts.append(text)
    return scrub("; ".join(parts))


def errors_detail(response: httpx.Response) -> str:
    """` [errors text]` to end a message with, or '' when the answer has none."""
    try:
        text = errors_text(response.json())
    except ValueError:
        text = ""
    return f" [{text}]" if text else ""


def json_document(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or a VwhError saying it was not one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise VwhError(
            f"{host_of(response)} answered {status_line(response)} but not with a JSON object"
        )
    return body


def _exc_host(exc: httpx.RequestError) -> str:
    try:
        return exc.request.url.netloc.decode("ascii", "replace") or "the server"
    except RuntimeError:
        return "the server"


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)
    if "SSL" in text or "certificate" in text.lower():
        text = f"TLS failed: {text}"
    return scrub(text, limit=200)
