"""A run's timeline: one bar per task from its start to its end, coloured by status.

Drawn once as SVG (for notebooks and `lpipe history --html`) and once with
Rich block characters (for `lpipe history --timeline`), from the same bars.
Tasks that overlapped ran at the same time on a parallel executor; a reused or
skipped task is a thin tick at the moment it was settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from .report import RunReport, Status

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

#: the statuses a run's bars can have, in the legend's order
_SHOWN = (Status.EXECUTED, Status.CACHED, Status.SKIPPED, Status.FAILED, Status.INTERRUPTED)
_ROW, _BAR, _LABEL, _PLOT = 22, 14, 180, 560  # SVG sizes in pixels


@dataclass(frozen=True)
class Bar:
    """One task on the timeline, in seconds since the run started."""

    task: str
    status: str
    start: float
    end: float


def bars(report: RunReport) -> list[Bar]:
    """The report's tasks as bars, in run order (tasks without times start at 0)."""
    origin = report.started_at or min(
        (o.started_at for o in report if o.started_at is not None), default=0.0)
    out = []
    for o in report:
        start = (o.started_at or origin) - origin
        end = (o.finished_at or o.started_at or origin) - origin
        out.append(Bar(o.name, o.status, max(start, 0.0), max(end, start, 0.0)))
    return out


def _span(items: list[Bar]) -> float:
    return max([b.end for b in items] + [1e-3])


def _ticks(span: float) -> list[float]:
    """Round axis marks: about five, at 1, 2 or 5 times a power of ten seconds."""
    raw = span / 5
    step = 1e-3
    while step * 10 <= raw:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= raw:
            step *= factor
            break
    return [i * step for i in range(int(span / step) + 1)]


def svg(report: RunReport) -> str:
    """The timeline as one standalone SVG element (no script, no external font or style)."""
    items = bars(report)
    span = _span(items)
    height = _ROW * len(items) + 30
    scale = _PLOT / span
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lp-timeline" role="img" '
        f'width="{_LABEL + _PLOT + 20}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f"<title>Timeline of {escape(report.pipeline)}: {len(items)} tasks in "
        f"{report.duration:.2f}s</title>",
    ]
    for t in _ticks(span):
        x = _LABEL + t * scale
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}" '
                     f'stroke="#dee2e6"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" '
                     f'fill="#495057">{_seconds(t)}</text>')
    for i, b in enumerate(items):
        y = i * _ROW + 4
        fill = status.fill if (status := Status.of(b.status)) else "#868e96"
        width = max((b.end - b.start) * scale, 2.0)
        parts.append(f'<text x="{_LABEL - 8}" y="{y + _BAR - 3}" text-anchor="end" '
                     f'fill="#212529">{escape(_clip(b.task, 26))}</text>')
        parts.append(
            f'<rect class="lp-bar" data-task="{escape(b.task)}" data-status="{b.status}" '
            f'x="{_LABEL + b.start * scale:.1f}" y="{y}" width="{width:.1f}" height="{_BAR}" '
            f'rx="2" fill="{fill}"><title>{escape(b.task)}: {b.status}, '
            f'{_seconds(b.start)} to {_seconds(b.end)}</title></rect>')
    parts.append("</svg>")
    return "\n".join(parts)


class RichTimeline:
    """The same bars in the terminal, as wide as the console allows."""

    def __init__(self, report: RunReport) -> None:
        self.report = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.table import Table
        from rich.text import Text

        items = bars(self.report)
        label = min(max([len(b.task) for b in items] + [4]), 30)
        plot = max(options.max_width - label - 12, 10)
        span = _span(items)
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, overflow="ellipsis", width=label)
        table.add_column(no_wrap=True, width=plot)
        table.add_column(justify="right", style="dim", no_wrap=True)
        for b in items:
            first = min(int(b.start / span * plot), plot - 1)
            cells = max(round((b.end - b.start) / span * plot), 1)
            style = status.style if (status := Status.of(b.status)) else "dim"
            bar = Text(" " * first)
            bar.append("█" * min(cells, plot - first), style=style)
            table.add_row(Text(b.task), bar, _seconds(b.end - b.start))
        axis = Text(" " * (label + 1) + "0s")
        end = _seconds(span)
        axis.append(" " * max(plot - 2 - len(end), 1) + end)
        yield Text(f"{self.report.pipeline}: timeline of the last run", style="bold")
        yield table
        yield axis
        yield Text.assemble(*(
            part for status in _SHOWN
            for part in (("█ ", status.style), (f"{status}  ", "dim"))))


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}s"
    if value >= 1:
        return f"{value:.1f}s"
    return f"{value:.2f}s" if value else "0s"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def as_dict(report: RunReport) -> dict[str, Any]:
    """What the store keeps of the last run to draw it again: times, statuses, reasons."""
    return {
        "pipeline": report.pipeline,
        "run_id": report.run_id,
        "started_at": report.started_at,
        "duration": report.duration,
        "tasks": [(o.name, o.status, o.started_at, o.finished_at, o.duration,
                   o.stored_duration, o.why) for o in report],
    }


def from_dict(entry: dict[str, Any]) -> RunReport:
    """A RunReport rebuilt from `as_dict` (reasons come back as sentences)."""
    from .report import Reason, RunReport, TaskOutcome

    report = RunReport(entry.get("pipeline", ""), run_id=entry.get("run_id", ""),
                       started_at=entry.get("started_at") or 0.0,
                       duration=entry.get("duration") or 0.0)
    for name, status, start, end, duration, stored, why in entry.get("tasks", ()):
        reasons = (Reason("error", detail=why),) if why else ()
        report.add(TaskOutcome(name, status, reasons, duration, stored_duration=stored,
                               started_at=start, finished_at=end))
    return report
