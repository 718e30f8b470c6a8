"""The one output object every command renders through.

Data goes to stdout, diagnostics to stderr. On a terminal data is drawn with Rich;
piped, it is plain lines; with --json, one JSON document per line. Rich honours
NO_COLOR by itself. Webhook bodies and headers are untrusted: they are printed with
markup off, never interpreted, and made inert (`vwh.sanitize`) before they get here;
`line`, `lines` and `json` check again, so no caller can emit a raw control character.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape

from vwh.sanitize import inert, json_line


class Output:
    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self._closed = False
        for stream in (sys.stdout, sys.stderr):
            # A terminal that cannot encode a character (a latin-1 locale and an emoji)
            # shows its escape instead of stopping every later line.
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="backslashreplace")

    @property
    def rich(self) -> bool:
        """True when stdout is a terminal and no JSON was asked for."""
        return self.out.is_terminal and not self.json_mode

    def render(self, renderable: RenderableType) -> None:
        self.out.print(renderable)

    def line(self, text: str) -> None:
        """One plain line of data, as given (no markup, no wrapping), never raw controls."""
        out = sys.stdout
        out.write(never_raw(text) + "\n")
        out.flush()

    def lines(self, texts: list[str]) -> None:
        """Several lines in one write: the listener prints a batch of requests at once.

        A reader that went away (`vwh listen | head`) only stops the printing: the
        listener goes on keeping requests.
        """
        if self._closed or not texts:
            return
        try:
            sys.stdout.write("\n".join([never_raw(text) for text in texts]) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            self._closed = True
        except ValueError:  # written to a closed stdout; anything else is a bug to see
            if not sys.stdout.closed:
                raise
            self._closed = True

    def json(self, document: Any) -> None:
        """One JSON document on one line, for scripts and jq: inert, equal in value."""
        self.line(json_line(document))

    def note(self, text: str) -> None:
        """A diagnostic for people; `text` may use Rich markup (our own text only)."""
        self.err.print(text)

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {untrusted(text)}")


def untrusted(text: str) -> str:
    """Text from the outside world made inert and markup-escaped, for a markup string."""
    return escape(inert(text))


def never_raw(text: str) -> str:
    """A data line as written: line breaks and tab-separated fields kept, pieces inert.

    Renderers build lines from inert pieces already; this is the guard for one that
    forgot. Our own separators stay (a tab cannot forge a line), all else is escaped.
    """
    if text.isascii() and text.isprintable():  # the common case, checked in C
        return text
    return "\n".join(
        "\t".join([inert(field) for field in line.split("\t")]) for line in text.split("\n")
    )
