"""A run's status lines: each task's one line (ran, reused), routed once per run.

A task that ran gets one status line ("✓ ran in 0.012s (no stored result)") and
the time its main call took (PERF); a reused task a "reused" line for the
console. Each went through loguru: ~50 µs a task even when no handler showed it
(binds, three filters, an aware datetime, an open/write/close of the run log).
Now the run asks once, when it starts, who takes such lines (`log.story_takers`):
the run log gets its lines written straight, in the file sink's format, with one
write a task, and loguru is called only for a handler that shows the record.
While records are captured (a run inside a task on a remote worker), every line
takes loguru's way, as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .log import PERF, PERF_NO, story_takers, task_files
from .report import Status

if TYPE_CHECKING:
    from .task import Task

_RAN = Status.EXECUTED.symbol + " ran in {:.3f}s ({})"
_REUSED = Status.CACHED.symbol + " reused cached result (saved {:.3f}s)"
_TOOK = "{} took {:.4f}s"


class StatusLines:
    """Where one run's status lines go, decided when the run starts."""

    def __init__(self) -> None:
        self.info = story_takers(20)  # (library console, host handlers) for INFO
        self.perf = story_takers(PERF_NO, story=False)
        self._held: set[str] = set()  # run logs this run keeps open (see `close`)

    def ran(self, task: Task, duration: float, took: float, reasons: str) -> None:
        """A task ran: its PERF timing (`took`: its main call) and its status line."""
        if self.info is None or self.perf is None:  # captured: loguru routes everything
            task.logger.log(PERF, _TOOK, task.main_call, took)
            story(task).info(_RAN, duration, reasons)
            return
        folder = task.log_dir
        perf, ran = _TOOK.format(task.main_call, took), _RAN.format(duration, reasons)
        if folder is not None:
            where = str(folder)
            if where not in self._held and task_files.hold_run_log(where):
                self._held.add(where)
            task_files.append_run_log(where, time.time(), task.name,
                                      ((PERF, perf), ("INFO", ran)))
        if any(self.perf):
            task.logger.bind(lp_log_dir=None).log(PERF, "{}", perf)
        if any(self.info):
            story(task).bind(lp_log_dir=None).info("{}", ran)

    def close(self) -> None:
        """The run is over: let go of the run logs it kept open."""
        for folder in self._held:
            task_files.release_run_log(folder)
        self._held.clear()

    def reused(self, task: Task, saved: float) -> None:
        """A task's stored result was reused: a line for the console and the host only
        (one in the run log per reused task would cost a write per task on every warm
        run; the summary line counts them)."""
        if self.info is None or any(self.info):
            task.logger.bind(lp_log_dir=None, lp_story=True).info(_REUSED, saved)


def story(task: Task) -> Any:
    """The task's logger for its one status line (ran, skipped, failed): the console,
    the host's handlers and the run's log get it, not the task's own file."""
    return task.logger.bind(lp_run_log=True, lp_story=True)
