"""Hostile requests, sent over a raw socket, and the check that output stayed inert.

Raw sockets because httpx (rightly) refuses to send most of these: percent-encoded
ESC, CR and LF in a path, latin-1 C1 bytes in a header value.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys

from tests.helpers import FIXTURES, vwh_env

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()

# (request target, extra headers, body), each trying another way to reach the screen raw.
HOSTILE_REQUESTS: list[tuple[bytes, list[tuple[bytes, bytes]], bytes]] = [
    (b"/hooks/vendasta", [], rb'{"orderId":"\ud800"}'),  # valid JSON: a lone surrogate escape
    (
        b"/hooks/vendasta",
        [],
        rb'{"orderId":"AG-1:ORD-\u001b[31mRED\u001b[0m","accountId":"\u009b31m\u202eAG-2"}',
    ),
    (b"/%1b]0;retitled%07", [], ORDER),  # OSC: retitle the terminal
    (b"/a%0d%0a2026-01-01T00:00:00.000Z%20%23999%20POST%20/forged", [], ORDER),  # a forged line
    (b"/q?x=%1b[2J%00&y=%c2%9b", [], ORDER),  # clear the screen, from the query
    (b"/hooks/vendasta", [(b"X-Evil", b"\x9b31m\x85\xff")], ORDER),  # C1 bytes, read as latin-1
    (
        b"/hooks/vendasta",
        [],
        b"\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\r\n#999 forged\x7f\x00",
    ),  # a hyperlink, CRLF and DEL in a body that is not JSON
    (b"/hooks/vendasta", [], b"\x9b31m not UTF-8 \xff\x1b[5m"),
    (b"/hooks/vendasta", [], rb'{"orderId":"\u2066\udfff\u2028\u0007x","userId":"U-\u0085"}'),
]

# What no byte of vwh's output may be, after a strict UTF-8 decode (which already
# refuses surrogates): C0 but the newline ending a line, DEL, C1, and the separators
# and bidi controls that change how the text reads.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def raw_request(
    port: int,
    target: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    method: bytes = b"POST",
) -> int:
    """Send one request byte for byte and return the answer's status."""
    head = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    head += [name + b": " + value for name, value in headers or []]
    head.append(b"Content-Length: %d" % len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def send_hostile(port: int) -> list[int]:
    """Every hostile request, then a normal one to /after; their statuses."""
    statuses = [
        raw_request(port, target, headers, body) for target, headers, body in HOSTILE_REQUESTS
    ]
    return [*statuses, raw_request(port, b"/after", [], ORDER)]


def assert_inert(data: bytes) -> str:
    """`data` is UTF-8 with no raw control character; returns it decoded."""
    text = data.decode("utf-8")  # strict: a lone surrogate or stray byte fails here
    found = RAW.search(text)
    assert found is None, (
        f"raw {found.group()!r} at {found.start()}: {text[found.start() - 40 : found.end() + 40]!r}"
    )
    return text


def run_vwh_bytes(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """The real `vwh`, piped, its output kept as bytes (decoding would hide what it wrote)."""
    return subprocess.run(
        [sys.executable, "-m", "vwh", *args],
        capture_output=True,
        env=env or vwh_env(),
        timeout=timeout,
    )
