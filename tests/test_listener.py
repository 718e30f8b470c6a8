"""The listener as a library: the URL it says it listens on."""

from __future__ import annotations

from pathlib import Path

import pytest

from vwh.listener import Listener
from vwh.receiver import ReceiverSettings


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("[::1]", "[::1]"), ("localhost", "localhost")],
)
def test_url_brackets_an_ipv6_host_once(tmp_path: Path, host: str, shown: str) -> None:
    listener = Listener(ReceiverSettings(), host, 0, tmp_path / "store.sqlite3")
    try:
        assert listener.url == f"http://{shown}:{listener.port}/"
    finally:
        listener.sock.close()
        listener.store.close()
