from __future__ import annotations

import json
from pathlib import Path

import pytest

from vwh.curl import CurlError, parse_curl, shell_words
from vwh.delivery import build_request
from vwh.signing import render_curl

CURL = Path(__file__).parent.parent / "fixtures" / "curl"


def test_a_copied_multi_line_request_keeps_everything() -> None:
    request = parse_curl((CURL / "send-a-webhook.sh").read_text())
    assert request.method == "POST"
    assert request.url == (
        "https://hooks.example.test/vendasta/order-created?source=vendasta"
        "&signature=s3cret-signature-1234"
    )
    assert request.headers == (
        ("Content-Type", "application/json"),
        ("X-Partner", "9YW9"),
        ("Cookie", "session=abc123; theme=dark"),
    )
    assert json.loads(request.body)["orderId"] == "AG-7PQTGLLXQQ:ORD-S548DKHMKX"


def test_data_raw_ansi_c_quotes_and_cookies() -> None:
    request = parse_curl((CURL / "data-raw-cookie.sh").read_text())
    assert request.method == "POST"  # implied by the data
    assert ("Signature", "s3cret-signature-1234") in request.headers
    assert ("Cookie", "vwh_token=s3cret-signature-1234") in request.headers
    assert json.loads(request.body)["note"] == "café 'quoted'"


def test_an_unknown_option_is_named_not_dropped() -> None:
    with pytest.raises(CurlError, match="curl option --proxy is not understood"):
        parse_curl((CURL / "unknown-option.sh").read_text())


def test_grouped_short_flags_attached_values_and_comments() -> None:
    request = parse_curl((CURL / "placeholder.sh").read_text())
    assert request.method == "POST"
    assert request.url == "https://hooks.example.test/hook"
    assert ("Signature", "s3cret-signature-1234") in request.headers


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("wget http://x", "not a curl command"),
        ("curl -F a=b http://x", "-F sends a multipart form"),
        ("curl -G -d a=1 http://x", "-G moves the body"),
        ("curl http://x -d '{}' | jq", "shell syntax '|'"),
        ("curl http://x -d '{", "single quote is never closed"),
        ("curl -H", "needs a value"),
        ("curl http://a http://b", "two URLs"),
        ("curl -b cookies.txt http://x", "reads cookies from a file"),
        ("curl -d @- http://x", "reads the body from stdin"),
        ("curl -H 'Sig: $UNSET_VWH_VAR' http://x", None),  # single quotes: no expansion
        ('curl -H "Sig: $UNSET_VWH_VAR" http://x', "UNSET_VWH_VAR, which is not set"),
        ("curl -H 'bad header' http://x", "bad header"),
        ("curl -d '{}'", "has no URL"),
    ],
)
def test_what_cannot_be_sent_is_one_clear_error(command: str, message: str | None) -> None:
    if message is None:
        assert ("Sig", "$UNSET_VWH_VAR") in parse_curl(command, env={}).headers
        return
    with pytest.raises(CurlError, match=message):
        parse_curl(command, env={})


def test_variables_expand_from_the_environment_as_a_shell_would() -> None:
    request = parse_curl(
        'curl http://x -H "Signature: ${SIG}" -H Other:\\ $SIG -d "{\\"a\\":1}"',
        env={"SIG": "tok en"},
    )
    assert request.headers == (("Signature", "tok en"), ("Other", "tok en"))
    assert request.body == b'{"a":1}'


def test_body_files_follow_curls_rules(tmp_path: Path) -> None:
    (tmp_path / "body.json").write_bytes(b'{"a":\r\n 1}\n')
    data = parse_curl("curl http://x -d @body.json", cwd=tmp_path)
    binary = parse_curl("curl http://x --data-binary @body.json", cwd=tmp_path)
    assert data.body == b'{"a": 1}'  # -d drops line breaks
    assert binary.body == b'{"a":\r\n 1}\n'
    with pytest.raises(CurlError, match=r"cannot read the body file missing\.json"):
        parse_curl("curl http://x -d @missing.json", cwd=tmp_path)


def test_json_option_adds_its_headers_and_user_sets_basic_auth() -> None:
    request = parse_curl("curl --json '{\"a\":1}' -u me:pw http://x")
    assert request.method == "POST"
    assert ("Content-Type", "application/json") in request.headers
    assert ("Accept", "application/json") in request.headers
    assert ("Authorization", "Basic bWU6cHc=") in request.headers


def test_what_vwh_sign_prints_reads_back_exactly() -> None:
    body = b'{"note":"it\'s \\"quoted\\" \\u00e9 $HOME `x`","orderId":"AG-1:ORD-2"}'
    sent = build_request(
        "http://127.0.0.1:8787/hooks?x=1&y=%20",
        body,
        token="tö ken",
        extra_headers=[("X-Empty", ""), ("X-Odd", "a'b\"c")],
    )
    read = parse_curl(render_curl(sent), env={})
    assert (read.method, read.url, read.body) == (sent.method, sent.url, sent.body)
    assert read.headers == sent.headers


def test_shell_words_split_like_a_posix_shell() -> None:
    assert shell_words("a 'b c' \"d $X\" e\\ f \\\n g $'h\\ti' #c", {"X": "x"}) == [
        "a",
        "b c",
        "d x",
        "e f",
        "g",
        "h\ti",
    ]
