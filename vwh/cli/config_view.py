"""What `vwh config` shows: each option's effective value and its source, secrets masked.

The values are the ones Click itself settles on: each command's context is made as if
it were run (resiliently, nothing invoked), with the project file as its default_map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vwh.cli.project import Origin, ProjectState, options_of, resolver_or_error
from vwh.config import is_secret_option, mask_entry
from vwh.sanitize import inert
from vwh.webhook import mask_secret

_SOURCES = {
    "COMMANDLINE": "flag",
    "ENVIRONMENT": "environment",
    "DEFAULT_MAP": "file",
    "DEFAULT": "default",
    "PROMPT": "prompt",
}


@dataclass(frozen=True)
class Row:
    command: str
    option: str
    value: Any  # as shown: secrets masked, paths as text, lists as lists
    source: str  # flag, environment, file or default
    where: str | None  # the variable, or the file and line

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "option": self.option,
            "value": self.value,
            "source": self.source,
            "where": self.where,
        }


def effective_settings(
    root: Any, state: ProjectState, commands: list[str], args: list[str]
) -> list[Row]:
    rows: list[Row] = []
    for name in commands:
        command = root.command.get_command(root, name)
        defaults, origins = state.defaults.for_command(name) if state.defaults else ({}, {})
        resolved = {key: resolver_or_error(value) for key, value in defaults.items()}
        default_map = {key: value for key, (value, error) in resolved.items() if error is None}
        ctx = command.make_context(
            name, list(args), parent=root, default_map=default_map, resilient_parsing=True
        )
        for option, param in options_of(command).items():
            error = resolved.get(param.name, (None, None))[1]
            source = getattr(ctx.get_parameter_source(param.name), "name", "DEFAULT")
            shown = _shown(option, ctx.params.get(param.name))
            where = _where(source, param, origins.get(param.name))
            if error is not None and source == "DEFAULT":
                source, shown, where = "DEFAULT_MAP", None, error
            rows.append(Row(name, option, shown, _SOURCES.get(source, source.lower()), where))
    return rows


def plain_lines(state: ProjectState, rows: list[Row]) -> list[str]:
    head = f"project file: {state.path}" if state.path else f"project file: none ({state.reason})"
    if not rows:
        return [head, "every setting is at its default"]
    table = [
        (row.command, f"--{row.option}", _text(row.value), row.source, row.where or "")
        for row in rows
    ]
    widths = [max(len(inert(cells[i])) for cells in table) for i in range(4)]
    lines = [head]
    for cells in table:
        padded = [inert(cell).ljust(width) for cell, width in zip(cells[:4], widths, strict=True)]
        lines.append("  ".join([*padded, inert(cells[4])]).rstrip())
    return lines


def _shown(option: str, value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_shown(option, item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value.value) if hasattr(value, "value") else str(value)  # an Enum
    if is_secret_option(option):
        return mask_secret(text)
    return mask_entry(text)


def _where(source: str, param: Any, origin: Origin | None) -> str | None:
    if source == "ENVIRONMENT":
        names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
        return next((name for name in names if os.environ.get(name)), names[0] if names else None)
    if source == "DEFAULT_MAP" and origin is not None:
        return origin.where
    return None


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value) or "-"
    if isinstance(value, Path):
        return str(value)
    return str(value)
