"""A copied curl request (Vendasta's "Copy example request as curl") as a delivery.

`vwh replay --curl` and `vwh sign` send or print exactly the copied request:
method, path, query, headers, cookies and body byte for byte. What vwh adds is
only what the user asks for: `--to` replaces the scheme, host and port (the path and
query stay, as through a tunnel), `--set` replaces body fields, and the token, -H,
--query and --cookie options are applied as for any other body.

One addition is made unasked: a copied request without a Content-Type gets
`Content-Type: application/json`. The step always sends that header with its JSON
body; curl itself would label a `-d` body as a form, which no handler of the step
reads, so keeping curl's default would test a request Vendasta never sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

from vwh.curl import CurlError, CurlRequest, parse_curl
from vwh.delivery import OutgoingRequest, build_request, check_url
from vwh.errors import InputError, UsageError
from vwh.fields import parse_fields
from vwh.replay import Target
from vwh.webhook import InvalidBody, parse_body

_CURL_START = re.compile(rb"\A(?:\s|#[^\n]*\n)*curl(?:\s|\\)")


def looks_like_curl(data: bytes) -> bool:
    """True when the text is a curl command (after blank and comment lines), not a body."""
    return bool(_CURL_START.match(data))


def replace_origin(url: str, to: str) -> str:
    """`url` with the scheme, host and port of `to`; its path, query and fragment kept."""
    check_url(to, "--to")
    new = urlsplit(to)
    if new.path not in ("", "/") or new.query:
        raise UsageError(
            f"bad --to {to!r}: with a copied request, --to replaces only the scheme, host and"
            " port (the copied path and query are kept); give http://host:port"
        )
    old = urlsplit(url)
    return urlunsplit((new.scheme, new.netloc, old.path, old.query, old.fragment))


def set_fields(body: bytes, sets: Sequence[str]) -> bytes:
    """The body with --set fields replaced (or added); unchanged, byte for byte, without."""
    if not sets:
        return body
    document = parse_body(body) | parse_fields(sets, "--set")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def delivery_from_curl(
    copied: CurlRequest,
    *,
    to: str | None = None,
    sets: Sequence[str] = (),
    target: Target | None = None,
    label: str = "curl",
) -> OutgoingRequest:
    """The request to send for a copied curl command; CurlError when it is no delivery.

    `target` (a vwh.replay.Target) adds its token, headers, query and cookies.
    """
    if copied.method != "POST":
        raise CurlError(
            f"the copied request is a {copied.method}, not a POST: the Send a webhook step"
            " POSTs a JSON object"
        )
    try:
        parse_body(copied.body)
    except InvalidBody as exc:
        raise CurlError(
            f"the copied body is not a JSON object ({exc}): the Send a webhook step sends one"
        ) from None
    headers = list(copied.headers)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ("Content-Type", "application/json"))
    url = replace_origin(copied.url, to) if to is not None else copied.url
    t = target or Target(url)
    return build_request(
        url,
        set_fields(copied.body, sets),
        token=t.token,
        token_header=t.token_header,
        extra_headers=t.headers,
        label=label,
        token_place=t.token_place,
        query=t.query,
        cookies=t.cookies,
        base_headers=headers,
    )


def read_copied(source: str, stdin: BinaryIO | None = None) -> CurlRequest:
    """The curl command in a file (or '-': stdin), parsed; a '@file' body is read beside it."""
    label = "<stdin>" if source == "-" else source
    if source == "-":
        data, cwd = (stdin.read() if stdin is not None else b""), Path.cwd()
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{source}: cannot read ({exc.strerror or exc})") from None
        cwd = path.parent
    return parse_copied(data, label, cwd)


def parse_copied(data: bytes, label: str, cwd: Path | None = None) -> CurlRequest:
    """A curl command's bytes, parsed; errors name where it came from."""
    try:
        text = data.decode("utf-8", "surrogateescape")
        return parse_curl(text, cwd=cwd)
    except CurlError as exc:
        raise CurlError(f"{label}: {exc}") from None
