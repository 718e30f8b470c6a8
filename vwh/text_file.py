"""Reading a small text file the user named (a project file, credentials, a secret file),
with each way it can fail said once, in one line naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vwh.errors import VwhError


def read_text_file(
    path: Path,
    error: Callable[[str], VwhError],
    *,
    label: str = "",
    not_text: str = "not UTF-8 text",
) -> str:
    """The file's UTF-8 text, else `error("<label> <path>: why")` (no such file, a
    directory, `not_text`, or the OS's reason)."""
    where = f"{label} {path}" if label else str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{where}: no such file") from None
    except IsADirectoryError:
        raise error(f"{where}: is a directory") from None
    except UnicodeDecodeError:
        raise error(f"{where}: {not_text}") from None
    except OSError as exc:
        raise error(f"{where}: cannot read ({exc.strerror})") from None
