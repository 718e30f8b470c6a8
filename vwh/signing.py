"""`vwh sign`: a request written out as raw HTTP, a curl command or an HTTPie command.

All three say exactly what `vwh replay` would send, so a request can be pasted into
a terminal, a bug report or a test. Shell words are quoted with shlex, so any body
or header value survives a paste into a POSIX shell unchanged.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from vwh.delivery import OutgoingRequest


def render_raw(request: OutgoingRequest) -> str:
    """The request as it goes on the wire (CRLF line ends), as vwh.outbound writes it.

    The request target and Host come from the sender's own rule (outbound.wire_target),
    so they match byte for byte (percent-encoding, default ports, IPv6).
    """
    from vwh.outbound import wire_target

    target, host = wire_target(request.url)
    names = {name.lower() for name, _ in request.headers}
    lines = [f"{request.method} {target} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    lines.extend(f"{name}: {value}" for name, value in request.headers)
    lines.append(f"Content-Length: {len(request.body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + _text(request.body)


def render_curl(request: OutgoingRequest) -> str:
    """A curl command; POST is implied by --data-binary, other methods are spelled out."""
    first = ["curl", request.url]
    if request.method != "POST" or not request.body:
        first[1:1] = ["--request", request.method]
    # curl drops a header given as 'Name:'; 'Name;' is how it sends an empty one.
    groups = [["--header", f"{n}: {v}" if v else f"{n};"] for n, v in request.headers]
    if request.body:
        groups.append(["--data-binary", _text(request.body)])
    return _command(first, groups)


def render_httpie(request: OutgoingRequest) -> str:
    """An HTTPie command with the body on stdin, so it is sent as is (not re-encoded)."""
    # HTTPie drops a header given as 'Name:'; 'Name;' is how it sends an empty one.
    groups = [[f"{n}:{v}" if v else f"{n};"] for n, v in request.headers]
    command = _command(["http", request.method, request.url], groups)
    if not request.body:
        return command
    return f"printf '%s' {shlex.quote(_text(request.body))} | {command}"


RENDERERS: dict[str, Callable[[OutgoingRequest], str]] = {
    "raw": render_raw,
    "curl": render_curl,
    "httpie": render_httpie,
}


def render(request: OutgoingRequest, fmt: str = "raw") -> str:
    return RENDERERS[fmt](request)


def _text(body: bytes) -> str:
    # Bodies are checked JSON, which is UTF-8; a kept oddity is shown, not refused.
    return body.decode("utf-8", "replace")


def _command(first: list[str], groups: list[list[str]]) -> str:
    """Quoted words: the first line, then one line per option, joined by backslashes."""
    lines = [" ".join(shlex.quote(w) for w in words) for words in (first, *groups)]
    return " \\\n  ".join(lines)
