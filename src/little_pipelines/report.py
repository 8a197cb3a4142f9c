"""What a run did and why: reasons, task outcomes and the run report.

Plain data. The logs, the report's summary, the CLI and the shell all render
these same objects, so "why did this run?" has one answer everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import PipelineFailedError

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

#: Why a task runs, is reused or does not run: kind -> sentence.
REASON_TEXT: dict[str, str] = {
    "no_result": "no stored result",
    "forced": "forced",
    "code_changed": "code changed in {subject}{detail}",
    "version_changed": "its version= changed",
    "param_changed": "param {subject!r} changed",
    "source_changed": "source {subject!r} changed ({detail})",
    "input_changed": "input {subject} changed",
    "input_added": "input {subject} added",
    "input_removed": "input {subject} removed",
    "upstream_changed": "upstream {subject!r} changed",
    "dependencies_changed": "its dependencies changed ({detail})",
    "definition_changed": "its definition changed ({detail})",
    "expired": "expired at {detail}",
    "session_ended": "session ended (stored by another Python process)",
    "run_ended": "expired when the run that stored it ended",
    "clock_moved_back": "stored in the future ({detail}): the clock moved back",
    "unchanged": "unchanged since {detail}",
    "skip_requested": "skipped on request",
    "not_selected": "not selected, its stored result is used",
    "upstream_failed": "upstream {subject!r} failed",
    "upstream_skipped": "upstream {subject!r} did not run and has no stored result",
    "waiting": "waits on upstream {subject!r}, which will run",
    "interrupted": "the run was interrupted (Ctrl-C)",
    "error": "{detail}",
}


def fmt_time(ts: float | None, *, zone: bool = False) -> str:
    """A local wall-clock time, e.g. 2024-05-01 13:45:10 (with its zone if asked); "-" for None."""
    if ts is None:
        return "-"
    moment = datetime.fromtimestamp(ts)
    if zone:
        return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Reason:
    """One reason, as data: a kind from REASON_TEXT, the thing it is about, a detail."""

    kind: str
    subject: str = ""
    detail: str = ""

    def __str__(self) -> str:
        return REASON_TEXT[self.kind].format(subject=self.subject, detail=self.detail)


#: Outcome status -> (symbol, Rich style). A plan uses "run" and "waiting".
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "executed": ("✓", "green"),
    "cached": ("↺", "cyan"),
    "skipped": ("-", "yellow"),
    "failed": ("✗", "bold red"),
    "run": ("▶", "magenta"),
    "waiting": ("…", "dim"),
    "interrupted": ("!", "bold yellow"),
}


@dataclass
class TaskOutcome:
    """What happened to one task in one run (or would happen, in a plan)."""

    name: str
    status: str
    reasons: tuple[Reason, ...] = ()
    duration: float = 0.0
    #: compute time of the stored result (what reusing it saved)
    stored_duration: float = 0.0
    error: str | None = None
    #: how many times its code ran (more than 1 when retries= were used)
    attempts: int = 1
    #: when it started and was settled (epoch seconds; equal for a task that did not run)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def why(self) -> str:
        return "; ".join(str(r) for r in self.reasons)


@dataclass
class RunReport:
    """The outcome of `Pipeline.execute` (or of `Pipeline.plan` when `planned`)."""

    pipeline: str
    outcomes: dict[str, TaskOutcome] = field(default_factory=dict)
    duration: float = 0.0
    started_at: float = 0.0
    run_id: str = ""
    planned: bool = False
    interrupted: bool = False

    def add(self, outcome: TaskOutcome) -> None:
        self.outcomes[outcome.name] = outcome

    def __getitem__(self, name: str) -> TaskOutcome:
        return self.outcomes[name]

    def __iter__(self) -> Any:
        return iter(self.outcomes.values())

    def __len__(self) -> int:
        return len(self.outcomes)

    def names(self, status: str) -> list[str]:
        """Names of the tasks with this status, in run order."""
        return [o.name for o in self.outcomes.values() if o.status == status]

    @property
    def executed(self) -> list[str]:
        return self.names("executed")

    @property
    def cached(self) -> list[str]:
        return self.names("cached")

    @property
    def skipped(self) -> list[str]:
        return self.names("skipped")

    @property
    def failed(self) -> list[str]:
        return self.names("failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def saved(self) -> float:
        """Compute time the cache saved: the stored durations of the reused tasks."""
        return sum(o.stored_duration for o in self.outcomes.values() if o.status == "cached")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes.values():
            out[o.status] = out.get(o.status, 0) + 1
        return out

    def summary(self) -> str:
        """One line: counts per status, time taken, time saved."""
        parts = [f"{n} {status}" for status, n in self.counts().items()]
        verb = "plan for" if self.planned else "run of"
        return (
            f"{verb} {self.pipeline!r}: {', '.join(parts) or 'nothing to do'} "
            f"in {self.duration:.2f}s (cache saved {self.saved:.2f}s)"
        )

    def raise_for_failures(self) -> RunReport:
        """Raise PipelineFailedError naming the failed tasks and why; else return self."""
        if self.failed:
            lines = []
            for name in self.failed:
                o = self.outcomes[name]
                first = (o.error or o.why).strip().splitlines()
                lines.append(f"  - {name}: {first[-1] if first else 'failed'}")
            raise PipelineFailedError(
                f"{len(self.failed)} task(s) of {self.pipeline!r} failed:\n" + "\n".join(lines)
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        """A summary for the run history."""
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "duration": self.duration,
            "saved": self.saved,
            "counts": self.counts(),
            "failed": self.failed,
        }

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.table import Table
        from rich.text import Text

        table = Table()
        table.add_column("task", overflow="fold")
        table.add_column("status")
        table.add_column("time", justify="right")
        table.add_column("why", overflow="fold")
        for o in self.outcomes.values():
            symbol, style = STATUS_STYLE.get(o.status, ("?", ""))
            # Text, not markup: names and reasons may contain "[" (exception texts).
            table.add_row(
                Text(o.name),
                Text(f"{symbol} {o.status}", style=style),
                f"{o.duration:.2f}s",
                Text(o.why),
            )
        yield table
        yield Text(self.summary())

    def __str__(self) -> str:
        """The summary table as plain text (what `print(report)` shows)."""
        import io

        from rich.console import Console

        out = io.StringIO()
        # force_jupyter=False: in a notebook Rich would display it instead of writing it.
        Console(file=out, width=100, color_system=None, force_terminal=False,
                force_jupyter=False).print(self)
        return "\n".join(line.rstrip() for line in out.getvalue().splitlines())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display (a terminal, a notebook's text/plain): the table."""
        printer.text(str(self))

    def _repr_html_(self) -> str:
        """A table and the run's timeline, for notebooks."""
        from .notebook import report_html

        return report_html(self)
