"""`vwh sign` as a user runs it: the printed request works when pasted, and nothing is sent."""

from __future__ import annotations

import shlex
import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, ThreadedServer, invoke, listener
from tests.scripted import Scripted
from vwh.delivery import USER_AGENT
from vwh.store import CaptureStore

ORDER = (FIXTURES / "payloads" / "order.json").read_bytes()
TOKEN = "s3cret 'verifier' token"  # quotes and spaces: the shell quoting must hold


@pytest.fixture
def order(tmp_path: Path) -> str:
    path = tmp_path / "order.json"
    path.write_bytes(ORDER)
    return str(path)


def test_raw_http_by_default_with_the_token_and_nothing_sent(order: str) -> None:
    app = Scripted(200)
    with ThreadedServer(app) as server:
        r = invoke("sign", order, "--to", server.url + "/h", "--token", TOKEN, "-H", "X-A: 1")
    assert r.exit_code == 0 and app.count == 0
    head, _, body = r.stdout.partition("\r\n\r\n")
    assert head.split("\r\n") == [
        "POST /h HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"User-Agent: {USER_AGENT}",
        f"Verifier-Token: {TOKEN}",
        "X-A: 1",
        f"Content-Length: {len(ORDER)}",
    ]
    assert body.encode() == ORDER  # piped: exactly the body, nothing after it


def test_the_curl_command_run_by_a_real_curl_is_accepted(order: str, store_path: Path) -> None:
    with listener("--token", TOKEN) as proc:
        r = invoke("sign", order, "--curl", "--to", proc.url + "/hooks", "--token", TOKEN)
        assert r.exit_code == 0
        curl = subprocess.run(
            ["bash", "-c", r.stdout],  # pasted as printed
            capture_output=True,
            timeout=30,
        )
    assert curl.returncode == 0, curl.stderr
    assert b'"received":true' in curl.stdout
    with CaptureStore(store_path) as store:
        [kept] = list(store.iter_all())
    assert kept.verdict == "ok" and kept.body == ORDER and kept.path == "/hooks"
    assert kept.header("user-agent") == USER_AGENT


def test_the_raw_request_written_to_a_socket_is_accepted(order: str, store_path: Path) -> None:
    with listener("--token", TOKEN) as proc:
        raw = invoke("sign", order, "--to", proc.url, "--token", TOKEN).stdout.encode()
        with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
            sock.sendall(raw)
            answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")
    with CaptureStore(store_path) as store:
        [kept] = list(store.iter_all())
    assert kept.verdict == "ok" and kept.body == ORDER


def test_httpie_command_pipes_the_exact_body(order: str) -> None:
    r = invoke("sign", order, "--httpie", "--token", TOKEN)
    printf, _, command = r.stdout.partition(" | ")
    assert shlex.split(printf) == ["printf", "%s", ORDER.decode()]
    words = shlex.split(command.replace("\\\n", ""))
    assert words[:3] == ["http", "POST", "http://127.0.0.1:8787/"]
    assert f"Verifier-Token:{TOKEN}" in words


def test_json_lines_give_one_request_each(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n')
    r = invoke("sign", str(path), "--curl")
    assert r.stdout.count("curl ") == 2 and "Verifier-Token" not in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json"], "missing.json: no such file"),
        (["ORDER", "--curl", "--httpie"], "choose one of --curl and --httpie"),
        (["ORDER", "--to", "ftp://x/"], "bad URL 'ftp://x/'"),
        (["ORDER", "-H", "nope"], "bad header 'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2(order: str, args: list[str], message: str) -> None:
    r = invoke("sign", *[order if a == "ORDER" else a for a in args])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith(f"vwh: error: {message}") and r.stderr.count("\n") == 1


# The Send a webhook step: the token in a query parameter or cookie; copied curl requests.
def test_the_token_in_a_query_parameter_or_a_cookie(order: str) -> None:
    query = invoke("sign", order, "--to", "http://h/x?a=1", "--token", "t k", "--token-query",
                   "sig", "--query", "b=2", "--cookie", "theme=dark")  # fmt: skip
    cookie = invoke("sign", order, "--to", "http://h/x", "--token", "tk", "--token-cookie", "s",
                    "--cookie", "theme=dark")  # fmt: skip
    assert query.exit_code == 0 and cookie.exit_code == 0, query.stderr
    assert query.stdout.startswith("POST /x?a=1&b=2&sig=t%20k HTTP/1.1\r\n")
    assert "\r\nCookie: theme=dark\r\n" in query.stdout and "Verifier-Token" not in query.stdout
    assert "\r\nCookie: theme=dark; s=tk\r\n" in cookie.stdout


def test_sign_curl_file_prints_the_copied_request(tmp_path: Path) -> None:
    copied = FIXTURES / "curl" / "send-a-webhook.sh"
    raw = invoke("sign", str(copied), "--to", "http://127.0.0.1:8787")
    as_curl = invoke("sign", "--curl", str(copied))
    assert raw.exit_code == 0 and as_curl.exit_code == 0, raw.stderr
    assert raw.stdout.startswith(
        "POST /vendasta/order-created?source=vendasta&signature=s3cret-signature-1234 HTTP/1.1\r\n"
        "Host: 127.0.0.1:8787\r\nContent-Type: application/json\r\nX-Partner: 9YW9\r\n"
        "Cookie: session=abc123; theme=dark\r\n"
    )
    words = shlex.split(as_curl.stdout)
    assert words[:2] == [
        "curl",
        "https://hooks.example.test/vendasta/order-created?source=vendasta"
        "&signature=s3cret-signature-1234",
    ]
    set_ = invoke("sign", str(copied), "--set", "marketId=m2")
    assert '"marketId":"m2"' in set_.stdout
    refused = invoke("sign", str(FIXTURES / "curl" / "unknown-option.sh"))
    assert refused.exit_code == 2 and "curl option --proxy" in refused.stderr
    not_copied = invoke("sign", str(FIXTURES / "payloads" / "order.json"), "--set", "a=b")
    assert not_copied.exit_code == 2 and "PAYLOAD is not one" in not_copied.stderr


def test_sign_reads_a_copied_curl_from_stdin(tmp_path: Path) -> None:
    text = (FIXTURES / "curl" / "placeholder.sh").read_text()
    r = invoke("sign", "-", "--httpie", input=text)
    assert r.exit_code == 0, r.stderr
    assert "http POST https://hooks.example.test/hook" in r.stdout
    assert "{{account.id}}" in r.stdout
