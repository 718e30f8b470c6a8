"""Where replayed bodies go and what they carry: the target, its token, its headers.

`vwh replay` and `vwh sign` share this, so the request sign prints is the request
replay sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vwh.delivery import (
    OutgoingRequest,
    build_request,
    check_url,
    parse_header,
    parse_pair,
    with_query,
)
from vwh.payloads import Payload
from vwh.webhook import DEFAULT_TOKEN_HEADER, TokenPlace, mask_secret

DEFAULT_TARGET = "http://127.0.0.1:8787/"


@dataclass(frozen=True)
class Target:
    """The handler to send to, the token to put on every request, and extra headers."""

    url: str = DEFAULT_TARGET
    token: str | None = None
    token_header: str = DEFAULT_TOKEN_HEADER
    headers: tuple[tuple[str, str], ...] = ()
    token_place: TokenPlace | None = None  # None: the header token_header
    query: tuple[tuple[str, str], ...] = ()  # --query, added to the URL's query
    cookies: tuple[tuple[str, str], ...] = ()  # --cookie

    @classmethod
    def from_options(
        cls,
        url: str,
        token: str | None = None,
        token_header: str = DEFAULT_TOKEN_HEADER,
        header_texts: Sequence[str] = (),
        *,
        token_place: TokenPlace | None = None,
        query_texts: Sequence[str] = (),
        cookie_texts: Sequence[str] = (),
    ) -> Target:
        """Check the options as a user typed them; UsageError names the bad one."""
        if token_place is not None and token_place.is_header:
            token_header, token_place = token_place.name, None
        name, _ = parse_header(f"{token_header}: x")
        headers = tuple(parse_header(text) for text in header_texts)
        query = tuple(parse_pair(text, "--query") for text in query_texts)
        cookies = tuple(parse_pair(text, "--cookie") for text in cookie_texts)
        return cls(check_url(url), token or None, name, headers, token_place, query, cookies)

    @property
    def place(self) -> TokenPlace:
        return self.token_place or TokenPlace("header", self.token_header)

    def describe(self) -> str:
        """The target for a report: the token masked, never shown."""
        if self.token is None:
            return f"{self.url} (no token)"
        place = self.place
        where = place.name if place.is_header else place.describe()
        return f"{self.url} with {where}: {mask_secret(self.token)}"

    def request_for(self, payload: Payload, *, keep_headers: bool = False) -> OutgoingRequest:
        """The request for one body: kept headers (if asked), then the token, then -H."""
        given = {name.lower() for name, _ in self.headers} | {self.token_header.lower()}
        kept = [h for h in payload.headers if h[0].lower() not in given] if keep_headers else []
        return build_request(
            with_query(self.url, (), raw=payload.query),
            payload.body,
            token=self.token,
            token_header=self.token_header,
            extra_headers=[*kept, *self.headers],
            method=payload.method,
            label=payload.label,
            token_place=self.token_place,
            query=self.query,
            cookies=[*payload.cookies, *self.cookies],
        )
