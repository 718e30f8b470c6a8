"""The inspector's door: its own Host only, the run's secret, same-origin actions.

Every response also carries headers that make a mistake in the page harmless: a
strict Content-Security-Policy (no inline script, nothing from elsewhere),
`nosniff`, no framing, no referrer (an address may carry the secret).

- Host: a page on another site can point its own name at 127.0.0.1 (DNS
  rebinding); such a request names that site in Host and is refused with 421.
- Secret: every API read needs it (loopback is shared by every user and program
  on the machine, and captures hold real bodies), in an `Authorization: Bearer`
  header, or `?token=` on a GET. The page itself and its assets hold no data and
  need none: the page takes the secret from the address vwh printed and keeps it
  in the tab's sessionStorage, which, unlike a cookie, no other port ever sees.
- Actions (anything but GET and HEAD) need the secret in the header, never in the
  address: another site's page cannot set that header without a CORS preflight,
  which is never granted. And `Sec-Fetch-Site`, when sent, must be `same-origin`,
  and `Origin`, when sent, this inspector.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vwh.webhook import tokens_match

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
_SAFETY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
_SAFE_METHODS = ("GET", "HEAD")


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host values this inspector answers; None: any IP literal (a wildcard bind)."""
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::"):
        return None
    names = {_authority(bare, port)}
    if bare in ("127.0.0.1", "::1", "localhost"):
        names.add(f"localhost:{port}")
    return frozenset(names)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip_authority(value: str, port: int) -> bool:
    name, sep, given = value.rpartition(":")
    if not sep or given != str(port):
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware in front of the inspector app; see the module docstring."""

    def __init__(
        self, app: ASGIApp, *, secret: str, hosts: frozenset[str] | None, port: int
    ) -> None:
        self.app = app
        self.secret = secret
        self.hosts = hosts
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_safely(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SAFETY_HEADERS]
            await send(message)

        headers = _headers(scope["headers"])
        host = headers.get("host", "")
        if not self._host_ok(host):
            await _plain(send_safely, 421, f"vwh inspector: not served for Host {host!r}")
            return
        path: str = scope["path"]
        if path.startswith("/static/") or path == "/":  # no data: the page asks the API
            await self.app(scope, receive, send_safely)
            return
        method: str = scope["method"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if not self._has_secret(headers, query if method in _SAFE_METHODS else {}):
            await _refuse(send_safely, path, "this needs the secret in the address vwh printed")
            return
        if method not in _SAFE_METHODS:
            problem = _cross_origin(headers, host)
            if problem is not None:
                await _refuse(send_safely, path, problem)
                return
        await self.app(scope, receive, send_safely)

    def _host_ok(self, host: str) -> bool:
        host = host.lower()
        if self.hosts is None:
            return _is_ip_authority(host, self.port)
        return host in self.hosts

    def _has_secret(self, headers: dict[str, str], query: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        secret = self.secret.encode()
        if auth[:7].lower() == "bearer " and tokens_match(secret, auth[7:].strip().encode()):
            return True
        given = query.get("token")
        return given is not None and tokens_match(secret, given.encode())


def _cross_origin(headers: dict[str, str], host: str) -> str | None:
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"a {site} request cannot act here"
    origin = headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        return "a request from another origin cannot act here"
    return None


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


async def _refuse(send: Send, path: str, reason: str) -> None:
    if path.startswith("/api/"):
        body = json.dumps({"error": reason}).encode()
        await _respond(send, 403, body, b"application/json")
    else:
        await _plain(send, 403, f"vwh inspector: {reason}")


async def _plain(send: Send, status: int, text: str) -> None:
    await _respond(send, status, (text + "\n").encode(), b"text/plain; charset=utf-8")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
