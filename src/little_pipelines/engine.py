"""The run loop: decide, run, store, report.

One loop drives every executor over graphlib's `get_ready()/done()`: each ready
task is decided (freshness), and if it must run it is submitted; results are
stored by this process (the driver owns the cache) the moment they arrive, and
`done()` releases the tasks that waited on them. A plan walks the same loop
without running or storing anything.
"""

from __future__ import annotations

import graphlib
import heapq
import pickle
import queue
import time
import traceback
import uuid
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import expire
from .fingerprint import FileDigests, digest_bytes
from .freshness import SCHEMA, State, current_state, expiry_fields, reasons_to_run
from .report import Reason, RunReport, TaskOutcome
from .store import MISSING

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .store import Record
    from .task import Task

_WILL_RUN = "<will run>"  # a plan's stand-in digest for a task that would run


@dataclass
class Options:
    """What the caller asked of one run, normalised and checked by the pipeline."""

    selected: list[str]
    deps: Mapping[str, list[str]]
    inputs: Mapping[str, list[str]]
    force_all: bool = False
    force: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    planned: bool = False
    executor: Executor | None = None


@dataclass
class _Pending:
    task: Task
    state: State
    reasons: list[Reason]
    record: Record | None


@dataclass
class Run:
    """The state of one run; the pipeline reads `values` while it is active."""

    pipeline: Pipeline
    options: Options
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    values: dict[str, bytes] = field(default_factory=dict)  # pickled results still needed
    digests: dict[str, str | None] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.report = RunReport(self.pipeline.name, run_id=self.run_id,
                                planned=self.options.planned)
        self.files = FileDigests()
        self.store = self.pipeline._store_or_open()
        self.records = self.store.records(self.options.selected)
        self._left: dict[str, int] = {}  # dependants of a task still to finish in this run
        for name in self.options.selected:
            for dep in self.options.deps[name]:
                self._left[dep] = self._left.get(dep, 0) + 1

    # -- the loop ----------------------------------------------------------------
    def execute(self) -> RunReport:
        opts = self.options
        start = time.perf_counter()
        self.report.started_at = time.time()
        index = {name: i for i, name in enumerate(opts.selected)}
        in_run = set(opts.selected)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name in opts.selected:
            sorter.add(name, *(d for d in opts.deps[name] if d in in_run))
        sorter.prepare()
        executor = opts.executor
        finished: queue.SimpleQueue[tuple[str, Future[Any]]] = queue.SimpleQueue()
        pending: dict[str, _Pending] = {}
        ready: list[int] = []
        while sorter.is_active():
            for name in sorter.get_ready():
                heapq.heappush(ready, index[name])
            if ready:
                name = opts.selected[heapq.heappop(ready)]
                job = self._decide(name)
                if job is None:
                    sorter.done(name)
                    continue
                pending[name] = job
                assert executor is not None
                fut = executor.submit(call_task, job.task, self._inputs(job.task))
                fut.add_done_callback(lambda f, n=name: finished.put((n, f)))
                if not finished.empty() or not ready:
                    self._collect(finished, pending, sorter, block=not ready)
            elif pending:
                self._collect(finished, pending, sorter, block=True)
        self._end_of_run()
        self.report.duration = time.perf_counter() - start
        return self.report

    def _collect(
        self,
        finished: queue.SimpleQueue[tuple[str, Future[Any]]],
        pending: dict[str, _Pending],
        sorter: graphlib.TopologicalSorter[str],
        *,
        block: bool,
    ) -> None:
        """Store every finished task (waiting for one if `block`) and release its dependants."""
        try:
            item = finished.get(block=block)
        except queue.Empty:
            return
        while True:
            name, fut = item
            self._finish(pending.pop(name), fut)
            sorter.done(name)
            try:
                item = finished.get_nowait()
            except queue.Empty:
                return

    # -- deciding --------------------------------------------------------------------
    def _decide(self, name: str) -> _Pending | None:
        """Settle the task now (cached, skipped, blocked) or return what to run."""
        opts = self.options
        task = self.pipeline._tasks[name]
        record = self.records.get(name)
        if name in opts.skip:
            self.digests[name] = record.get("digest") if record else None
            task.is_skipped = True
            return self._settle(name, "skipped", [Reason("skip_requested")], record)
        upstream, blocked = self._upstream_digests(task)
        if blocked is not None:
            return self._blocked(task, *blocked)
        try:
            state = current_state(task, record, self.files, opts.inputs[name], upstream)
        except OSError as e:
            self._fail(task, f"could not read its files: {e}", record=record)
            self._release(name)
            return None
        forced = opts.force_all or name in opts.force
        reasons = [Reason("forced")] if forced else reasons_to_run(
            task, record, state, run_id=self.run_id, now=_now()
        )
        waiting = [d for d, digest in upstream.items() if digest == _WILL_RUN]
        if not reasons and not waiting:
            assert record is not None
            self.digests[name] = record["digest"]
            task.is_skipped = True
            created = _fmt_time(record.get("created_at", 0.0))
            return self._settle(name, "cached", [Reason("unchanged", detail=created)], record)
        if opts.planned:
            self.digests[name] = _WILL_RUN
            if reasons:
                return self._settle(name, "run", reasons, record)
            return self._settle(name, "waiting", [Reason("waiting", d) for d in waiting], record)
        return _Pending(task, state, reasons, record)

    def _upstream_digests(self, task: Task) -> tuple[dict[str, str], tuple[str, str] | None]:
        """Result digests of the task's dependencies, or (why, which) it cannot run."""
        digests: dict[str, str] = {}
        for dep in self.options.deps[task.name]:
            if dep in self.failed:
                return digests, ("upstream_failed", dep)
            if dep in self.digests:
                digest = self.digests[dep]
            else:  # not selected in this run (single_task): use what is stored
                rec = self.records.get(dep) or self.store.record(dep)
                digest = rec.get("digest") if rec else None
            if digest is None:
                return digests, ("upstream_skipped", dep)
            digests[dep] = digest
        return digests, None

    def _blocked(self, task: Task, why: str, dep: str) -> None:
        reason = Reason(why, dep)
        if why == "upstream_failed" and task.if_upstream_errors == "FAIL":
            self.failed.add(task.name)
            self._settle(task.name, "failed", [reason], self.records.get(task.name))
        else:
            self.digests[task.name] = None
            task.is_skipped = True
            self._settle(task.name, "skipped", [reason], self.records.get(task.name))

    def _inputs(self, task: Task) -> dict[str, Any]:
        """Upstream values for a function-form task, loaded only now that it runs."""
        wanted = [d for d in self.options.deps[task.name] if d in task._params]
        return {dep: self.value(dep) for dep in wanted}

    def value(self, name: str) -> Any:
        """A result of this run or the stored one (or MISSING), as a fresh copy.

        Every consumer unpickles its own copy, so a task that mutates what it was
        given cannot change what its siblings see: a cold run and a warm run
        compute the same results.
        """
        blob = self.values.get(name)
        if blob is None:
            blob = self.store.load_blob(name)
            if blob is MISSING:
                return MISSING
            if self._left.get(name):
                self.values[name] = blob  # more dependants to come: read the store once
        return pickle.loads(blob)

    # -- finishing ------------------------------------------------------------------
    def _finish(self, job: _Pending, fut: Future[Any]) -> None:
        task = job.task
        ok, payload, duration = fut.result()
        if not ok:
            self._fail(task, payload, duration=duration, record=job.record, reasons=job.reasons)
        else:
            self._store(job, payload, duration)
        self._release(task.name)

    def _store(self, job: _Pending, value: Any, duration: float) -> None:
        task = job.task
        try:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            self._fail(
                task,
                f"its result, a {type(value).__module__}.{type(value).__qualname__}, cannot be "
                f"stored: {type(e).__name__}: {e}. Return plain data (numbers, strings, lists, "
                f"dicts, DataFrames) instead of functions, locks or open connections.",
                duration=duration, record=job.record, reasons=job.reasons,
            )
            return
        digest = digest_bytes(blob)
        now = _now()
        record: Record = {
            "schema": SCHEMA,
            "fingerprint": job.state.fingerprint,
            "digest": digest,
            "code": job.state.code,
            "inputs": job.state.inputs,
            "upstream": job.state.upstream,
            "created_at": now.timestamp(),
            "duration": duration,
            "reasons": [str(r) for r in job.reasons],
            "type": f"{type(value).__module__}.{type(value).__qualname__}",
            "size": len(blob),
            **expiry_fields(
                task, now, run_id=self.run_id,
                drop_none=value is None and self.pipeline.expire_results_if_none,
            ),
        }
        try:
            self.store.put(task.name, blob, record)
        except OSError as e:
            self._fail(task, f"its result could not be written to the store: {e}",
                       duration=duration, record=job.record, reasons=job.reasons)
            return
        self.records[task.name] = record
        self.digests[task.name] = digest
        if self._left.get(task.name):
            self.values[task.name] = blob
        task.is_executed = True
        task.is_skipped = False
        self.report.add(TaskOutcome(task.name, "executed", tuple(job.reasons), duration))
        task.logger.info("✓ ran in {:.3f}s ({})", duration, "; ".join(map(str, job.reasons)))

    def _fail(
        self,
        task: Task,
        error: str,
        *,
        duration: float = 0.0,
        record: Record | None = None,
        reasons: list[Reason] | None = None,
    ) -> None:
        self.failed.add(task.name)
        last = error.strip().splitlines()[-1] if error.strip() else "failed"
        outcome = TaskOutcome(task.name, "failed", (*(reasons or ()), Reason("error", detail=last)),
                              duration, error=error)
        self.report.add(outcome)
        task.logger.error("✗ failed after {:.3f}s: {}", duration, last)
        if "\n" in error.strip():  # the traceback goes to the task's file, not the console
            task.logger.bind(lp_file_only=True).error("{}", error)

    def _settle(
        self, name: str, status: str, reasons: list[Reason], record: Record | None
    ) -> None:
        stored = record.get("duration", 0.0) if record and status == "cached" else 0.0
        outcome = TaskOutcome(name, status, tuple(reasons), 0.0, stored_duration=stored)
        self.report.add(outcome)
        if not self.options.planned:
            log = self.pipeline._tasks[name].logger
            if status == "cached":
                log.info("↺ reused cached result (saved {:.3f}s)", stored)
            elif status == "skipped":
                log.info("- skipped: {}", outcome.why)
            elif status == "failed":
                log.error("✗ not run: {}", outcome.why)
        self._release(name)

    def _release(self, name: str) -> None:
        """A task is settled: its dependencies' values may be dropped once all dependants are."""
        for dep in self.options.deps[name]:
            left = self._left.get(dep, 0) - 1
            self._left[dep] = left
            if left <= 0:
                self.values.pop(dep, None)

    def _end_of_run(self) -> None:
        """Results marked `on_complete` served this run; now they expire."""
        if self.options.planned:
            return
        ended = [
            name for name, rec in self.records.items()
            if rec.get("expiry") == "on_complete" and rec.get("run_id") == self.run_id
        ]
        if ended:
            # Drop the values but keep the records: the next run then says why the
            # task reruns ("expired when the run that stored it ended").
            self.store.drop_values(ended)
        self.values.clear()


def call_task(task: Task, inputs: dict[str, Any]) -> tuple[bool, Any, float]:
    """Run one task's code (on whatever executor): (ok, value or traceback text, seconds)."""
    start = time.perf_counter()
    try:
        value = task.invoke(inputs)
    except Exception:
        return False, traceback.format_exc(), time.perf_counter() - start
    return True, value, time.perf_counter() - start


def _now() -> Any:
    now = expire._get_now()
    return now if now.tzinfo is not None else now.astimezone()


def _fmt_time(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


__all__ = ["Options", "Run", "call_task"]
