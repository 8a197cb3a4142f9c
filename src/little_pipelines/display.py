"""How a run looks while it runs: a Rich live table on a terminal, plain lines elsewhere.

`RunView` is the `progress=` callback of `Pipeline.execute`: the engine calls
it with ("start", name, None) when a task starts and ("finish", name, outcome)
when it is settled. On a terminal it keeps a live table (waiting, running with
its elapsed time, reused, done, failed) and an overall progress line; in a pipe
or a cron log, where redrawing would leave garbage, it prints one line per event.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .render import code_ran, fmt_seconds, reason_text, status_text
from .report import Status, TaskOutcome


class RunView:
    """The progress callback of one run, also a context manager around it.

    Parameters:
        console: where to draw.
        names: the selected tasks, in execution order.
        live: draw a live table (True on a terminal) instead of plain lines.
    """

    def __init__(self, console: Console, names: list[str], *, live: bool) -> None:
        self.console = console
        self.names = names
        self.started: dict[str, float] = {}
        self.outcomes: dict[str, TaskOutcome] = {}
        self._live = Live(self, console=console, refresh_per_second=8, transient=True) if (
            live) else None
        self._start = time.monotonic()

    def __enter__(self) -> RunView:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()

    # -- the progress callback -----------------------------------------------------
    def __call__(self, event: str, name: str, outcome: TaskOutcome | None) -> None:
        if event == "start":
            self.started[name] = time.monotonic()
            if self._live is None:
                self.console.print(Text.assemble(("▶ ", "magenta"), (name, "lp.task"),
                                                 " running"))
        elif event == "finish" and outcome is not None:
            self.outcomes[name] = outcome
            if self._live is None:
                self.console.print(self._line(outcome))
        if self._live is not None:
            self._live.refresh()

    def _line(self, o: TaskOutcome) -> Text:
        line = status_text(o.status)
        line.append(" ")
        line.append(o.name, style="lp.task")
        if code_ran(o):
            line.append(f" in {fmt_seconds(o.duration)}")
        why = reason_text(o.reasons)
        if why:
            line.append(f" ({why})", style="lp.dim")
        return line

    # -- the live table ---------------------------------------------------------------
    def __rich__(self) -> RenderableType:
        now = time.monotonic()
        rows = self._visible_rows()
        table = Table.grid(padding=(0, 2))
        table.add_column()
        table.add_column(style="lp.task")
        table.add_column()
        for name in rows:
            table.add_row(*self._row(name, now))
        hidden = len(self.names) - len(rows)
        done = len(self.outcomes)
        total = max(len(self.names), 1)
        footer = Table.grid(padding=(0, 1))
        footer.add_row(
            ProgressBar(total=total, completed=done, width=30),
            Text(f"{done}/{len(self.names)} tasks · {fmt_seconds(now - self._start)}"
                 + (f" · {hidden} more not shown" if hidden > 0 else ""), style="lp.dim"),
        )
        return Group(table, footer)

    def _row(self, name: str, now: float) -> tuple[Any, ...]:
        outcome = self.outcomes.get(name)
        if outcome is not None:
            look = Status.of(outcome.status)
            word = look.done if look else outcome.status
            when = fmt_seconds(outcome.duration) if code_ran(outcome) else ""
            return status_text(outcome.status, word), Text(name), Text(when, style="lp.dim")
        if name in self.started:
            return (Text("▶ running", style="magenta"), Text(name),
                    Text(fmt_seconds(now - self.started[name])))
        return Text("… waiting", style="lp.dim"), Text(name), Text("")

    def _visible_rows(self) -> list[str]:
        """All tasks if they fit; else the running ones, the last settled, the next waiting."""
        room = max(self.console.height - 4, 5)
        if len(self.names) <= room:
            return self.names
        running = [n for n in self.names if n in self.started and n not in self.outcomes]
        settled = [n for n in self.names if n in self.outcomes]
        waiting = [n for n in self.names if n not in self.started and n not in self.outcomes]
        keep = set(running[:room])
        recent = (room - len(keep)) // 2
        if recent > 0:
            keep.update(settled[-recent:])
        keep.update(waiting[: max(room - len(keep), 0)])
        return [n for n in self.names if n in keep]
