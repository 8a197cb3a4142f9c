"""Recording what happened to each task of a run.

A result that came back is stored with its record, atomically, the moment it
arrives; a failure is recorded without touching the previously stored result;
a task settled without running (reused, skipped, blocked) is reported. Every
outcome goes to the run's report and its progress callback.

A `Recorder` is held by the run (`engine.Run`), which keeps the loop that
decides, locks and submits; the recorder writes what the run learns: the
report, each task's record and result digest, the failures.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import expire
from .executors import PicklingFailed
from .fingerprint import content_digest, digest_bytes
from .freshness import SCHEMA, State, expiry_fields, inputs_after_run
from .log import PERF, at_time
from .report import Reason, RunReport, Status, TaskOutcome, last_line
from .statuslines import StatusLines, story
from .taskcode import code_texts
from .valuefiles import Pickled, UnpicklableValue, preview, preview_head, type_name
from .worker import Outcome

if TYPE_CHECKING:
    from .locks import Held
    from .spec import RunSpec
    from .store import Record
    from .task import Task
    from .values import RunValues


#: Each status line a task gets in the logs, with its status's symbol (made once);
#: the lines of a task that ran or was reused are in `statuslines`.
_FAILED = Status.FAILED.symbol + " failed after {:.3f}s: {}"
_NOT_RUN = Status.FAILED.symbol + " not run: {}"
_SKIPPED = Status.SKIPPED.symbol + " skipped: {}"


#: Results whose preview is their repr (reprlib's, up to its 40 characters for an int)
#: and whose type name is known: most tasks of a chain return one.
_SMALL_ATOMS = {t: f"builtins.{t.__qualname__}" for t in (int, float, bool, type(None))}
_ATOM_CHARS = 40


@dataclass
class Job:
    """A task decided to run: what its fingerprint was made of, and why it runs."""

    task: Task
    state: State
    reasons: list[Reason]
    record: Record | None
    deadline: float | None = None  # when the driver stops waiting (executors that can't stop work)
    lock: Held | None = None  # the task's cross-process lock, held until its result is stored


@dataclass
class _Unsaved:
    """A result pickled and recorded, waiting for its group's commit (`Recorder.flush`)."""

    job: Job
    pickled: Pickled
    record: Record
    duration: float
    took: float
    attempts: int


class Recorder:
    """Stores results and reports outcomes for one run.

    Parameters:
        spec: the run's spec (its store, tasks, progress callback, planned or not).
        run_id: the run's id, written into every record it stores.
        records: the stored records the run read, kept current as results are stored.
        values: the values in flight, told when a task is settled.
        digests: each decided task's result digest, filled in as results are stored.
    """

    def __init__(self, spec: RunSpec, run_id: str, records: dict[str, Record],
                 values: RunValues, digests: dict[str, str | None]) -> None:
        self.spec = spec
        self.run_id = run_id
        self.store = spec.store
        self.records = records
        self.values = values
        self.report = RunReport(spec.name, run_id=run_id, planned=spec.planned)
        self.digests = digests
        self.failed: set[str] = set()
        #: when each task was submitted (epoch seconds), set by the run
        self.started: dict[str, float] = {}
        self._texts_saved: set[str] = set()
        self.lines = StatusLines()
        self._unsaved: list[_Unsaved] = []

    def finish(self, job: Job, fut: Future[Any] | Outcome, *, remote: bool) -> bool:
        """A submitted task came back (`remote`: its value arrives pickled), as a Future or,
        run inline, as its outcome: fail it, or add its result to the group `flush`
        commits. True if the task is settled now; False if it waits for the group's
        commit (its dependants must wait too)."""
        task = job.task
        if isinstance(fut, Outcome):
            out = fut
        else:
            try:
                out = fut.result()
            except Exception as e:  # the executor itself failed (a worker died, a lost connection)
                out = Outcome.broken(e)
        for when, level, message in out.logs:  # records captured on a remote worker
            task.logger.patch(at_time(when)).log(level, "{}", message)
        if len(out.attempts) > 1:
            task.logger.info("took {} attempts", len(out.attempts))
        unsaved = None
        if not out.ok:
            if out.attempts:
                task.logger.log(PERF, "{} took {:.4f}s", task.main_call,
                                out.attempts[-1].duration)
            failed = out.value if isinstance(out.value, PicklingFailed) else None
            error = (self._unpicklable(failed.kind, failed.error) if failed is not None
                     else out.error)
            self.fail(task, error, duration=out.duration, record=job.record,
                      reasons=job.reasons, attempts=len(out.attempts))
        elif remote:
            unsaved = self._store_result(job, out.kind, out.duration, blob=out.value,
                               attempts=len(out.attempts), content=out.content,
                               preview_text=out.preview, took=out.attempts[-1].duration)
        else:
            unsaved = self._store_result(job, out.value, out.duration,
                                         attempts=len(out.attempts),
                                         took=out.attempts[-1].duration)
        if unsaved is not None:
            self._unsaved.append(unsaved)
            return False
        self._settled(job)
        return True

    def _settled(self, job: Job) -> None:
        # The lock is released only now: after the result's commit (or its failure).
        if job.lock is not None:
            job.lock.release()
        self.values.settled(job.task.name)

    def flush(self) -> list[str]:
        """Commit the results waiting in the group, in one transaction; the names settled.

        The run calls this each time it has taken in what finished, before it starts
        or waits for anything else, so a result is committed before any task that
        depends on it starts and before its lock is released. If the group's commit
        fails (a full disk), each result is stored on its own, so one bad value fails
        only its task.
        """
        group, self._unsaved = self._unsaved, []
        if not group:
            return []
        stored: list[_Unsaved] = []
        if len(group) > 1:
            try:
                self.store.put_many([(u.job.task.name, u.pickled, u.record) for u in group])
                stored = group
            except OSError:
                pass  # one by one below
        if not stored:
            for u in group:
                try:
                    self.store.put(u.job.task.name, u.pickled, u.record)
                except OSError as e:
                    self._unwritten(u.job, e, u.duration)
                    continue
                stored.append(u)
        self._save_texts(stored)
        try:
            for u in stored:
                self._stored(u)
        finally:  # their run log lines, one write, before any lock is released
            self.lines.write()
        for u in group:
            self._settled(u.job)
        return [u.job.task.name for u in group]

    def _save_texts(self, stored: list[_Unsaved]) -> None:
        try:
            texts: dict[str, str] = {}
            for u in stored:
                texts.update(code_texts(u.job.state, self._texts_saved))
            if texts:
                self.store.save_texts(texts)
        except OSError as e:  # texts only serve `explain`; the results themselves are stored
            stored[0].job.task.logger.debug("code texts not kept for explain: {}", e)

    def _stored(self, u: _Unsaved) -> None:
        """A result is committed: the run may use its record, digest and value."""
        task = u.job.task
        self.records[task.name] = u.record
        self.digests[task.name] = u.pickled.digest
        self.values.keep(task.name, u.pickled.blob)  # None for a large value: read from its file
        self.add(TaskOutcome(task.name, "executed", tuple(u.job.reasons), u.duration,
                             attempts=u.attempts))
        self.lines.ran(task, u.duration, u.took, "; ".join(u.record["reasons"]))

    @staticmethod
    def _unpicklable(kind: str, error: str) -> str:
        return (f"its result, a {kind}, cannot be stored: {error}. Return plain data "
                f"(numbers, strings, lists, dicts, DataFrames) instead of functions, locks or "
                f"open connections.")

    def _store_result(self, job: Job, value: Any, duration: float, *,
                      blob: bytes | None = None, attempts: int = 1, content: str | None = None,
                      preview_text: str = "", took: float = 0.0) -> _Unsaved | None:
        """Pickle a result and build its record for the group's commit (`took`: its last
        attempt, the PERF timing of its main call); None if it failed already."""
        task = job.task
        if blob is None:
            try:
                # Pickled once, a large value straight into its value file (valuefiles).
                pickled = self.store.pickle(task.name, value)
            except UnpicklableValue as e:
                self.fail(task, self._unpicklable(e.kind, e.error), duration=duration,
                          record=job.record, reasons=job.reasons, attempts=attempts)
                return None
            except OSError as e:
                self._unwritten(job, e, duration)
                return None
            kind = _SMALL_ATOMS.get(type(value))
            text = repr(value) if kind is not None else ""
            if kind is not None and len(text) <= _ATOM_CHARS:
                pickled.preview = text  # what `preview` makes of it (~2 µs less)
            else:  # a small atom has no head, no content digest (its bytes' serves)
                pickled.preview = preview(value)
                pickled.head = preview_head(value)
                kind = type_name(value)
                content = content_digest(value)  # equal values, equal digests: early cutoff
        else:
            kind = value  # a remote worker sends the type's name (and digest) with the bytes
            pickled = Pickled(digest_bytes(blob), len(blob), blob=blob, preview=preview_text)
        digest = pickled.digest
        created = expire.timestamp()  # the clock tests freeze (expire._get_now)
        state = inputs_after_run(job.state, task)
        try:
            expiry = expiry_fields(
                task, created, run_id=self.run_id,
                drop_none=kind == "builtins.NoneType" and self.spec.expire_none,
            )
        except Exception as e:  # a user's expire_results function (checked once before the run)
            pickled.discard()
            self.fail(task, f"its expire_results policy failed: {type(e).__name__}: {e}",
                      duration=duration, record=job.record, reasons=job.reasons)
            return None
        # Filled in place, in the order records always had (no dicts made to merge).
        record: Record = state.record_fields({"schema": SCHEMA})
        record["digest"] = digest  # of the bytes: the store checks the value is intact
        if content is not None:
            record["value_digest"] = content
        record["created_at"], record["duration"] = created, duration
        record["reasons"] = [str(r) for r in job.reasons]
        record["type"], record["size"] = kind, pickled.size
        record["preview"] = pickled.preview  # for `lpipe show`, without loading the value
        if pickled.head:
            record.update(pickled.head)
        record.update(expiry)
        return _Unsaved(job, pickled, record, duration, took, attempts)

    def _unwritten(self, job: Job, e: OSError, duration: float) -> None:
        kept = " (its previous result is kept)" if job.record is not None else ""
        self.fail(job.task, f"its result could not be written to the store{kept}: {e}",
                  duration=duration, record=job.record, reasons=job.reasons)

    def fail(
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
        last = last_line(error)
        outcome = TaskOutcome(task.name, "failed",
                              (*(reasons or ()), Reason("error", detail=last)),
                              duration, error=error, attempts=attempts)
        self.add(outcome)
        task.logger.bind(lp_story=True).error(_FAILED, duration, last)
        if "\n" in error.strip():  # the traceback goes to the task's file, not the console
            task.logger.bind(lp_file_only=True).error("{}", error)

    def settle(
        self, name: str, status: str, reasons: list[Reason], record: Record | None
    ) -> None:
        """Report a task settled without running (reused, skipped, blocked, planned)."""
        stored = record.get("duration", 0.0) if record and status == "cached" else 0.0
        outcome = TaskOutcome(name, status, tuple(reasons), 0.0, stored_duration=stored)
        self.add(outcome)
        if not self.spec.planned:
            task = self.spec.tasks[name]
            if status == "cached":
                self.lines.reused(task, stored)
            elif status == "skipped":
                story(task).info(_SKIPPED, outcome.why)
            elif status == "failed":
                story(task).error(_NOT_RUN, outcome.why)
        self.values.settled(name)

    def add(self, outcome: TaskOutcome) -> None:
        """Add a task's outcome to the report and tell the progress callback."""
        # Wall-clock start and end, for the run's timeline: a task's code ran for
        # `duration` up to when its outcome arrived (not since it was queued).
        end = time.time()
        began = self.started.get(outcome.name)
        outcome.finished_at = end
        outcome.started_at = end if began is None else max(began, end - outcome.duration)
        self.report.add(outcome)
        if self.spec.progress is not None:
            self.spec.progress("finish", outcome.name, outcome)

