"""Reading the inputs of `vwh replay` and drawing its results.

On a terminal: a progress bar (on stderr) for more than a few payloads, then a
table. Piped: one tab-separated line per payload, in input order, as soon as it and
those before it are done. With --json: one JSON object per payload, likewise.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from vwh.cli.output import Output, untrusted
from vwh.delivery import Attempt, DeliveryOutcome, Outcome, OutgoingRequest, ResendPolicy
from vwh.errors import ExitCode, InputError, UsageError
from vwh.payloads import Payload
from vwh.replay import Target
from vwh.sanitize import inert

if TYPE_CHECKING:
    from rich.table import Table

PROGRESS_MIN = 5  # more payloads than this get a progress bar on a terminal
_STYLES = {Outcome.DELIVERED: "green", Outcome.REJECTED: "yellow", Outcome.GAVE_UP: "red"}


def read_payloads(
    output: Output,
    sources: Sequence[str],
    *,
    from_history: bool = False,
    store: Path | None = None,
    skip_invalid: bool = False,
) -> list[Payload]:
    """Every body to send, or InputError before anything is sent (unless skipping)."""
    from vwh.payloads import load_history, load_sources

    if not sources:
        raise UsageError(
            "nothing to replay: give JSON files, directories, - for stdin, or --from-history ID..."
        )
    if from_history:
        from vwh.paths import default_store_path

        loaded = load_history(store or default_store_path(), [_history_id(s) for s in sources])
    else:
        loaded = load_sources(sources, _stdin() if "-" in sources else None)
    if not skip_invalid:
        loaded.raise_problems()
    for problem in loaded.problems:
        output.warn(f"skipped {problem.message}")
    if not loaded.payloads:
        raise InputError("nothing to send: every input was invalid")
    return loaded.payloads


def run_batch(
    output: Output,
    target: Target,
    requests: Sequence[OutgoingRequest],
    policy: ResendPolicy,
    concurrency: int,
    verbose: bool,
) -> ExitCode:
    """Deliver, show each result, and return the batch's exit code."""
    from vwh.delivery import batch_exit_code, deliver_all

    count = len(requests)
    output.note(f"replaying {_plural(count, 'payload')} to {untrusted(target.describe())}")

    def emit(o: DeliveryOutcome) -> None:
        if output.json_mode:
            output.json(o.to_json())
        else:
            _plain(output, o, verbose)

    in_order = None if output.rich else _InOrder(emit)
    if output.err.is_terminal and count > PROGRESS_MIN:
        outcomes = _with_progress(output, requests, policy, concurrency, in_order)
    else:
        outcomes = deliver_all(requests, policy, concurrency=concurrency, on_done=in_order)
    if output.rich:
        output.render(results_table(outcomes, verbose))
    output.note(summary(outcomes))
    return batch_exit_code(outcomes)


def results_table(outcomes: Sequence[DeliveryOutcome], verbose: bool) -> Table:
    """One row per payload; with `verbose`, a row under it for every attempt."""
    from rich.table import Table
    from rich.text import Text

    names = ["#", "payload", "result", "answer", "tries", *(["waited"] if verbose else []), "time"]
    table = Table(show_edge=False, pad_edge=False)
    for name in names:
        numeric = name in ("#", "tries", "waited", "time")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=numeric)
    for number, o in enumerate(outcomes, start=1):
        waited = [duration(sum(a.waited for a in o.attempts) * 1000)] if verbose else []
        table.add_row(
            str(number),
            Text(inert(o.request.label)),  # inert Text, never markup: names come from outside
            Text(o.outcome.value, style=_STYLES[o.outcome]),
            Text(inert(answer(o.last))),
            str(len(o.attempts)),
            *waited,
            duration(o.elapsed_ms),
        )
        if verbose:
            for a in o.attempts:
                table.add_row(
                    "",
                    Text(f"  attempt {a.number}", style="dim"),
                    "",
                    Text(inert(answer(a))),
                    "",
                    duration(a.waited * 1000) if a.number > 1 else "",
                    duration(a.latency_ms),
                )
    return table


def summary(outcomes: Sequence[DeliveryOutcome]) -> str:
    counts = {kind: sum(o.outcome is kind for o in outcomes) for kind in Outcome}
    parts = [f"{n} {kind.value.replace('-', ' ')}" for kind, n in counts.items() if n]
    return f"{_plural(len(outcomes), 'payload')}: {', '.join(parts)}"


def answer(attempt: Attempt) -> str:
    """'503 Service Unavailable', or why there was no answer."""
    if attempt.status is None:
        return attempt.describe()
    try:
        return f"{attempt.status} {HTTPStatus(attempt.status).phrase}"
    except ValueError:
        return str(attempt.status)


def duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


class _InOrder:
    """Passes results on in input order, each as soon as those before it are done."""

    def __init__(self, emit: Callable[[DeliveryOutcome], None]) -> None:
        self._emit = emit
        self._next = 0
        self._waiting: dict[int, DeliveryOutcome] = {}

    def __call__(self, index: int, outcome: DeliveryOutcome) -> None:
        self._waiting[index] = outcome
        while self._next in self._waiting:
            self._emit(self._waiting.pop(self._next))
            self._next += 1


def _with_progress(
    output: Output,
    requests: Sequence[OutgoingRequest],
    policy: ResendPolicy,
    concurrency: int,
    in_order: _InOrder | None,
) -> list[DeliveryOutcome]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from vwh.delivery import deliver_all

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=output.err, transient=True) as progress:
        task = progress.add_task("replay", total=len(requests))

        def done(index: int, outcome: DeliveryOutcome) -> None:
            progress.advance(task)
            if in_order is not None:
                in_order(index, outcome)

        return deliver_all(requests, policy, concurrency=concurrency, on_done=done)


def _plain(output: Output, o: DeliveryOutcome, verbose: bool) -> None:
    tries = _plural(len(o.attempts), "attempt")
    fields = (o.request.label, o.outcome.value, answer(o.last), tries, duration(o.elapsed_ms))
    output.line("\t".join(map(inert, fields)))  # a tab in a name cannot add a field
    if verbose:
        for a in o.attempts:
            heading = _attempt_heading(a)
            output.line(inert(f"  {heading}: {answer(a)} in {duration(a.latency_ms)}"))


def _attempt_heading(a: Attempt) -> str:
    return f"attempt {a.number}" + (f" after {a.waited:.2f} s" if a.number > 1 else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _history_id(text: str) -> int:
    if not text.isdigit():
        raise UsageError(
            f"--from-history takes ids of kept requests (see vwh history), not {text!r}"
        )
    return int(text)


def _stdin() -> BinaryIO:
    """Standard input as bytes (a test may have swapped in a text stream)."""
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer if buffer is not None else io.BytesIO(sys.stdin.read().encode())
