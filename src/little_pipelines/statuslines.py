"""A run's status lines: each task's one line (ran, reused), routed once per run.

A task that ran gets one status line ("✓ ran in 0.012s (no stored result)") and
the time its main call took (PERF); a reused task a "reused" line for the
console. Each went through loguru: ~50 µs a task even when no handler showed it
(binds, three filters, an aware datetime, an open/write/close of the run log).
Now the run asks once, when it starts, who takes such lines (`log.story_takers`):
the run log gets its lines written straight, in the file sink's format, with one
write for each group of results committed together (a task's own in a chain), and
loguru is called only for a handler that shows the record (the run's summary line
takes the same way: `log.story_line`). While records are captured (a run inside a
task on a remote worker), every line takes loguru's way, as before.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .log import PERF, PERF_NO, run_logger, story_takers, task_files
from .report import Status

if TYPE_CHECKING:
    from .task import Task

_RAN = Status.EXECUTED.symbol + " ran in {:.3f}s ({})"
_RAN_START = Status.EXECUTED.symbol + " ran in "  # `_RAN` as an f-string makes it (`ran`)
_REUSED = Status.CACHED.symbol + " reused cached result (saved {:.3f}s)"
_LEVELS = {"INFO": 20, "ERROR": 40}  # the levels of a run's summary line
_TOOK = "{} took {:.4f}s"  # the PERF line (captured runs; `ran` builds the same)


class StatusLines:
    """Where one run's status lines go, decided when the run starts."""

    def __init__(self) -> None:
        self.info = story_takers(20)  # (library console, host handlers) for INFO
        self.perf = story_takers(PERF_NO, story=False)
        self._info_taken = self.info is not None and any(self.info)
        self._perf_taken = self.perf is not None and any(self.perf)
        #: run log folder -> the descriptor this run holds open (see `close`), or None
        self._fds: dict[str, int | None] = {}
        self._queued: dict[str, list[str]] = {}  # run log folder -> lines `write` appends

    def ran(self, task: Task, duration: float, took: float, reasons: str) -> None:
        """A task ran: its PERF timing (`took`: its main call) and its status line. The
        run log's lines wait for `write`, which the recorder calls once the group of
        results they belong to is committed (one write a group instead of one a task)."""
        if self.info is None or self.perf is None:  # captured: loguru routes everything
            task.logger.log(PERF, _TOOK, task.main_call, took)
            story(task).info(_RAN, duration, reasons)
            return
        perf = f"{task.main_call} took {took:.4f}s"
        ran = f"{_RAN_START}{duration:.3f}s ({reasons})"
        folder = task.log_dir
        if folder is not None:
            where = str(folder)
            queued = self._queued.get(where)
            if queued is None:
                queued = self._queued[where] = []
                if where not in self._fds:
                    self._fds[where] = task_files.hold_run_log(where)
            queued.append(task_files.run_log_lines(time.time(), task.name, perf, ran))
        if self._perf_taken:
            task.logger.bind(lp_log_dir=None).log(PERF, "{}", perf)
        if self._info_taken:
            story(task).bind(lp_log_dir=None).info("{}", ran)

    def write(self) -> None:
        """Append the queued lines to their run logs: one write a folder."""
        if not self._queued:
            return
        queued, self._queued = self._queued, {}
        for where, lines in queued.items():
            fd = self._fds.get(where)
            if fd is None:
                task_files.append_run_log(where, "".join(lines))
            else:
                task_files.append_held(where, fd, "".join(lines))

    def close(self) -> None:
        """The run is over: write what is queued, let go of the run logs it kept open."""
        try:
            self.write()
        finally:
            for folder, fd in self._fds.items():
                if fd is not None:
                    task_files.release_run_log(folder)
            self._fds.clear()

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


def story_line(scope: str, log_dir: Path | None, level: str, text: str) -> None:
    """One line of the run's story (its summary) at `level` ("INFO", "ERROR"): written
    straight to `_pipeline.log`, in the file format, when neither the console nor the
    host's handlers take it (then a quiet run adds no loguru handler at all), else
    through loguru as `run_logger(scope, log_dir)` would log it."""
    takers = story_takers(_LEVELS[level])
    if takers is None or any(takers):
        run_logger(scope, log_dir).log(level, "{}", text)
    elif log_dir is not None:
        task_files.append_run_log(str(log_dir), task_files.run_log_line(
            time.time(), level, scope, text))
