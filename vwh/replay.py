"""Where replayed bodies go and what they carry: the target, its token, its headers.

`vwh replay` and `vwh sign` share this, so the request sign prints is the request
replay sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from vwh.delivery import OutgoingRequest, build_request, check_url, parse_header
from vwh.payloads import Payload
from vwh.webhook import DEFAULT_TOKEN_HEADER, mask_secret

DEFAULT_TARGET = "http://127.0.0.1:8787/"


@dataclass(frozen=True)
class Target:
    """The handler to send to, the token to put on every request, and extra headers."""

    url: str = DEFAULT_TARGET
    token: str | None = None
    token_header: str = DEFAULT_TOKEN_HEADER
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_options(
        cls,
        url: str,
        token: str | None = None,
        token_header: str = DEFAULT_TOKEN_HEADER,
        header_texts: Sequence[str] = (),
    ) -> Target:
        """Check the options as a user typed them; UsageError names the bad one."""
        name, _ = parse_header(f"{token_header}: x")
        headers = tuple(parse_header(text) for text in header_texts)
        return cls(check_url(url), token or None, name, headers)

    def describe(self) -> str:
        """The target for a report: the token masked, never shown."""
        if self.token is None:
            return f"{self.url} (no token)"
        return f"{self.url} with {self.token_header}: {mask_secret(self.token)}"

    def request_for(self, payload: Payload, *, keep_headers: bool = False) -> OutgoingRequest:
        """The request for one body: kept headers (if asked), then the token, then -H."""
        given = {name.lower() for name, _ in self.headers} | {self.token_header.lower()}
        kept = [h for h in payload.headers if h[0].lower() not in given] if keep_headers else []
        return build_request(
            url_for(self.url, payload.path, payload.query),
            payload.body,
            token=self.token,
            token_header=self.token_header,
            extra_headers=[*kept, *self.headers],
            method=payload.method,
            label=payload.label,
        )


def url_for(base: str, path: str | None, query: str = "") -> str:
    """Where a payload goes: --to, plus an exported request's own path and query.

    The rule is --forward-to's: a URL that ends with '/' (or has no path) gets the
    request's path appended, any other URL takes every request exactly there; the
    request's query string is always added. A plain body (no path) goes to --to.
    """
    if path is None and not query:
        return base
    parts = urlsplit(base)
    where = parts.path
    if path is not None and (where == "" or where.endswith("/")):
        where = where.rstrip("/") + encoded_path(path)
    joined = "&".join(q for q in (parts.query, query) if q)
    return urlunsplit((parts.scheme, parts.netloc, where or "/", joined, ""))


def encoded_path(path: str) -> str:
    """A kept path as it goes in a URL: the store keeps it decoded, as the server read it."""
    return quote(path, safe="/:@!$&'()*+,;=-._~")
