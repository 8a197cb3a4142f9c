"""The run loop: decide, run, store, report.

One loop drives every executor over `graph.Ready`'s `pop()/done()`: each ready
task is decided (freshness), and if it must run it is submitted; results are
stored by this process (the driver owns the cache) the moment they arrive, and
`done()` releases the tasks that waited on them. A plan walks the same loop
without running or storing anything. How each outcome is stored and reported
lives in `recording.py`; the values passed between tasks in `values.py`.

A run is given a `RunSpec` (plain data, see `spec.py`) and returns a
`RunResult`; it knows nothing of the `Pipeline` class.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from . import gcfreeze
from .errors import FingerprintError, StoreError, TaskNotSendable
from .executors import Backend, ForkBackend, LocalBackend, SequentialExecutor, prepare
from .freshness import (
    Probe,
    State,
    current_state,
    reasons_to_run,
    result_digest,
)
from .graph import Ready
from .locks import Held, TaskLocks
from .recording import Job, Recorder
from .report import Reason, RunReport, TaskOutcome, fmt_time
from .spec import RunResult, RunSpec
from .values import RunValues
from .worker import Attempt, Call, Outcome

if TYPE_CHECKING:
    from .store import Record
    from .task import Task

_WILL_RUN = "<will run>"  # a plan's stand-in digest for a task that would run
_POLL = 0.05  # seconds between tries of a task lock another run holds
_SAY_EVERY = 10.0  # seconds between "waiting for task X" lines
_FORCED = Reason("forced")  # frozen: one serves every forced task
_ONCE = Call()  # (immutable) one attempt, no time limit, no params: most tasks' call


class Run:
    """The state of one run; the pipeline reads `value()` while it is active."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.run_id = uuid.uuid4().hex[:12]
        self.probe = Probe()
        self.states: dict[str, State] = {}  # what each decided task's fingerprint was made of
        self.store = spec.store
        self.records: dict[str, Record] = {}  # read when the run begins (execute)
        self._pending: dict[str, Job] = {}
        self._finished: queue.SimpleQueue[tuple[str, Future[Any] | Outcome]] = queue.SimpleQueue()
        self._backend: Backend | None = None
        self._make_backend: Callable[[], Backend] | None = None
        self._abandoned = False
        self.locks = TaskLocks(spec.lock_dir)
        #: tasks whose lock another run holds: name -> (job, waiting since, last said)
        self._waiting: dict[str, tuple[Job, float, float]] = {}
        self._seconds: dict[int, str] = {}  # see _created
        self.digests: dict[str, str | None] = {}  # each decided task's (None: none usable)
        self.values = RunValues(self.store, spec.deps, spec.selected, self.digests)
        self.recorder = Recorder(spec, self.run_id, self.records, self.values, self.digests)
        self.failed = self.recorder.failed
        self.started = self.recorder.started  # when each task was submitted (epoch seconds)

    @property
    def report(self) -> RunReport:
        """The report so far (complete once `execute` returned)."""
        return self.recorder.report

    # -- the loop ----------------------------------------------------------------
    def execute(self) -> RunResult:
        """Walk the graph: decide each ready task, submit what must run, store what returns."""
        opts = self.spec
        start = time.perf_counter()
        self.report.started_at = time.time()
        # Checked now, started when the first task must run (see executors.prepare).
        self._make_backend = None if opts.planned else prepare(
            opts.executor, opts.workers, opts.tasks, opts.scheduler
        )
        gcfreeze.freeze()
        try:
            if not opts.planned:
                self.locks.begin()  # before the records are read: see TaskLocks.begin
            self.records.update(self.store.records(opts.selected))
            self._loop(Ready(opts.selected, opts.deps))
        except KeyboardInterrupt:
            self.recorder.flush()  # what finished is stored and reported as executed
            self._interrupted()
            raise
        finally:
            self.recorder.flush()  # interrupted between taking results in and committing them
            self.recorder.lines.close()
            if self._backend is not None:
                # Don't wait for work we gave up on (timeouts) or that was interrupted.
                self._backend.close(cancel=bool(self._pending) or self._abandoned)
            for job in self._pending.values():
                if job.lock is not None:
                    job.lock.release()
            # Each run opens the lock file anew: without this, a process that runs
            # a pipeline every minute runs out of file descriptors within a day.
            self.locks.close()
            self._end_of_run()
            gcfreeze.unfreeze()
            self.report.duration = time.perf_counter() - start
        return RunResult(self.report, self.states, self.records, self.digests)

    def _loop(self, ready: Ready) -> None:
        # Until every task is done, or (as graphlib's is_active) none can progress.
        while ready.left and (ready or self._pending or self._waiting):
            if ready:
                name = ready.pop()
                job = self._decide(name)
                if job is not None:
                    held = self.locks.try_acquire(name)
                    if held is None:
                        self._wait_for(job)
                        continue
                    job = self._locked(job, held)
                if job is None:
                    ready.done(name)
                    continue
                self._submit(job, ready)
                # (Nothing pending: the task ran inline and is settled, see `_submit`.)
                if self._pending and (not self._finished.empty() or not ready):
                    self._collect(ready, block=not ready and not self._waiting)
            else:
                if self._pending:
                    self._collect(ready, block=True)
                else:
                    time.sleep(_POLL)
                self._retry_waiting(ready)

    def _wait_for(self, job: Job) -> None:
        """Another run holds the task's lock: note it and keep going with everything else.

        Waiting in the kernel instead (a blocking lockf) kept this run from storing
        and releasing what it was running: two runs waiting for each other's tasks
        deadlocked (EDEADLK). The task is tried again each time round the loop.
        """
        name = job.task.name
        self._waiting[name] = (job, time.monotonic(), 0.0)
        self._say_waiting(name)

    def _say_waiting(self, name: str) -> None:
        """The "waiting for task X, held by PID n" line: on the console at any level,
        again every ~10 s, so a run behind a stopped one never looks hung in silence."""
        job, since, said = self._waiting[name]
        now = time.monotonic()
        if said and now - said < _SAY_EVERY:
            return
        self._waiting[name] = (job, since, now)
        waited = f" ({now - since:.0f}s so far)" if said else ""
        job.task.logger.bind(lp_console=True).warning(
            "waiting for task {!r}, held by PID {} (another run is running it){}",
            name, self.locks.holder(name), waited)

    def _retry_waiting(self, ready: Ready) -> None:
        for name in list(self._waiting):
            held = self.locks.try_acquire(name)
            if held is None:
                self._say_waiting(name)
                continue
            job = self._locked(self._waiting.pop(name)[0], held)
            if job is None:
                ready.done(name)
            else:
                self._submit(job, ready)

    def _locked(self, job: Job, held: Held) -> Job | None:
        """The task's lock is ours: re-decide from its record, which another run may have
        stored meanwhile (then reused instead of computed twice)."""
        name = job.task.name
        # Read the record again even when the lock was free: another run may have stored
        # this task after this run read the records (only after waiting was rejected: a
        # run that finished it just before this one asked for the lock ran it twice).
        # Skip it if no other run can have begun (solo), or none here did and none wrote.
        try:
            locks = self.locks
            fresh = locks.solo or (locks.alone_here() and self.store.untouched_by_others())
            record = job.record if fresh else self.store.record(name)
        except OSError:
            record = job.record
        if record is not job.record and record != job.record:
            self.records.pop(name, None)
            if record is not None:
                self.records[name] = record
            again = self._decide(name)
            if again is None:  # settled (reused) from what the other run stored
                held.release()
                return None
            job = again
        job.lock = held
        return job

    def _submit(self, job: Job, ready: Ready) -> None:
        """Start the task where it runs; run sequentially (inline), it runs now and is
        stored and settled before this returns (`_settle`)."""
        if self._backend is None and self._make_backend is not None:
            try:
                self._backend = self._make_backend()
            except BaseException:
                if job.lock is not None:
                    job.lock.release()
                raise
        task, backend = job.task, self._backend
        assert backend is not None
        name = task.name
        params = self.spec.params[name]
        if task.retries == 0 and task.timeout is None and not params:
            call = _ONCE  # most tasks (~0.4 µs a task less)
        else:
            delay = task.retry_delay
            delays = tuple(delay) if isinstance(delay, (list, tuple)) else (delay,)
            call = Call(task.retries, delays, task.timeout, False, params)
            if task.timeout is not None and not _can_stop(backend):
                job.deadline = time.monotonic() + task.timeout * (task.retries + 1) + sum(
                    delays[: task.retries])
        self.started[name] = time.time()
        if self.spec.progress is not None:
            self.spec.progress("start", name, None)
        self._pending[name] = job  # (while it runs: Ctrl-C reports it interrupted)
        here = backend if isinstance(backend, LocalBackend) and backend.inline else None
        try:
            if here is not None:  # sequential: run it now, no Future, no queue (~1 µs a task)
                out = here.run(task, self.values.for_function(task), call)
            else:
                fut = backend.submit(task, lambda: self.values.for_function(task),
                                     lambda: self.values.for_worker(task), call)
        except (TaskNotSendable, StoreError) as e:  # StoreError: an upstream value is unreadable
            out = Outcome(False, attempts=[Attempt(0.0, f"{e}\n")])
            if here is None:
                self._finished.put((name, out))
                return
        if here is not None:
            self._settle(ready, job, out)
            return
        fut.add_done_callback(lambda f: self._finished.put((name, f)))

    def _settle(self, ready: Ready, job: Job, out: Outcome) -> None:
        """`_collect` for a task that ran inline (nothing else can have finished)."""
        name = job.task.name
        del self._pending[name]
        if self.recorder.finish(job, out, remote=False):
            ready.done(name)  # failed: settled now
        for done in self.recorder.flush():
            ready.done(done)

    def _collect(self, ready: Ready, *, block: bool) -> None:
        """Store every finished task (waiting for one if `block`) and release its dependants."""
        deadlines = [j.deadline for j in self._pending.values()
                     if j.deadline is not None] if block else []
        wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        if block and self._waiting:  # come back to try the locks other runs hold
            wait = _POLL if wait is None else min(wait, _POLL)
        try:
            item = self._finished.get(block=block, timeout=wait)
        except queue.Empty:
            self._expire_overdue(ready)
            return
        remote = bool(self._backend and self._backend.remote)
        while True:
            name, fut = item
            job = self._pending.pop(name, None)
            if job is not None and self.recorder.finish(job, fut, remote=remote):
                ready.done(name)  # failed: settled now (None: it had timed out, given up on)
            if self._finished.empty():  # only this loop takes from it: not empty stays so
                break
            item = self._finished.get_nowait()
        # Everything that finished by now is committed in one transaction, before this
        # loop starts or waits for anything else; only then are its dependants released.
        for name in self.recorder.flush():
            ready.done(name)

    def _expire_overdue(self, ready: Ready) -> None:
        now = time.monotonic()
        for name, job in list(self._pending.items()):
            if job.deadline is not None and now >= job.deadline:
                del self._pending[name]
                self._abandoned = True
                if job.lock is not None:
                    job.lock.release()
                self.recorder.fail(job.task, f"TaskTimeout: gave up after {job.task.timeout}s "
                                   f"(timeout=); this executor cannot stop the work, which "
                                   f"was abandoned", duration=job.task.timeout or 0.0,
                                   record=job.record, reasons=job.reasons)
                self.values.settled(name)
                ready.done(name)

    def _interrupted(self) -> None:
        """Ctrl-C: what was running is marked interrupted, what had not started is skipped."""
        reason = Reason("interrupted")
        for name, job in self._pending.items():
            self.recorder.add(TaskOutcome(name, "interrupted", (*job.reasons, reason)))
            job.task.logger.warning("interrupted")
        for name in self.spec.selected:
            if name not in self.report.outcomes:
                self.recorder.add(TaskOutcome(name, "skipped", (reason,)))
        self.report.interrupted = True

    # -- deciding --------------------------------------------------------------------
    def _decide(self, name: str) -> Job | None:
        """Settle the task now (cached, skipped, blocked) or return what to run."""
        opts = self.spec
        task = opts.tasks[name]
        record = self.records.get(name)
        if name in opts.skip:
            self.digests[name] = record.get("digest") if record else None
            self.recorder.settle(name, "skipped", [Reason("skip_requested")], record)
            return None
        upstream, blocked = self._upstream_digests(task)
        if blocked is not None:
            self._blocked(task, *blocked)
            return None
        waiting = [d for d, digest in upstream.items()  # (only a plan has such digests)
                   if digest == _WILL_RUN] if opts.planned else []
        if waiting:
            # A plan cannot know whether an upstream task that will run changes its
            # result: judge this task as if it did not, and say it waits on it.
            old = record.get("upstream", {}) if record else {}
            upstream = {d: old.get(d, digest) if d in waiting else digest
                        for d, digest in upstream.items()}
        try:
            state = current_state(task, record, self.probe, opts.inputs[name], upstream,
                                  opts.params[name])
        except (OSError, FingerprintError) as e:
            why = f"could not read its files: {e}" if isinstance(e, OSError) else str(e)
            self.recorder.fail(task, why, record=record)
            self.values.settled(name)
            return None
        self.states[name] = state
        forced = opts.force_all or name in opts.force
        reasons = [_FORCED] if forced else reasons_to_run(
            task, record, state, run_id=self.run_id
        )
        if not reasons and not waiting:
            assert record is not None
            self.digests[name] = record["digest"]
            self._remember_stamps(name, record, state)
            created = self._created(record.get("created_at", 0.0))
            self.recorder.settle(name, "cached", [Reason("unchanged", detail=created)], record)
            return None
        if opts.planned:
            self.digests[name] = _WILL_RUN
            if reasons:
                self.recorder.settle(name, "run", reasons, record)
                return None
            self.recorder.settle(name, "waiting", [Reason("waiting", d) for d in waiting], record)
            return None
        return Job(task, state, reasons, record)

    def _created(self, ts: float) -> str:
        """`fmt_time(ts)`, made once a second: a warm run's results were stored within
        a few seconds of each other, and strftime cost ~2 µs a reused task."""
        second = int(ts)
        text = self._seconds.get(second)
        if text is None:
            text = self._seconds[second] = fmt_time(second)
        return text

    def _remember_stamps(self, name: str, record: Record, state: State) -> None:
        """A reused task whose files were touched but not changed: record their new stat.

        Without this, a touched file (a checkout, a copy) would be hashed again on
        every later run, since its size and mtime never match the record again.
        """
        if self.spec.planned:
            return  # a plan stores nothing
        if state.code == record.get("code") and state.inputs == record.get("inputs"):
            return
        try:
            self.store.update_record(name, code=state.code, inputs=state.inputs)
        except OSError:
            return  # only a shortcut for later runs: they hash the files again instead
        record.update(code=state.code, inputs=state.inputs)

    def _upstream_digests(self, task: Task) -> tuple[dict[str, str], tuple[str, str] | None]:
        """Result digests of the task's dependencies, or (why, which) it cannot run."""
        digests: dict[str, str] = {}
        for dep in self.spec.deps[task.name]:
            if dep in self.failed:
                return digests, ("upstream_failed", dep)
            rec = self.records.get(dep)
            if dep in self.digests:
                digest = self.digests[dep]
            else:  # not selected in this run (single_task): use what is stored
                rec = rec or self.store.record(dep)
                digest = rec.get("digest") if rec else None
            if digest is None:
                return digests, ("upstream_skipped", dep)
            if rec and rec.get("digest") == digest:  # count by content (early cutoff)
                digest = result_digest(rec) or digest
            digests[dep] = digest
        return digests, None

    def _blocked(self, task: Task, why: str, dep: str) -> None:
        reason = Reason(why, dep)
        if why == "upstream_failed" and task.if_upstream_errors == "FAIL":
            self.failed.add(task.name)
            self.recorder.settle(task.name, "failed", [reason], self.records.get(task.name))
        else:
            self.digests[task.name] = None
            self.recorder.settle(task.name, "skipped", [reason], self.records.get(task.name))

    def value(self, name: str) -> Any:
        """A fresh copy of a task's result during the run (see RunValues), or MISSING."""
        return self.values.value(name)

    # -- finishing ------------------------------------------------------------------
    def _end_of_run(self) -> None:
        """Results marked `on_complete` served this run; now they expire."""
        if self.spec.planned:
            return
        ended = [
            name for name, rec in self.records.items()
            if rec.get("expiry") == "on_complete" and rec.get("run_id") == self.run_id
        ]
        if ended:
            # Drop the values but keep the records: the next run then says why the
            # task reruns ("expired when the run that stored it ended").
            try:
                self.store.drop_values(ended)
            except OSError as e:  # the records name this run, so they count as expired anyway
                self.spec.tasks[ended[0]].logger.warning(
                    "on_complete values not dropped: {}", e)
        self.values.clear()


def _can_stop(backend: Backend) -> bool:
    """Whether a task's timeout is enforced where it runs (see worker._time_limit)."""
    if isinstance(backend, ForkBackend):
        return True
    return isinstance(backend.executor, SequentialExecutor) and (
        threading.current_thread() is threading.main_thread()
    )


__all__ = ["Run"]
