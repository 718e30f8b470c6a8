"""The one output object every command renders through.

Data goes to stdout, diagnostics to stderr. On a terminal data is drawn with Rich;
piped, it is plain lines; with --json, one JSON document per line. Rich honours
NO_COLOR by itself. Webhook bodies and headers are untrusted: they are printed with
markup off, never interpreted.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape


class Output:
    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self._closed = False

    @property
    def rich(self) -> bool:
        """True when stdout is a terminal and no JSON was asked for."""
        return self.out.is_terminal and not self.json_mode

    def render(self, renderable: RenderableType) -> None:
        self.out.print(renderable)

    def line(self, text: str) -> None:
        """One plain line of data, exactly as given (no markup, no wrapping)."""
        out = sys.stdout
        out.write(text + "\n")
        out.flush()

    def lines(self, texts: list[str]) -> None:
        """Several lines in one write: the listener prints a batch of requests at once.

        A reader that went away (`vwh listen | head`) only stops the printing: the
        listener goes on keeping requests.
        """
        if self._closed or not texts:
            return
        try:
            sys.stdout.write("\n".join(texts) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            self._closed = True

    def json(self, document: Any) -> None:
        """One JSON document on one line, for scripts and jq."""
        self.line(json.dumps(document, ensure_ascii=False, default=str))

    def note(self, text: str) -> None:
        """A diagnostic for people; `text` may use Rich markup (our own text only)."""
        self.err.print(text)

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {escape(text)}")


def untrusted(text: str) -> str:
    """Escape text from the outside world before it goes into a markup string."""
    return escape(text)
