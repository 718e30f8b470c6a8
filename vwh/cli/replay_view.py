"""Reading the inputs of `vwh replay` and drawing its results.

On a terminal: a progress bar (on stderr) once more than a few payloads are done,
then a table. Piped: one tab-separated line per payload, in input order, as soon as
it and those before it are done. With --json: one JSON object per payload, likewise.
The inputs are read as they are sent, so nothing here holds the whole batch.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from vwh.cli.output import Output, untrusted
from vwh.delivery import Attempt, DeliveryOutcome, Outcome, OutgoingRequest, ResendPolicy
from vwh.errors import ExitCode, InputError, UsageError, VwhError
from vwh.payloads import MAX_SIZE, Payload, Problem
from vwh.replay import Tally, Target
from vwh.sanitize import inert

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

PROGRESS_MIN = 5  # more payloads than this get a progress bar on a terminal
TABLE_ROWS = 1000  # a terminal table shows the first results; piped, --json: all
_STYLES = {Outcome.DELIVERED: "green", Outcome.REJECTED: "yellow", Outcome.GAVE_UP: "red"}


def open_inputs(
    output: Output,
    sources: Sequence[str],
    *,
    from_history: bool = False,
    store: Path | None = None,
    skip_invalid: bool = False,
    max_size: int = MAX_SIZE,
) -> Iterable[Payload | Problem]:
    """The bodies to send, read as they are used; what can be checked before reading
    (files exist and are readable, ids are kept) raises InputError now, unless skipping."""
    from vwh.payloads import check_sources, iter_sources, load_history

    items: Iterable[Payload | Problem]
    if not sources:
        raise UsageError(
            "nothing to replay: give JSON files, directories, - for stdin, or --from-history ID..."
        )
    if from_history:
        from vwh.paths import default_store_path

        loaded = load_history(store or default_store_path(), [_history_id(s) for s in sources])
        problems, items = loaded.problems, loaded.payloads
    else:
        problems = check_sources(sources)
        failed = {p.label for p in problems}
        ready = [s for s in sources if s not in failed]
        stdin = _stdin() if "-" in ready else None
        items = iter_sources(ready, stdin, max_size=max_size) if ready else []
    if problems and not skip_invalid:
        first, more = problems[0].message, len(problems) - 1
        if more:
            first += f" (and {more} more invalid input{'s' if more > 1 else ''})"
        raise InputError(first)
    for problem in problems:
        output.warn(f"skipped {problem.message}")
    if not items:
        raise InputError("nothing to send: every input was invalid")
    return items


def read_payloads(
    output: Output,
    sources: Sequence[str],
    *,
    from_history: bool = False,
    store: Path | None = None,
    skip_invalid: bool = False,
) -> list[Payload]:
    """Every body at once, or InputError before anything is used (for `vwh sign`)."""
    payloads = []
    items = open_inputs(
        output, sources, from_history=from_history, store=store, skip_invalid=skip_invalid
    )
    for item in items:
        if isinstance(item, Problem):
            if not skip_invalid or item.fatal:
                raise InputError(item.message)
            output.warn(f"skipped {item.message}")
        else:
            payloads.append(item)
    if not payloads:
        raise InputError("nothing to send: every input was invalid")
    return payloads


def run_batch(
    output: Output,
    target: Target,
    items: Iterable[Payload | Problem | OutgoingRequest],
    policy: ResendPolicy,
    *,
    concurrency: int,
    verbose: bool,
    keep_headers: bool = False,
    skip_invalid: bool = False,
) -> ExitCode:
    """Deliver as the inputs are read, show each result, and return the batch's exit code.

    A Payload becomes `target`'s request for it; an OutgoingRequest goes out as it is."""
    import asyncio

    from vwh.outbound import OutboundClient
    from vwh.replay import replay_stream

    view = _BatchView(output, target, verbose)

    def requests() -> Iterator[OutgoingRequest | Problem]:
        for item in items:
            yield (
                target.request_for(item, keep_headers=keep_headers)
                if isinstance(item, Payload)
                else item  # a Problem, or a request already built (a copied curl one)
            )

    async def run() -> Tally:
        async with OutboundClient(connections=concurrency) as client:
            return await replay_stream(
                client,
                requests(),
                policy,
                view.result,
                concurrency=concurrency,
                skip_invalid=skip_invalid,
                on_skipped=view.skipped,
                on_send=view.sending,
            )

    try:
        tally = asyncio.run(run())
    except VwhError:
        view.finish(None)
        raise
    view.finish(tally)
    if not tally.sent:
        raise InputError("nothing to send: every input was invalid")
    return tally.exit_code


class _BatchView:
    """Shows results as they come: lines (piped, --json), or a progress bar then a table."""

    def __init__(self, output: Output, target: Target, verbose: bool) -> None:
        self._output = output
        self._target = target
        self._verbose = verbose
        self._rows: list[DeliveryOutcome] = []
        self._done = 0
        self._started = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def sending(self, _request: OutgoingRequest) -> None:
        if not self._started:  # not before: a bad first input is the one line shown
            self._started = True
            self._output.note(f"replaying to {untrusted(self._target.describe())}")

    def result(self, o: DeliveryOutcome) -> None:
        output = self._output
        self._done += 1
        if output.json_mode:
            output.json(o.to_json())
        elif not output.rich:
            _plain(output, o, self._verbose)
        elif len(self._rows) < TABLE_ROWS:
            self._rows.append(o)
        self._advance()

    def skipped(self, problem: Problem) -> None:
        self._output.warn(f"skipped {problem.message}")

    def _advance(self) -> None:
        if not self._output.err.is_terminal:
            return
        if self._progress is None and self._done > PROGRESS_MIN:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._progress = Progress(*columns, console=self._output.err, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("replay", total=None, completed=self._done)
        elif self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def finish(self, tally: Tally | None) -> None:
        """Stop the progress bar; draw the table; the summary when the batch ran to its end."""
        output = self._output
        if self._progress is not None:
            self._progress.stop()
        if output.rich and self._rows:
            output.render(results_table(self._rows, self._verbose))
            if self._done > len(self._rows):
                more = self._done - len(self._rows)
                output.note(f"… and {_plural(more, 'more result')}: --json or a pipe lists all")
        if tally is not None and tally.sent:
            output.note(summary(tally))


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


def summary(tally: Tally) -> str:
    parts = [f"{n} {kind.value.replace('-', ' ')}" for kind, n in tally.counts.items() if n]
    skipped = f"; {tally.skipped} skipped" if tally.skipped else ""
    return f"{_plural(tally.sent, 'payload')}: {', '.join(parts)}{skipped}"


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
