"""Reading webhook bodies from files: checked, and kept byte for byte."""

from __future__ import annotations

from pathlib import Path

from vwh.errors import InputError
from vwh.webhook import InvalidBody, parse_body


def read_json_object_file(path: Path) -> bytes:
    """The file's bytes, once checked to hold one JSON object."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        parse_body(raw)
    except InvalidBody as exc:
        raise InputError(f"{path}: {exc}") from None
    return raw
