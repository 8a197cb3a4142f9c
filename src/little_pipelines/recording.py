"""Recording what happened to each task of a run.

A result that came back is stored with its record, atomically, the moment it
arrives; a failure is recorded without touching the previously stored result;
a task settled without running (reused, skipped, blocked) is reported. Every
outcome goes to the run's report and its progress callback.

`Recorder` is the part of `engine.Run` that does this; the engine keeps the
loop that decides, locks and submits.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import expire
from .executors import PicklingFailed
from .fingerprint import digest_bytes
from .freshness import SCHEMA, State, code_texts, expiry_fields, inputs_after_run
from .report import Reason, RunReport, TaskOutcome
from .valuefiles import Pickled, UnpicklableValue, preview, type_name
from .worker import Attempt, Outcome

if TYPE_CHECKING:
    from .engine import Options
    from .executors import Backend
    from .locks import Held
    from .pipeline import Pipeline
    from .store import Record, Store
    from .task import Task
    from .values import RunValues


@dataclass
class Job:
    """A task decided to run: what its fingerprint was made of, and why it runs."""

    task: Task
    state: State
    reasons: list[Reason]
    record: Record | None
    deadline: float | None = None  # when the driver stops waiting (executors that can't stop work)
    lock: Held | None = None  # the task's cross-process lock, held until its result is stored


class Recorder:
    """Stores results and records outcomes; mixed into `engine.Run`, whose state it uses."""

    pipeline: Pipeline
    options: Options
    run_id: str
    report: RunReport
    store: Store
    records: dict[str, Record]
    digests: dict[str, str | None]
    failed: set[str]
    values: RunValues
    _backend: Backend | None
    _texts_saved: set[str]

    def _finish(self, job: Job, fut: Future[Any]) -> None:
        task = job.task
        try:
            out: Outcome = fut.result()
        except Exception as e:  # the executor itself failed (a worker died, a lost connection)
            out = Outcome(False, attempts=[Attempt(0.0, f"{type(e).__name__}: {e}\n")])
        for when, level, message in out.logs:  # records captured on a remote worker
            task.logger.patch(_at(when)).log(level, "{}", message)
        retried = len(out.attempts) > 1
        if not out.ok:
            failed = out.value if isinstance(out.value, PicklingFailed) else None
            error = (self._unpicklable(failed.kind, failed.error) if failed is not None
                     else out.error)
            self._fail(task, error, duration=out.duration, record=job.record,
                       reasons=job.reasons, attempts=len(out.attempts))
        elif self._backend is not None and self._backend.remote:
            self._store(job, out.kind, out.duration, blob=out.value, attempts=len(out.attempts),
                        preview_text=out.preview)
        else:
            self._store(job, out.value, out.duration, attempts=len(out.attempts))
        if retried:
            task.logger.info("took {} attempts", len(out.attempts))
        if job.lock is not None:
            job.lock.release()
        self._release(task.name)

    @staticmethod
    def _unpicklable(kind: str, error: str) -> str:
        return (f"its result, a {kind}, cannot be stored: {error}. Return plain data "
                f"(numbers, strings, lists, dicts, DataFrames) instead of functions, locks or "
                f"open connections.")

    def _store(self, job: Job, value: Any, duration: float, *,
               blob: bytes | None = None, attempts: int = 1, preview_text: str = "") -> None:
        task = job.task
        if blob is None:
            try:
                pickled = self.store.pickle(task.name, value)
            except UnpicklableValue as e:
                self._fail(task, self._unpicklable(e.kind, e.error), duration=duration,
                           record=job.record, reasons=job.reasons, attempts=attempts)
                return
            except OSError as e:
                self._unwritten(job, e, duration)
                return
            pickled.preview = preview(value)
            kind = type_name(value)
        else:
            kind = value  # a remote worker sends the type's name along with the bytes
            pickled = Pickled(digest_bytes(blob), len(blob), blob=blob, preview=preview_text)
        digest = pickled.digest
        when = now()
        state = inputs_after_run(job.state, task.logger)
        try:
            expiry = expiry_fields(
                task, when, run_id=self.run_id,
                drop_none=kind == "builtins.NoneType" and self.pipeline.expire_results_if_none,
            )
        except Exception as e:  # a user's expire_results function (checked once before the run)
            pickled.discard()
            self._fail(task, f"its expire_results policy failed: {type(e).__name__}: {e}",
                       duration=duration, record=job.record, reasons=job.reasons)
            return
        record: Record = {
            "schema": SCHEMA,
            **state.record_fields(),
            "digest": digest,
            "created_at": when.timestamp(),
            "duration": duration,
            "reasons": [str(r) for r in job.reasons],
            "type": kind,
            "size": pickled.size,
            "preview": pickled.preview,
            **expiry,
        }
        try:
            self.store.put(task.name, pickled, record)
        except OSError as e:
            self._unwritten(job, e, duration)
            return
        try:
            texts = code_texts(job.state, self._texts_saved)
            if texts:
                self.store.save_texts(texts)
        except OSError as e:  # texts only serve `explain`; the result itself is stored
            task.logger.debug("code texts not kept for explain: {}", e)
        self.records[task.name] = record
        self.digests[task.name] = digest
        self.values.keep(task.name, pickled.blob)  # None for a large value: read from its file
        task.is_executed = True
        task.is_skipped = False
        self._record(TaskOutcome(task.name, "executed", tuple(job.reasons), duration,
                                 attempts=attempts))
        _console(task).info("✓ ran in {:.3f}s ({})", duration, "; ".join(map(str, job.reasons)))

    def _unwritten(self, job: Job, e: OSError, duration: float) -> None:
        kept = " (its previous result is kept)" if job.record is not None else ""
        self._fail(job.task, f"its result could not be written to the store{kept}: {e}",
                   duration=duration, record=job.record, reasons=job.reasons)

    def _fail(
        self,
        task: Task,
        error: str,
        *,
        duration: float = 0.0,
        record: Record | None = None,
        reasons: list[Reason] | None = None,
        attempts: int = 1,
    ) -> None:
        self.failed.add(task.name)
        last = error.strip().splitlines()[-1] if error.strip() else "failed"
        outcome = TaskOutcome(task.name, "failed", (*(reasons or ()), Reason("error", detail=last)),
                              duration, error=error, attempts=attempts)
        self._record(outcome)
        task.logger.error("✗ failed after {:.3f}s: {}", duration, last)
        if "\n" in error.strip():  # the traceback goes to the task's file, not the console
            task.logger.bind(lp_file_only=True).error("{}", error)

    def _settle(
        self, name: str, status: str, reasons: list[Reason], record: Record | None
    ) -> None:
        stored = record.get("duration", 0.0) if record and status == "cached" else 0.0
        outcome = TaskOutcome(name, status, tuple(reasons), 0.0, stored_duration=stored)
        self._record(outcome)
        if not self.options.planned:
            task = self.pipeline._tasks[name]
            log = _console(task)
            if status == "cached":
                # Console only: a line per reused task in the run's log would cost a
                # write per task on every warm run; the summary line counts them.
                task.logger.bind(lp_log_dir=None).info(
                    "↺ reused cached result (saved {:.3f}s)", stored)
            elif status == "skipped":
                log.info("- skipped: {}", outcome.why)
            elif status == "failed":
                log.error("✗ not run: {}", outcome.why)
        self._release(name)

    def _record(self, outcome: TaskOutcome) -> None:
        self.report.add(outcome)
        if self.options.progress is not None:
            self.options.progress("finish", outcome.name, outcome)

    def _release(self, name: str) -> None:
        self.values.settled(name)


def _console(task: Task) -> Any:
    """The task's logger for its one status line (ran, reused, skipped): the console,
    the host's handlers and the run's log get it, not the task's own file."""
    return task.logger.bind(lp_run_log=True)


def _at(when: float) -> Callable[[Any], None]:
    """A loguru patcher giving a replayed record the time it was made on the worker."""
    moment = datetime.fromtimestamp(when).astimezone()

    def patch(record: Any) -> None:
        record["time"] = moment

    return patch


def now() -> Any:
    """The clock every record uses: `expire.now()`, so tests can freeze it."""
    return expire.now()


