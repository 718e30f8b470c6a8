"""Hypothesis strategies for hostile requests, as the raw bytes a client would send.

Each strategy draws a few small choices and builds the bytes from them, so a body
nested 20,000 levels deep or a 300 KB header costs Hypothesis a handful of choices,
not one per byte. Every request carries MARK where its target starts; the sender
puts a unique `/fzN/` there, so each answer can be matched with what was kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import assume
from hypothesis import strategies as st

from vwh.webhook import ID_FIELDS, MAX_JSON_DEPTH, MAX_NUMBER_DIGITS

MARK = b"{{fz}}"  # replaced by /fzN/ when sent
TOKEN = "fuzz-tökén-7"  # not ASCII: the header's bytes must equal its UTF-8
RIGHT = TOKEN.encode()


@dataclass(frozen=True)
class Exchange:
    """One generated request: its bytes (MARK where the marker goes), and whether the
    client closes right after sending (no answer awaited)."""

    kind: str
    data: bytes
    close: bool = False

    def __repr__(self) -> str:  # the falsifying example, readable even for 300 KB
        shown = self.data if len(self.data) <= 600 else self.data[:600] + b"..."
        return f"Exchange({self.kind!r}, {len(self.data)} bytes, close={self.close}: {shown!r})"


# Text from outside: C0, DEL, C1, escape sequences, CR/LF, lone surrogates, bidi controls.
_NASTY = [
    *(chr(i) for i in range(0x20)),
    "\x7f",
    *(chr(i) for i in range(0x80, 0xA0)),
    "\ud800",
    "\udfff",
    "\u202e",
    "\u2066",
    "\u2028",
    "\u061c",
    "\u200f",
    "\x1b[31m",
    "\x1b[2J",
    "\x1b]0;retitled\x07",
    "\x1b]8;;https://evil.example\x1b\\",
    "\x9b31m",
    "\r\n#999 forged",
    "[red]markup[/red]",
    "é",
    "🦊",
]
hostile_text = st.lists(st.sampled_from(_NASTY) | st.text(max_size=4), max_size=6).map("".join)

# Pieces of a request target: percent-encoded controls and invalid UTF-8, raw bytes
# HTTP forbids there, and plain text.
_TARGET_PIECES = [
    b"%1b]0;retitled%07",
    b"%0d%0a2026-01-01T00:00:00.000Z%20%23999%20POST%20/forged",
    b"%00",
    b"%c2%9b31m",
    b"%ed%a0%80",  # a surrogate, UTF-8 encoded: not valid UTF-8
    b"%e2%80%ae",
    b"%ff%fe",
    b"%1b[2J",
    b"%7f",
    b"%",
    b"%zz",
    b"..",
    b"//",
    b"%2F",
    b"token=abc123def456",
    b"api_key=s3cret-value-1234",
    b"a=b&&=&c",
    b"\x1b",  # raw: the parser refuses these
    b"\x00",
    b"\xff",
    b"\x85",
    b"\x7f",
    b"\t",
    b" ",
    b"#frag",
    b"?",
]
target_piece = (
    st.sampled_from(_TARGET_PIECES)
    | st.binary(max_size=6).map(lambda raw: b"".join(b"%%%02x" % c for c in raw))
    | st.text("abcdefghijklmnopqrstuvwxyz0123456789-._~/", max_size=10).map(str.encode)
)
paths = st.lists(target_piece, max_size=4).map(b"".join)
queries = st.lists(target_piece, max_size=4).map(b"&".join)
_TAME_PIECES = [p for p in _TARGET_PIECES if all(0x21 <= c < 0x7F and c not in b"#?" for c in p)]
tame_piece = (
    st.sampled_from(_TAME_PIECES)
    | st.binary(max_size=6).map(lambda raw: b"".join(b"%%%02x" % c for c in raw))
    | st.text("abcdefghijklmnopqrstuvwxyz0123456789-._~/", max_size=10).map(str.encode)
)
tame_paths = st.lists(tame_piece, max_size=4).map(b"".join)  # valid targets, hostile text
tame_queries = st.lists(tame_piece, max_size=4).map(b"&".join)

_HEADER_NAMES = [
    b"X-Evil",
    b"X-Auth-Token",
    b"Stripe-Signature",
    b"Cookie",
    b"Authorization",
    b"Content-Type",
    b"User-Agent",
    b"Via",
    b"Expect",
    b"X Evil",  # not a token: the parser refuses it
    b"X:Colon",
    b"",
    b"\x1b[31m",
]
_HEADER_VALUES = [
    b"\x1b]0;retitled\x07",
    b"\x9b31m\x85\xff",
    b"\xc2\x9b\xe2\x80\xae",
    b"a\r\nInjected: yes",
    b"\x00",
    b"100-continue",
    b"1.1 vwh-deadbeef",
    b"s3cret-value-abcdef",
]
_FIELD_VALUE = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])  # what HTTP allows
_AS_FIELD_VALUE = bytes(_FIELD_VALUE[c % len(_FIELD_VALUE)] for c in range(256))
tame_header = st.tuples(
    st.sampled_from([n for n in _HEADER_NAMES if n.replace(b"-", b"").isalpha()]),
    st.binary(max_size=40).map(lambda raw: raw.translate(_AS_FIELD_VALUE).strip()),
)
header = st.tuples(
    st.sampled_from(_HEADER_NAMES)
    | st.text("abcdefXYZ-_", min_size=1, max_size=12).map(str.encode),
    st.sampled_from(_HEADER_VALUES) | st.binary(max_size=40),
)

# Token variants: right in capitals, wrong, missing, the same text in other bytes,
# duplicated (a request's token is right unless its "token" aspect is broken).
_RIGHT = [(b"Verifier-Token", RIGHT)]
tokens = st.sampled_from(
    [
        [(b"VERIFIER-TOKEN", RIGHT)],
        [(b"Verifier-Token", b"wrong-token")],
        [],
        [(b"Verifier-Token", TOKEN.encode("latin-1"))],
        [(b"Verifier-Token", RIGHT + b"\x00")],
        [(b"Verifier-Token", b"")],
        [(b"Verifier-Token", b"\xff\x1b[31m")],
        [*_RIGHT, (b"Verifier-Token", b"second")],
    ]
)


@st.composite
def huge_numbers(draw: st.DrawFn) -> bytes:
    """Numbers with hundreds to thousands of digits, either side of the limit, and
    floats out of range."""
    limit = MAX_NUMBER_DIGITS
    digits = draw(st.sampled_from([limit - 1, limit, limit + 1]) | st.integers(300, 6000))
    run = (draw(st.text("0123456789", min_size=1, max_size=8)) * digits)[:digits]
    number = "1" + run[1:]
    form = draw(st.sampled_from(["int", "neg", "frac", "exp", "string", "float"]))
    text = {
        "int": number,
        "neg": "-" + number,
        "frac": "0." + number,
        "exp": "1e" + number[:7],
        "string": json.dumps(number),  # digits in a string: just text
        "float": draw(st.sampled_from(["1e400", "-1e400", "1e-400", "1.5e308", "NaN"])),
    }[form]
    return text.encode()


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    """Nesting up to and far beyond the limit: arrays, objects, mixed, unbalanced."""
    limit = MAX_JSON_DEPTH
    depth = draw(st.sampled_from([limit - 1, limit, limit + 1, limit + 2]) | st.integers(1, 20000))
    kind = draw(st.sampled_from(["array", "object", "mixed", "open", "close", "in-string"]))
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "mixed":
        return b'[{"a":' * (depth // 2) + b"null" + b"}]" * (depth // 2)
    if kind == "open":
        return b"[" * depth
    if kind == "close":
        return b"]" * depth
    return b'"' + b"[{" * depth + b'"'  # brackets inside a string are text


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text  # NaN, Infinity too
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(hostile_text, kids, max_size=3),
    max_leaves=4,
)


@st.composite
def encoded(
    draw: st.DrawFn, values: st.SearchStrategy[object], ensure_ascii: bool | None = None
) -> bytes:
    """A JSON value as bytes: escaped, or raw UTF-8 (lone surrogates as invalid UTF-8)."""
    if ensure_ascii is None:
        ensure_ascii = draw(st.booleans())
    text = json.dumps(draw(values), ensure_ascii=ensure_ascii)
    return text.encode("utf-8", "surrogatepass")


id_objects = st.dictionaries(
    st.sampled_from(ID_FIELDS) | hostile_text,
    hostile_text | json_scalars | json_values,
    min_size=1,
    max_size=3,
)
_RAW_STRINGS = [
    rb'"\ud800"',
    rb'"\udfff\ud800"',
    rb'"\u0000\u001b[31m\u009b"',
    rb'"\x1b"',  # not a JSON escape
    rb'"\"',  # unterminated
    b'"\x1b]0;raw\x07"',  # raw control characters inside a string: invalid JSON
    b'"\xc2\x9b\x7f"',
    b'"\xff"',
]
fragments = st.one_of(
    huge_numbers(), deep_json(), st.sampled_from(_RAW_STRINGS), encoded(json_values)
)


@st.composite
def in_object(draw: st.DrawFn) -> bytes:
    """A hostile fragment as the value of an id field, or beside one."""
    field = draw(st.sampled_from(ID_FIELDS)).encode()
    fragment = draw(fragments)
    if draw(st.booleans()):
        return b'{"' + field + b'":' + fragment + b"}"
    return b'{"' + field + b'":"AG-1","deep":' + fragment + b"}"


bodies = st.one_of(
    encoded(id_objects),
    in_object(),
    fragments,  # non-objects, mostly
    st.sampled_from([b"", b"[]", b'"s"', b"1", b"null", b"true", b"\xef\xbb\xbf{}", b"{}\x00"]),
    st.binary(max_size=300),
)

methods = st.sampled_from([b"GET", b"PUT", b"post", b"OPTIONS", b"P\x00ST", b"", b"POST POST"])
versions = st.sampled_from([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"http/1.1", b"HTTP/1.1 x", b""])
_FRAMINGS = [
    "length",
    "chunked",
    "longer-then-close",
    "shorter",
    "negative",
    "not-a-number",
    "twice-same",
    "twice-differ",
    "none",
    "chunked-bad",
    "chunked-cut",
    "chunked-and-length",
]


@st.composite
def framed(
    draw: st.DrawFn, body: bytes, tame: bool = False
) -> tuple[list[tuple[bytes, bytes]], bytes, bool]:
    """The framing headers, the bytes after the head, and whether the client closes."""
    framing = draw(st.sampled_from(_FRAMINGS[:2] if tame else _FRAMINGS[2:]))
    size = b"%d" % len(body)
    if framing == "length":
        return [(b"Content-Length", size)], body, False
    if framing == "longer-then-close":
        more = draw(st.integers(1, 5000))
        return [(b"Content-Length", b"%d" % (len(body) + more))], body, True
    if framing == "shorter":
        return (
            [(b"Content-Length", b"%d" % max(0, len(body) - draw(st.integers(1, 50))))],
            body,
            False,
        )
    if framing == "negative":
        return [(b"Content-Length", b"-%d" % draw(st.integers(0, 10**6)))], body, False
    if framing == "not-a-number":
        value = draw(st.sampled_from([b"abc", b"12abc", b"0x10", b"1e3", b" ", b"+5", b"9" * 30]))
        return [(b"Content-Length", value)], body, False
    if framing == "twice-same":
        return [(b"Content-Length", size), (b"Content-Length", size)], body, False
    if framing == "twice-differ":
        return (
            [(b"Content-Length", size), (b"Content-Length", b"%d" % (len(body) + 1))],
            body,
            False,
        )
    if framing == "none":
        return [], body, False
    te = [(b"Transfer-Encoding", b"chunked")]
    cut = draw(st.integers(1, 64))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in _split(body, cut))
    if framing == "chunked":
        return te, chunks + b"0\r\n\r\n", False
    if framing == "chunked-cut":
        return te, chunks, True
    if framing == "chunked-and-length":
        return [*te, (b"Content-Length", size)], chunks + b"0\r\n\r\n", False
    bad = draw(st.sampled_from([b"zz", b"-1", b"f" * 20, b"5;ext=\x1b", b"", b"3\r\nabcdef"]))
    return te, bad + b"\r\n" + body + b"\r\n0\r\n\r\n", True  # chunked-bad


def _split(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def _head(request_line: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return request_line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"


_ASPECTS = ("target", "method", "version", "token", "headers", "body", "framing")


@st.composite
def requests(draw: st.DrawFn, connection: bytes = b"close", framing: bool = True) -> Exchange:
    """A request as a sender could shape it. A few of its aspects break the rules (a raw
    byte in the target, a wrong token, a body that is not an object, lying framing
    unless `framing` is False); the others are valid HTTP and a valid delivery, their
    text still hostile (escaped controls in the ids, percent-encoded ones in the path),
    so many are accepted."""
    aspects = _ASPECTS if framing else _ASPECTS[:-1]
    broken = draw(st.sets(st.sampled_from(aspects), max_size=3))
    target = MARK + draw(paths if "target" in broken else tame_paths)
    if draw(st.booleans()):
        target += b"?" + draw(queries if "target" in broken else tame_queries)
    method = draw(methods) if "method" in broken else b"POST"
    version = draw(versions) if "version" in broken else b"HTTP/1.1"
    headers = [(b"Host", b"127.0.0.1"), (b"Connection", connection)]
    headers += draw(tokens) if "token" in broken else _RIGHT
    headers += draw(st.lists(header if "headers" in broken else tame_header, max_size=3))
    body = draw(bodies if "body" in broken else encoded(id_objects, ensure_ascii=True))
    framing, rest, close = draw(framed(body, tame="framing" not in broken))
    line = method + b" " + target + b" " + version
    return Exchange("request", _head(line, headers + framing) + rest, close)


_GOOD_HEAD = [(b"Host", b"127.0.0.1"), (b"Connection", b"close"), (b"Verifier-Token", RIGHT)]


@st.composite
def broken_http(draw: st.DrawFn) -> Exchange:
    """What no HTTP parser should take: bad request lines, huge or many headers, noise."""
    kind = draw(st.sampled_from(["line", "noise", "tls", "cut-head", "big-header", "many-headers"]))
    length = [(b"Content-Length", b"2")]
    if kind == "line":
        line = draw(
            st.sampled_from(
                [
                    b"POST",
                    b"POST " + MARK,
                    b"POST " + MARK + b" HTTP/1.1 extra",
                    b"\x00POST " + MARK + b" HTTP/1.1",
                    b"POST  " + MARK + b"  HTTP/1.1",
                    b"POST " + MARK + b"\x1b[31m HTTP/1.1",
                    b"\x16\x03\x01 " + MARK + b" HTTP/1.1",
                    b"POST " + MARK + b" HTTP/1.1\x00",
                ]
            )
        )
        return Exchange(kind, _head(line, _GOOD_HEAD + length) + b"{}", draw(st.booleans()))
    if kind == "noise":
        return Exchange(kind, draw(st.binary(min_size=1, max_size=600)), draw(st.booleans()))
    if kind == "tls":  # a ClientHello's start, sent to the plain port
        hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + draw(st.binary(max_size=64))
        return Exchange(kind, hello, draw(st.booleans()))
    if kind == "cut-head":  # the head stops mid-way and the client hangs up
        data = _head(b"POST " + MARK + b" HTTP/1.1", _GOOD_HEAD)
        return Exchange(kind, data[: draw(st.integers(1, len(data) - 2))], True)
    if kind == "big-header":
        size = draw(st.sampled_from([60_000, 65_000, 66_000, 70_000, 300_000]))
        headers = [*_GOOD_HEAD, (b"X-Big", b"\x1b" * 8 + b"a" * size), *length]
        return Exchange(kind, _head(b"POST " + MARK + b" HTTP/1.1", headers) + b"{}")
    count = draw(st.sampled_from([96, 97, 98, 99, 100, 101, 150, 2000]))
    headers = [*_GOOD_HEAD, *((b"X-H%d" % i, b"\x9b%d" % i) for i in range(count)), *length]
    return Exchange(kind, _head(b"POST " + MARK + b" HTTP/1.1", headers) + b"{}")


@st.composite
def pipelined(draw: st.DrawFn) -> Exchange:
    """Requests sent at once on one kept-alive connection, the last one closing it: the
    listener's limits and timers count each request of a connection afresh. Their
    framing is right, so each answer belongs to the request in its place; at most
    32 KiB in all, so they arrive in one read (a refusal after requests that ended
    in a read which began mid-request keeps the read's bytes: see http_guard)."""
    kept_alive = draw(st.lists(requests(b"keep-alive", framing=False), min_size=1, max_size=3))
    data = b"".join(r.data for r in [*kept_alive, draw(requests(framing=False))])
    assume(len(data) <= 32 * 1024)
    return Exchange("pipelined", data)


exchanges = st.one_of(requests(), requests(), requests(), broken_http(), pipelined())
volleys = st.lists(exchanges, min_size=3, max_size=10)
