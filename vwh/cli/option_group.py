"""A group of options several commands share, declared once and handed over as one value.

A command names one parameter (`api_options`, `request_filter`); `option_group` puts the
group's options where that parameter stands, so `--help` lists them in that place, and
calls the command with the values built into that one parameter.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Command = TypeVar("Command", bound=Callable[..., Any])
OptionSpec = tuple[str, Any, Callable[[], Any]]  # (name, type hint, typer.Option factory)


def option_group(
    parameter: str, options: Sequence[OptionSpec], build: Callable[..., Any]
) -> Callable[[Command], Command]:
    """Replace the command's `parameter` by `options`; pass `build(**their values)` to it."""
    names = [name for name, _, _ in options]

    def decorate(command: Command) -> Command:
        params = list(inspect.signature(command).parameters.values())
        at = [p.name for p in params].index(parameter)
        keyword = inspect.Parameter.KEYWORD_ONLY
        group = [
            inspect.Parameter(name, keyword, default=make(), annotation=hint)
            for name, hint, make in options
        ]
        kept = [p.replace(kind=keyword) for p in params]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            return command(**kwargs, **{parameter: build(**given)})

        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            kept[:at] + group + kept[at + 1 :]
        )
        hints = {k: v for k, v in command.__annotations__.items() if k != parameter}
        run.__annotations__ = {**hints, **{name: hint for name, hint, _ in options}}
        return run  # type: ignore[return-value]

    return decorate
