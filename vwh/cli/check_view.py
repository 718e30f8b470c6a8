"""How a check report looks: a Rich table on a terminal, plain lines in a pipe.

Pure functions of the report; nothing here prints. Answers and URLs come from the
outside world: they leave here inert (`vwh.sanitize`), in `Text` objects, never in
markup strings.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from vwh.check import CheckReport, CheckResult, Result
from vwh.sanitize import inert

RESULT_STYLES = {Result.PASSED: "green", Result.WARNING: "yellow", Result.FAILED: "bold red"}


def _details(result: CheckResult) -> list[tuple[str, str]]:
    """Label and text of what a person needs about a check that did not pass."""
    rows = [("answer", result.response)] if result.response else []
    return [*rows, ("impact", result.effect), ("fix", result.fix)]


def _not_passed(report: CheckReport) -> list[CheckResult]:
    return [r for r in report.results if r.result is not Result.PASSED]


def report_lines(report: CheckReport) -> list[str]:
    """The report for pipes and logs: one line per check, advice indented under it."""
    lines = [f"vwh check {report.url} (token in {report.token_where or report.token_header})"]
    for r in report.results:
        lines.append(
            f"{r.spec.number} {r.spec.name:<14} {r.result.value:<7}  sent: {r.sent}; got: {r.got}"
        )
        if r.result is not Result.PASSED:
            lines.extend(f"    {label}: {text}" for label, text in _details(r))
    lines.extend(report.notes)
    lines.extend(report.not_run)
    lines.append(report.summary)
    return [inert(line) for line in lines]


def report_table(report: CheckReport) -> RenderableType:
    """The report for a terminal: the table, then advice for each check that did not pass."""
    where = report.token_where or report.token_header
    title = Text.assemble(("vwh check ", "bold"), inert(report.url), inert(f"  (token in {where})"))
    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("sent", min_width=16)
    table.add_column("got", min_width=14)
    for r in report.results:
        table.add_row(
            str(r.spec.number),
            r.spec.name,
            Text(r.result.value, style=RESULT_STYLES[r.result]),
            Text(inert(r.sent)),
            Text(inert(r.got)),
        )
    parts: list[RenderableType] = [title, Text(), table]
    for r in _not_passed(report):
        parts.append(Text())
        parts.append(
            Text.assemble(
                (f"{r.spec.number} {r.spec.name}", "bold"),
                " ",
                (r.result.value, RESULT_STYLES[r.result]),
            )
        )
        advice = Table.grid(padding=(0, 2))
        advice.add_column(no_wrap=True, style="dim")
        advice.add_column(ratio=1)
        for label, text in _details(r):
            advice.add_row(f"  {label}", Text(inert(text)))
        parts.append(advice)
    parts.append(Text())
    parts.extend(Text(inert(note), style="dim") for note in [*report.notes, *report.not_run])
    summary_style = "bold red" if report.count(Result.FAILED) else "bold green"
    parts.append(Text(report.summary, style=summary_style))
    return Group(*parts)
