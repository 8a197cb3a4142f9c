"""Renderables that fit the width they are given, for 80-column terminals and wider.

Rich decides a table column's width from what its cells measure, then asks
each cell to render at that width. These cells use the width: a path in a
reason is shortened in the middle (never losing its file name), the summary
line drops words rather than wrap, and a wide DataFrame shows the columns that
fit and says how many more there are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .report import Reason, RunReport

#: Reasons whose subject is a path (shown relative to the current folder).
PATH_KINDS = frozenset({"input_changed", "input_added", "input_removed", "code_changed"})
_MIN_PATH = 16  # never shorten a path below this many characters


def display_path(path: str) -> str:
    """A path as a user in the current folder would type it: relative when inside it."""
    if not os.path.isabs(path):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def shorten_path(path: str, width: int) -> str:
    """`path` in at most `width` characters, cut in the middle; the file name is kept whole."""
    if len(path) <= width:
        return path
    name = os.path.basename(path) or path
    room = width - len(name) - 2  # "…" and the separator before the name
    if room <= 0:
        return "…" + os.sep + name
    head = room // 2
    folder = path[: len(path) - len(name) - 1]
    return folder[:head] + "…" + folder[len(folder) - (room - head):] + os.sep + name


def _sentence(reason: Reason, path: str | None = None) -> str:
    if path is not None:
        reason = Reason(reason.kind, path, reason.detail)
    try:
        return str(reason)
    except (KeyError, IndexError, ValueError):  # a kind this version cannot word
        return " ".join(filter(None, (reason.kind, reason.subject, reason.detail)))


class Why:
    """A task's reasons as one cell: paths relative to here, cut in the middle to fit."""

    def __init__(self, reasons: Iterable[Reason], style: str = "") -> None:
        self.reasons = list(reasons)
        self.style = style

    def _paths(self) -> list[str | None]:
        return [display_path(r.subject) if r.kind in PATH_KINDS and r.subject else None
                for r in self.reasons]

    def plain(self, width: int | None = None) -> str:
        parts = []
        for reason, path in zip(self.reasons, self._paths(), strict=True):
            if path is not None and width is not None:
                rest = len(_sentence(reason, ""))
                path = shorten_path(path, max(width - rest, _MIN_PATH))
            parts.append(_sentence(reason, path))
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.plain()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        full = self.plain()
        words = [w for r, p in zip(self.reasons, self._paths(), strict=True) if p is None
                 for w in _sentence(r).split()]
        names = [len(os.path.basename(p)) + 2 for p in self._paths() if p is not None]
        least = max([len(w) for w in words] + [min(_MIN_PATH, n) for n in names] + names + [1])
        return Measurement(min(least, len(full)), len(full)).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(self.plain(options.max_width), style=self.style)


class SummaryLine:
    """The run's one-line summary; at a narrow width it drops words, never wraps."""

    def __init__(self, report: RunReport) -> None:
        self.report = report

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, len(self.report.summary()))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for text in (self.report.summary(), compact_summary(self.report)):
            if len(text) <= width:
                yield Text(text)
                return
        yield Text(compact_summary(self.report), no_wrap=True, overflow="ellipsis")


def compact_summary(report: RunReport) -> str:
    """The summary without the pipeline's name and with short words."""
    short = {"executed": "ran", "cached": "reused"}
    parts = [f"{n} {short.get(s, s)}" for s, n in report.counts().items()]
    return (f"{', '.join(parts) or 'nothing to do'} in {report.duration:.2f}s "
            f"(saved {report.saved:.2f}s)")


class FrameTable:
    """A DataFrame-like value as a Rich table of the columns that fit, then "… N more"."""

    def __init__(self, frame: Any, rows: int) -> None:
        self.frame = frame
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        head = self.frame.head(self.rows)
        columns = [str(c) for c in list(head.columns)]
        index = [str(i) for i in list(head.index)]
        cells = {c: [_cell(v) for v in head[col].tolist()]
                 for c, col in zip(columns, list(head.columns), strict=True)}
        room = options.max_width - (max([len(i) for i in index] + [0]) + 4)
        shown: list[str] = []
        for c in columns:
            need = max([len(c)] + [len(v) for v in cells[c]]) + 3
            more = len(columns) - len(shown) - 1
            reserve = len(f"… {more} more columns") + 3 if more else 0
            if need + reserve > room and shown:
                break
            shown.append(c)
            room -= need
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("", style="dim", no_wrap=True)
        for c in shown:
            table.add_column(Text(c), no_wrap=True, overflow="ellipsis", justify="right")
        hidden = len(columns) - len(shown)
        if hidden:
            table.add_column(Text(f"… {hidden} more column{'s' * (hidden != 1)}"),
                             style="dim", no_wrap=True)
        for i, label in enumerate(index):
            table.add_row(Text(label), *(Text(cells[c][i]) for c in shown),
                          *([Text("…")] if hidden else []))
        yield table


def _cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"
