"""`vwh sign` renderings: exact raw HTTP, and shell commands that survive a paste."""

from __future__ import annotations

import shlex

import pytest

from vwh.delivery import USER_AGENT, OutgoingRequest, build_request
from vwh.signing import render, render_curl, render_httpie, render_raw

BODY = b'{\n  "accountId": "AG-1",\n  "note": "it\'s $HOME `x` \\"q\\""\n}\n'


def request(url: str = "http://127.0.0.1:8787/hooks?a=1&b=2", **kw: object) -> OutgoingRequest:
    return build_request(url, BODY, token='t0k\'en "x"', **kw)  # type: ignore[arg-type]


def test_raw_is_the_request_on_the_wire() -> None:
    text = render_raw(request(extra_headers=[("X-Empty", "")]))
    head, _, body = text.partition("\r\n\r\n")
    assert head.split("\r\n") == [
        "POST /hooks?a=1&b=2 HTTP/1.1",
        "Host: 127.0.0.1:8787",
        "Content-Type: application/json",
        f"User-Agent: {USER_AGENT}",
        'Verifier-Token: t0k\'en "x"',
        "X-Empty: ",
        f"Content-Length: {len(BODY)}",
    ]
    assert body.encode() == BODY


@pytest.mark.parametrize(
    ("url", "target", "host"),
    [
        ("https://example.com", "/", "example.com"),
        ("http://example.com:80/a", "/a", "example.com"),
        ("http://[::1]:9000/x", "/x", "[::1]:9000"),
        ("http://h/AG-1:ORD-2?q=a b&e=é", "/AG-1:ORD-2?q=a+b&e=%C3%A9", "h"),
    ],
)
def test_raw_request_target_and_host(url: str, target: str, host: str) -> None:
    lines = render_raw(request(url)).split("\r\n")
    assert lines[0] == f"POST {target} HTTP/1.1" and lines[1] == f"Host: {host}"


def test_curl_quotes_every_word_so_the_shell_gives_them_back() -> None:
    text = render_curl(request(extra_headers=[("X-Empty", "")]))
    words = shlex.split(text.replace("\\\n", ""))
    assert words == [
        "curl",
        "http://127.0.0.1:8787/hooks?a=1&b=2",
        "--header",
        "Content-Type: application/json",
        "--header",
        f"User-Agent: {USER_AGENT}",
        "--header",
        'Verifier-Token: t0k\'en "x"',
        "--header",
        "X-Empty;",  # curl's spelling of an empty header
        "--data-binary",
        BODY.decode(),
    ]


def test_curl_spells_out_a_method_other_than_post() -> None:
    text = render_curl(build_request("http://h/", b"", method="GET"))
    assert shlex.split(text.replace("\\\n", ""))[:4] == ["curl", "--request", "GET", "http://h/"]
    assert "--data-binary" not in text


def test_httpie_pipes_the_body_and_passes_headers_as_items() -> None:
    text = render_httpie(request())
    printf, _, command = text.partition(" | ")
    assert shlex.split(printf) == ["printf", "%s", BODY.decode()]
    assert shlex.split(command.replace("\\\n", "")) == [
        "http",
        "POST",
        "http://127.0.0.1:8787/hooks?a=1&b=2",
        "Content-Type:application/json",
        f"User-Agent:{USER_AGENT}",
        'Verifier-Token:t0k\'en "x"',
    ]


def test_each_option_gets_its_own_line() -> None:
    lines = render(request(), "curl").splitlines()
    assert lines[0] == "curl 'http://127.0.0.1:8787/hooks?a=1&b=2' \\"
    assert lines[1].startswith("  --header 'Content-Type: application/json' \\")
