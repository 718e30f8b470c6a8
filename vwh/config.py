"""The project file, `vwh.toml`: defaults for every command, kept beside the code.

Found as ruff and pytest find theirs (the current directory, else the nearest parent),
it holds a `[step]` table for what describes the automation step (token header, extra
headers, ...) and one table per command whose keys are long option names. This module
reads the file and knows where each key is written, so an error names the file and the
line; which keys a command accepts is the CLI's business (its options are the schema).

Secrets never live in the file in clear: a secret option is given as `<name>-env` (an
environment variable to read) or `<name>-file` (a file only its owner can read).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vwh.errors import ConfigError
from vwh.text_file import read_text_file
from vwh.webhook import is_secret_name, mask_secret

FILE_NAME = "vwh.toml"
STEP_TABLE = "step"
# What describes the automation step: `[step]` sets these for every command that has them.
STEP_KEYS = frozenset(
    {
        "token",
        "token-header",
        "token-query",
        "token-cookie",
        "header",
        "query",
        "cookie",
        "expect-response",
    }
)
_SECRET_OPTION_WORDS = frozenset({"token", "secret", "password", "passwd", "key"})
_TABLE_LINE = re.compile(r"""^\s*\[\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*\]""")
_KEY_LINE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENTRY = re.compile(r"^\s*([^:=\s]+)\s*[:=]")  # 'Name: value' or 'name=value'


@dataclass(frozen=True)
class Setting:
    """One key of the file, with where it is written."""

    path: Path
    table: str
    key: str
    value: Any
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def error(self, message: str) -> ConfigError:
        """The one-line error for this key: `FILE:LINE: [table] key: message`."""
        return ConfigError(f"{self.where}: [{self.table}] {self.key}: {message}")


@dataclass(frozen=True)
class SecretRef:
    """A secret the file names but does not hold: an environment variable or a private file."""

    setting: Setting
    kind: str  # "env" or "file"

    @property
    def target(self) -> str:
        return str(self.setting.value)

    def describe(self) -> str:
        return f"${self.target}" if self.kind == "env" else self.target

    def resolve(self) -> str:
        """The secret itself, read now (only when no flag or environment variable gave one)."""
        if self.kind == "env":
            value = os.environ.get(self.target)
            if not value:
                raise self.setting.error(f"the environment variable {self.target} is not set")
            return value
        return _read_private_file(self.setting)


@dataclass
class ProjectFile:
    path: Path
    tables: dict[str, dict[str, Setting]] = field(default_factory=dict)
    table_lines: dict[str, int] = field(default_factory=dict)


def find_project_file(start: Path | None = None) -> Path | None:
    """`vwh.toml` in `start` (the current directory) or its nearest parent that has one."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def load_project_file(path: Path) -> ProjectFile:
    """Parse the file into its tables; a syntax error or a stray key names file and line."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    text = read_text_file(path, ConfigError, label="project file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(str(exc))
        raise ConfigError(f"{path}:{line}: not valid TOML: {str(exc).split(' (at ')[0]}") from None
    lines = _key_lines(text)
    project = ProjectFile(path)
    for table, values in data.items():
        table_line = project.table_lines[table] = lines.get((table, None), 1)
        if not isinstance(values, dict):
            raise ConfigError(
                f"{path}:{table_line}: {table}: a key outside any table; put it in [step] or"
                " in a table named after a command, e.g. [listen]"
            )
        project.tables[table] = {
            key: Setting(path, table, key, value, lines.get((table, key), table_line))
            for key, value in values.items()
        }
    return project


def is_secret_option(name: str) -> bool:
    """An option whose value is a secret: its last word says so (`token`, `forward-token`).

    `token-header` and `token-cookie` name where the token goes, and `credentials` is
    the path of a file, so none of them is one.
    """
    return name.rsplit("-", 1)[-1] in _SECRET_OPTION_WORDS


def secret_ref(setting: Setting) -> tuple[str, SecretRef] | None:
    """For a `<secret>-env` or `<secret>-file` key: the secret option's name and the ref."""
    base, _, kind = setting.key.rpartition("-")
    if kind not in ("env", "file") or not base or not is_secret_option(base):
        return None
    if not isinstance(setting.value, str) or not setting.value.strip():
        what = "an environment variable's name" if kind == "env" else "a file's path"
        raise setting.error(f"expected {what} as a string")
    if kind == "env" and not _ENV_NAME.fullmatch(setting.value):
        # Not echoed: what was written here may be the secret itself.
        raise setting.error(
            f"expected the name of an environment variable (like VWH_TOKEN), not the {base}"
        )
    return base, SecretRef(setting, kind)


def clear_secret_message(setting: Setting, name: str) -> str:
    """How to move a secret written in clear out of the file."""
    var = "VWH_" + re.sub(r"[^A-Z0-9]+", "_", name.upper())
    return (
        f'a secret in clear; move it out of the file: {name}-env = "{var}" (an environment'
        f' variable) or {name}-file = "~/.config/vwh/{name}" (a file only you can read,'
        " chmod 600)"
    )


def secret_entry(value: str) -> str | None:
    """The name of a `Name: value` or `name=value` entry whose value is a secret."""
    match = _ENTRY.match(value)
    if match and is_secret_name(match.group(1)):
        return match.group(1)
    return None


def mask_entry(value: str) -> str:
    """A `Name: value` entry with its value masked when the name is a secret's."""
    name = secret_entry(value)
    if name is None:
        return value
    separator = value[value.index(name) + len(name) :].lstrip()[:1]
    rest = value.split(separator, 1)[1].strip()
    return f"{name}{separator}{' ' if separator == ':' else ''}{mask_secret(rest)}"


def _read_private_file(setting: Setting) -> str:
    path = Path(str(setting.value)).expanduser()
    if not path.is_absolute():
        path = setting.path.parent / path
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise setting.error(f"{path}: no such file") from None
    except OSError as exc:
        raise setting.error(f"{path}: cannot read ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise setting.error(
            f"{path} can be read by others (mode {stat.S_IMODE(mode):04o}): chmod 600 {path}"
        )
    value = read_text_file(path, setting.error).strip()
    if not value:
        raise setting.error(f"{path} is empty")
    return value


def _decode_error_line(message: str) -> int:
    match = re.search(r"at line (\d+)", message)
    return int(match.group(1)) if match else 1


def _key_lines(text: str) -> dict[tuple[str, str | None], int]:
    """Where each table and `key =` is first written; enough for a TOML file of tables."""
    found: dict[tuple[str, str | None], int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_LINE.match(line)
        if header:
            table = _unquote(header.group(1))
            found.setdefault((table, None), number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            found.setdefault((table, _unquote(key.group(1))), number)
            if not table:
                found.setdefault((_unquote(key.group(1)), None), number)
    return found


def _unquote(name: str) -> str:
    return name[1:-1] if name[:1] in "\"'" else name
