"""What a run did and why: reasons, task outcomes and the run report.

Plain data. The logs, the report's summary, the CLI and the shell all render
these same objects, so "why did this run?" has one answer everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
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
        # Made once (a task's reasons go into its record, its status line and the
        # run's timeline), kept in the instance's dict: the fields are frozen.
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = REASON_TEXT[self.kind].format(subject=self.subject, detail=self.detail)
            self.__dict__["_text"] = text
        return text


class Status(StrEnum):
    """A task's status in a run (or, "run" and "waiting", in a plan), with its look.

    Each member carries its `symbol` and Rich `style`, the word a live run table
    uses once the task is settled (`done`), and what a plan says of the next run
    (`next_run`). Outcomes hold the plain string value (`Status.CACHED == "cached"`),
    so reports and the stored history stay plain data.
    """

    EXECUTED = "executed"
    CACHED = "cached"
    SKIPPED = "skipped"
    FAILED = "failed"
    RUN = "run"
    WAITING = "waiting"
    INTERRUPTED = "interrupted"

    @property
    def symbol(self) -> str:
        return _LOOK[self][0]

    @property
    def style(self) -> str:
        return _LOOK[self][1]

    @property
    def done(self) -> str:
        return _LOOK[self][2]

    @property
    def fill(self) -> str:
        """Its colour in pictures (the SVG timeline, notebook HTML)."""
        return _LOOK[self][4]

    @property
    def next_run(self) -> str:
        return _LOOK[self][3]

    @classmethod
    def of(cls, status: str) -> Status | None:
        """The member for a status string, or None for a name no run produces."""
        return _BY_VALUE.get(status)


#: Each status's (symbol, Rich style, live-table word, next-run word in a plan, picture colour).
_LOOK: dict[Status, tuple[str, str, str, str, str]] = {
    Status.EXECUTED: ("✓", "green", "done", "executed", "#2f9e44"),
    Status.CACHED: ("↺", "cyan", "reused", "reused", "#0b7285"),
    Status.SKIPPED: ("-", "yellow", "skipped", "skipped", "#e67700"),
    Status.FAILED: ("✗", "bold red", "failed", "cannot run", "#c92a2a"),
    Status.RUN: ("▶", "magenta", "run", "will run", "#862e9c"),
    Status.WAITING: ("…", "dim", "waiting", "may run", "#868e96"),
    Status.INTERRUPTED: ("!", "bold yellow", "interrupted", "interrupted", "#f08c00"),
}
_BY_VALUE: dict[str, Status] = {s.value: s for s in Status}


class State(StrEnum):
    """A task's stored result as a plan sees it (`lpipe list`, `graph`), with its look:
    a Rich `style` for the terminal, `fill` and `stroke` colours for Mermaid and DOT."""

    CACHED = "cached"
    STALE = "stale"
    NOT_CACHED = "not cached"
    WAITING = "waiting"
    SKIPPED = "skipped"
    FAILED = "failed"

    @property
    def style(self) -> str:
        return _STATE_LOOK[self][0]

    @property
    def fill(self) -> str:
        return _STATE_LOOK[self][1]

    @property
    def stroke(self) -> str:
        return _STATE_LOOK[self][2]

    @classmethod
    def of(cls, outcome: TaskOutcome) -> State:
        """A plan outcome as the state of the stored result."""
        if outcome.status == Status.RUN:
            return cls.NOT_CACHED if any(
                r.kind == "no_result" for r in outcome.reasons) else cls.STALE
        return _STATE_BY_VALUE.get(outcome.status, cls.STALE)


#: Each state's (Rich style, fill, stroke).
_STATE_LOOK: dict[State, tuple[str, str, str]] = {
    State.CACHED: ("cyan", "#d7f2f4", "#0b7285"),
    State.STALE: ("magenta", "#f3d9fa", "#862e9c"),
    State.NOT_CACHED: ("yellow", "#fff3bf", "#e67700"),
    State.WAITING: ("dim", "#f1f3f5", "#868e96"),
    State.SKIPPED: ("yellow", "#fff3bf", "#e67700"),
    State.FAILED: ("bold red", "#ffe3e3", "#c92a2a"),
}
_STATE_BY_VALUE: dict[str, State] = {s.value: s for s in State}

#: Outcome status -> (symbol, Rich style); kept for callers of the earlier table.
STATUS_STYLE: dict[str, tuple[str, str]] = {s.value: (s.symbol, s.style) for s in Status}

#: The notebook's HTML renderers by what they draw ("report", "explanation"), filled
#: in by `notebook` when the package is imported: the renderer imports the objects
#: it draws, never the reverse (a deferred import back would be an import cycle).
HTML_RENDERERS: dict[str, Callable[[Any], str]] = {}

#: How many past runs `history` shows by default (the CLI and the shell alike).
HISTORY_DEFAULT = 20


def last_line(text: str | None, default: str = "failed") -> str:
    """The last line of an error's text (its message, after the traceback), or `default`."""
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else default


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
        return "; ".join([str(r) for r in self.reasons])


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
                lines.append(f"  - {name}: {last_line(o.error or o.why)}")
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
            look = Status.of(o.status)
            symbol, style = (look.symbol, look.style) if look else ("?", "")
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
        """A table and the run's timeline, for notebooks (see `notebook.report_html`)."""
        return HTML_RENDERERS["report"](self)
