"""Where vwh keeps its files: the capture store and the token cache."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "vwh"


def default_store_path() -> Path:
    """The capture store: `VWH_STORE`, else `captures.sqlite3` in the user's data dir."""
    env = os.environ.get("VWH_STORE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path(APP_NAME) / "captures.sqlite3"


def cache_dir() -> Path:
    """Where minted access tokens are cached (`VWH_CACHE_DIR` overrides)."""
    env = os.environ.get("VWH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME)
