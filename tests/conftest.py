from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.vendasta import ES256, RS256, RunningFake, running_fake


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store, cache, config and home; no colour; fixed width."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(__import__("os").environ):
        if name.startswith("VWH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("VWH_STORE", str(tmp_path / "store.sqlite3"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    return home


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture(scope="session")
def vendasta_server() -> Iterator[RunningFake]:
    """One fake Vendasta (API and token endpoint) on a loopback port for the session."""
    with running_fake() as running:
        yield running


@pytest.fixture
def vendasta(vendasta_server: RunningFake) -> RunningFake:
    """The fake, reset, with both throwaway service accounts registered."""
    vendasta_server.fake.reset()
    vendasta_server.fake.register(RS256)
    vendasta_server.fake.register(ES256)
    return vendasta_server
