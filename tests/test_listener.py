"""The listener as a library: the URL it says it listens on."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from vwh.listener import YOUNG_GC_ALLOCATIONS, Listener
from vwh.receiver_settings import ReceiverSettings


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


def test_the_young_generation_is_collected_less_often_only_while_serving(tmp_path: Path) -> None:
    listener = Listener(ReceiverSettings(), "127.0.0.1", 0, tmp_path / "store.sqlite3")
    before = gc.get_threshold()
    serving: list[tuple[int, ...]] = []

    def started() -> None:
        serving.append(gc.get_threshold())
        listener.stop()

    listener.run(on_started=started)
    assert serving == [(YOUNG_GC_ALLOCATIONS, *before[1:])]
    assert gc.get_threshold() == before
