from __future__ import annotations

import pytest

from tests.fakes.vendasta import RS256, RunningFake


@pytest.fixture
def vendasta(vendasta: RunningFake, monkeypatch: pytest.MonkeyPatch) -> RunningFake:
    """The fake Vendasta, with the CLI pointed at it through its environment."""
    monkeypatch.setenv("VWH_CREDENTIALS", str(RS256))
    monkeypatch.setenv("VWH_TOKEN_URL", vendasta.token_url)
    monkeypatch.setenv("VWH_BASE_URL", vendasta.base_url)
    return vendasta
