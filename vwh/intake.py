"""What is kept of a request as it came: secret values masked, the token found and judged.

One rule for every request the listener keeps, whether the receiver got it whole or
the HTTP parser refused it (vwh.http_guard): the same masking, the same token place.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from vwh.asgi_answer import length_of
from vwh.captured import CapturedRequest
from vwh.receiver_settings import ReceiverSettings
from vwh.webhook import (
    find_cookie,
    find_query_value,
    is_secret_name,
    kept_ids,
    mask_cookie,
    mask_header_value,
    mask_query,
    mask_secret,
    token_bytes,
    verify_token,
)

Request = Mapping[str, Any]  # method, path, raw_path, query_string, headers: as in ASGI


class Intake:
    """The listener's token place and secret names, applied to each request."""

    def __init__(self, settings: ReceiverSettings) -> None:
        place = self.place = settings.place
        # Only one of these is set: the header name (lower-case), or the query/cookie name.
        self.token_header = place.name.lower() if place.is_header else ""
        self._token_query = place.name if place.kind == "query" else None
        self._token_cookie = place.name.encode("latin-1") if place.kind == "cookie" else None
        self._token = token_bytes(settings.token) if settings.token is not None else None
        self.configured = place.secret_names
        self._secret: dict[str, bool] = {}  # is_secret_name, per header name seen

    def record(self, scope: Request) -> tuple[CapturedRequest, int]:
        """The request as it came, secrets masked, token checked, and its Content-Length.

        One pass over the headers; -1 when no usable Content-Length was given.
        """
        headers: list[tuple[str, str]] = []
        received: bytes | None = None
        declared = None
        secret = self._secret
        for raw_name, raw_value in scope["headers"]:  # ASGI names are lower-case
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            is_secret = secret.get(name)
            if is_secret is None:
                is_secret = is_secret_name(name, self.configured)
                if len(secret) < 1024:
                    secret[name] = is_secret
            if is_secret:
                if name == self.token_header and received is None:
                    received = raw_value  # compared as bytes, as it came
                if name == "cookie":  # each secret cookie masked, the others readable
                    value = mask_cookie(value, self.configured)
                else:
                    value = mask_secret(value)
            elif name == "content-length":
                declared = raw_value
            headers.append((name, value))
        query = scope["query_string"].decode("latin-1")
        received = self._token_of(received, scope["headers"], scope["query_string"])
        record = CapturedRequest(
            received_at=time.time(),
            method=scope["method"],
            path=scope["path"],
            query=mask_query(query, self.configured) if query else query,
            headers=headers,
            verdict=verify_token(self._token, received).value,
            token_masked=mask_secret(received.decode("utf-8", "replace"))
            if received is not None
            else "",
        )
        return record, length_of(declared) if declared is not None else -1

    def _token_of(
        self, in_header: bytes | None, fields: Iterable[tuple[bytes, bytes]], query: bytes
    ) -> bytes | None:
        """The token as it came, from the listener's one place (`in_header`: the token
        header's value, already found while reading the headers)."""
        if self._token_query is not None:
            return find_query_value(query, self._token_query)
        if self._token_cookie is not None:
            return find_cookie(fields, self._token_cookie)
        return in_header

    def refused(self, raw: bytes, received: int, status: int, error: str) -> CapturedRequest:
        """A request the HTTP layer refused (vwh.http_guard): its request line and header
        fields as far as they go, its first bytes as the body, secrets masked."""
        from vwh.http_guard import describe_refused

        head = describe_refused(
            raw,
            lambda name, value: mask_header_value(name, value, self.configured),
            self.token_header,
        )
        token = self._token_of(head.token, head.fields, head.query.encode("latin-1"))
        query = mask_query(head.query, self.configured) if head.query else ""
        raw = head.raw  # the request line carries the query: mask it there too
        if query != head.query:
            raw = raw.replace(head.query.encode("latin-1"), query.encode(), 1)
        return CapturedRequest(
            received_at=time.time(),
            method=head.method,
            path=head.path,
            query=query,
            headers=head.headers,
            body=raw,
            body_size=received,
            ids=kept_ids(raw),
            verdict=verify_token(self._token, token).value,
            token_masked=mask_secret(token.decode("utf-8", "replace")) if token is not None else "",
            error=error,
            status=status,
        )
