"""vwh.toml meets the commands: each key checked against a command's real options.

The settings become the command's Click `default_map`, so Click's own rule gives the
precedence: a flag beats an environment variable beats the file beats the built-in
default, and `ctx.get_parameter_source` says which one applied. Nothing here knows
any option by name: a command's options are the schema, whatever options it has.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from vwh.config import (
    STEP_KEYS,
    STEP_TABLE,
    ProjectFile,
    SecretRef,
    Setting,
    clear_secret_message,
    find_project_file,
    is_secret_option,
    load_project_file,
    secret_entry,
    secret_ref,
)
from vwh.errors import ConfigError, UsageError

META_KEY = "vwh.project"


@dataclass(frozen=True)
class Origin:
    """Where a command's default came from in the file (and the secret it names, if one)."""

    setting: Setting
    secret: SecretRef | None = None

    @property
    def where(self) -> str:
        extra = f" ({self.setting.key} {self.secret.describe()})" if self.secret else ""
        return f"{self.setting.where} [{self.setting.table}]{extra}"


@dataclass
class ProjectState:
    """What the root command found: the file (or None) and why no file, when none."""

    path: Path | None
    defaults: ProjectDefaults | None = None
    reason: str = ""


def long_name(param: Any) -> str | None:
    """`--token-header` -> `token-header`; None for arguments and short-only options."""
    if getattr(param, "param_type_name", "") != "option":
        return None
    return next((opt[2:] for opt in param.opts if opt.startswith("--")), None)


def options_of(command: Any) -> dict[str, Any]:
    """A command's options by long name: the keys its table may use."""
    return {name: p for p in command.params if (name := long_name(p)) and name != "help"}


class ProjectDefaults:
    """The file's settings as default maps, checked against the commands' own options."""

    def __init__(self, project: ProjectFile, ctx: Any) -> None:
        self.project = project
        self.ctx = ctx  # the root context: its group builds the commands
        self._options: dict[str, dict[str, Any]] = {}

    def options(self, command: str) -> dict[str, Any]:
        if command not in self._options:
            built = self.ctx.command.get_command(self.ctx, command)
            self._options[command] = options_of(built) if built is not None else {}
        return self._options[command]

    def check(self, first: str | None = None) -> None:
        """Every table and key, so a mistake shows whichever command runs."""
        commands = self.ctx.command.list_commands(self.ctx)
        for table, settings in self.project.tables.items():
            if table != STEP_TABLE and table not in commands:
                line = self.project.table_lines.get(table, 1)
                raise ConfigError(
                    f"{self.project.path}:{line}: unknown table [{table}]: use [{STEP_TABLE}]"
                    f" or a command's name ({', '.join(commands)})"
                )
            for setting in settings.values():
                if table == STEP_TABLE:
                    self._check_step(setting, commands, first)
                else:
                    self._entry(setting, self.options(table), table)

    def _check_step(self, setting: Setting, commands: list[str], first: str | None) -> None:
        ref = secret_ref(setting)
        name = ref[0] if ref else setting.key
        if name not in STEP_KEYS:
            raise setting.error(
                f"not a [{STEP_TABLE}] setting (those are {', '.join(sorted(STEP_KEYS))});"
                " put it in the table of the command it is for, e.g. [listen]"
            )
        order = [first, *commands] if first in commands else commands
        for command in order:
            options = self.options(command)
            if name in options:
                self._entry(setting, options, command)
                return
        raise setting.error(f"no command has a --{name} option")

    def _entry(
        self, setting: Setting, options: dict[str, Any], command: str
    ) -> tuple[str, Any, Origin]:
        """(parameter name, default_map value, origin) for one key, or a one-line error."""
        ref = secret_ref(setting)
        if ref is not None:
            name, secret = ref
            if name not in options:
                raise setting.error(f"`vwh {command}` has no --{name} option")
            return options[name].name, secret.resolve, Origin(setting, secret)
        param = options.get(setting.key)
        if param is None:
            close = difflib.get_close_matches(setting.key, list(options), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise setting.error(f"unknown key: `vwh {command}` has no --{setting.key}{hint}")
        if is_secret_option(setting.key):
            raise setting.error(clear_secret_message(setting, setting.key))
        return param.name, self._value(setting, param), Origin(setting)

    def _value(self, setting: Setting, param: Any) -> Any:
        """The value as Click will read it, converted once now so a bad one names its line."""
        value = setting.value
        if param.multiple:
            value = value if isinstance(value, list) else [value]
            if not all(_scalar(item) for item in value):
                raise setting.error("expected a list of strings or numbers")
            for item in value:
                name = secret_entry(item) if isinstance(item, str) else None
                if name:
                    raise setting.error(
                        f"the value of {name} is a secret: give it on the command line"
                        " (from an environment variable), not in the file"
                    )
            value = [self._path(setting, param, item) for item in value]
        elif not _scalar(value):
            raise setting.error("expected a single value (a string, a number or true/false)")
        else:
            value = self._path(setting, param, value)
        try:
            param.type_cast_value(self.ctx, value)
        except typer.BadParameter as exc:
            raise setting.error(exc.message) from None
        return value

    def _path(self, setting: Setting, param: Any, value: Any) -> Any:
        """A relative path in the file is relative to the file, as in ruff's and pytest's."""
        is_path = any(cls.__name__ in ("Path", "TyperPath") for cls in type(param.type).__mro__)
        if not is_path or not isinstance(value, str):
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else setting.path.parent / path)

    def for_command(self, command: str) -> tuple[dict[str, Any], dict[str, Origin]]:
        """The command's default_map (`[step]` first, its own table over it), and origins."""
        options = self.options(command)
        defaults: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        step = self.project.tables.get(STEP_TABLE, {})
        for table, settings in ((STEP_TABLE, step), (command, self.project.tables.get(command))):
            for setting in (settings or {}).values():
                ref = secret_ref(setting)
                if table == STEP_TABLE and (ref[0] if ref else setting.key) not in options:
                    continue  # a step setting this command has no option for
                name, value, origin = self._entry(setting, options, command)
                defaults[name], origins[name] = value, origin
        return defaults, origins


def apply_project_file(ctx: Any, config: str | None, no_config: bool) -> None:
    """Find, read and check the project file; give the command about to run its defaults."""
    state = _state(ctx, config, no_config)
    ctx.meta[META_KEY] = state
    if state.path is None:
        return
    state.defaults = ProjectDefaults(load_project_file(state.path), ctx)
    command = ctx.invoked_subcommand
    state.defaults.check(command)
    if command is not None:
        ctx.default_map = {command: state.defaults.for_command(command)[0]}


def _state(ctx: Any, config: str | None, no_config: bool) -> ProjectState:
    from_flag = getattr(ctx.get_parameter_source("config"), "name", "") == "COMMANDLINE"
    if no_config and from_flag:
        raise UsageError("--config and --no-config: choose one")
    if no_config:
        return ProjectState(None, reason="--no-config")
    if config:
        path = Path(config).expanduser()
        if not path.is_file():
            how = "--config" if from_flag else "VWH_CONFIG"
            raise ConfigError(f"project file {path} ({how}): no such file")
        return ProjectState(path)
    found = find_project_file()
    return ProjectState(found, reason="" if found else f"no vwh.toml here ({os.getcwd()}) or above")


def project_state(ctx: Any) -> ProjectState:
    """The state the root command recorded (a bare one when it recorded none)."""
    state = ctx.find_root().meta.get(META_KEY)
    return state if isinstance(state, ProjectState) else ProjectState(None, reason="not loaded")


def resolver_or_error(value: Any) -> tuple[Any, str | None]:
    """A default_map value made plain: a secret resolved now, or the reason it cannot be."""
    if not callable(value):
        return value, None
    try:
        return value(), None
    except ConfigError as exc:
        return None, str(exc)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))
