"""The Pipeline: a registry of tasks and a thin face over graph, engine and store."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import history, timeline
from .codesource import redefines
from .engine import Run
from .errors import (
    InvalidOptionError,
    NoResultError,
    PipelineValidationError,
    TaskDefinitionError,
    UnknownTaskError,
)
from .fingerprint import expand_inputs
from .folders import check_pipeline_name, defining_file, pipeline_folders
from .freshness import Probe, current_state, expiry_reasons
from .log import lib_logger, run_logger
from .report import RunReport, TaskOutcome
from .spec import (
    RunResult,
    RunSpec,
    Selection,
    TaskNames,
    build_spec,
    check_names,
    checked_order,
    definition_problems,
    listed,
    progress_with_flags,
)
from .statuslines import story_line
from .store import MISSING, Store
from .task import Task

if TYPE_CHECKING:
    from .explain import Explanation


class Pipeline:
    """A named set of tasks whose results are cached on disk.

    Parameters:
        name: a safe folder name; results live in `~/.little_pipelines/<name>/`.
        cache_dir: the folder for this pipeline's store instead (default: under
            `$LITTLE_PIPELINES_HOME`, else `~/.little_pipelines`).
        log_dir: the folder for the task log files `<task>.log` and the run log
            `_pipeline.log` (default: `$LOG_DIR` itself, as in the original, else
            `<cache folder>/logs`).
        expire_results_if_none: if True, a task returning None keeps that result
            only for the rest of the run (the original library's default).
        code: what a task's code fingerprint covers: "module" (default, the whole
            defining file) or "function" (its functions and what they use); a task's
            own `code=` wins.
        params: parameters every task receives (a task's `params=` update them);
            they are part of the fingerprint.
    """

    def __init__(
        self,
        name: str,
        cache_dir: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        expire_results_if_none: bool = False,
        code: str = "module",
        params: dict[str, Any] | None = None,
    ) -> None:
        self.name = check_pipeline_name(name)
        if code not in ("module", "function"):
            raise InvalidOptionError(
                f"code must be 'module' (a task's whole defining file counts) or 'function' "
                f"(its functions and what they use), got {code!r}."
            )
        self.code = code
        self.params: dict[str, Any] = dict(params or {})
        self.folder, self.log_dir = pipeline_folders(name, cache_dir, log_dir)
        self.expire_results_if_none = expire_results_if_none
        self._tasks: dict[str, Task] = {}
        self._duplicates: list[str] = []
        self._order: list[str] | None = None
        self._store: Store | None = None
        self._run: Run | None = None
        self.failures: list[str] = []
        self.last_report: RunReport | None = None
        self._defined_in = defining_file()
        #: standing force/skip lists (the original's set_forced / set_ignored), added to
        #: every execute()'s force_tasks / skip_tasks until cleared
        self.forced_tasks: set[str] = set()
        self.ignored_tasks: set[str] = set()

    # -- registry ------------------------------------------------------------
    def add(self, *tasks: Task | Iterable[Task]) -> Pipeline:
        """Add tasks (in any order; iterables of tasks are flattened). Returns the pipeline."""
        for item in tasks:
            if isinstance(item, Task):
                self._add_one(item)
            elif isinstance(item, Iterable) and not isinstance(item, (str, bytes)):
                self.add(*item)
            else:
                raise TaskDefinitionError(
                    f"Pipeline.add() takes Task objects, got {item!r}. Create tasks with "
                    f"lp.Task('Name') or the @pipeline.task decorator."
                )
        return self

    def _add_one(self, task: Task) -> None:
        known = self._tasks.get(task.name)
        if known is task:
            return
        if known is not None and not redefines(known, task):
            self._duplicates.append(task.name)
            self.definition_changed()  # validate again: a duplicate added after a run is too
            return
        if known is not None:  # a notebook cell run again: its new definition wins
            lib_logger.info("task {!r} redefined", task.name)
        self._tasks[task.name] = task
        task.attach(self)  # the logger follows this pipeline's log folder
        self.definition_changed()

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        **options: Any,
    ) -> Any:
        """Decorator: turn a function into a task of this pipeline, named after it.

        Parameters named after tasks receive their results; a first parameter
        named `this` receives the task. Takes Task's options (dependencies=,
        input_files=, expire_results=, ...); explicit dependencies add to the
        inferred ones.
        """

        def decorate(f: Callable[..., Any]) -> Task:
            t = Task.from_function(f, name=name, **options)
            self.add(t)  # (a subclass overriding add() sees these tasks too)
            return t

        return decorate(fn) if fn is not None else decorate

    def definition_changed(self) -> None:
        """A task's dependencies changed: forget the execution order (see `task.Host`)."""
        self._order = None

    def tasks_by_name(self) -> Mapping[str, Task]:
        """Every task by name, in the order they were added (a read-only view)."""
        return MappingProxyType(self._tasks)

    def task_names(self) -> list[str]:
        """The tasks' names in execution order (validates the pipeline)."""
        return list(self._ordered_names())

    def dependency_map(self) -> dict[str, list[str]]:
        """Each task's dependencies by name, tasks in execution order (validates)."""
        deps = self._deps()
        return {n: deps[n] for n in self._ordered_names()}

    @property
    def ntasks(self) -> int:
        return len(self._tasks)

    def get_task(self, name: str | Task) -> Task:
        """The task of that name; an unknown name raises UnknownTaskError (a KeyError)."""
        key = name.name if isinstance(name, Task) else name
        try:
            return self._tasks[key]
        except KeyError:
            raise UnknownTaskError(str(key), self._tasks, where=f"pipeline {self.name!r}") from None

    @property
    def tasks(self) -> list[Task]:
        """All tasks in execution order; ties broken by the order they were added."""
        return [self._tasks[n] for n in self._ordered_names()]

    def _deps(self) -> dict[str, list[str]]:
        return {n: t.dependency_names(self._tasks) for n, t in self._tasks.items()}

    def _ordered_names(self, deps: dict[str, list[str]] | None = None) -> list[str]:
        if self._order is None:
            # One pass over the graph: sorting finds a cycle too, so cycles are looked
            # for (and every problem listed by validate) only when the sort fails.
            deps = self._deps() if deps is None else deps
            problems, _ = definition_problems(self._tasks, self._duplicates, deps, cycles=False)
            self._order = checked_order(deps, problems, self.validate)
        return self._order

    # -- validation -------------------------------------------------------------
    def validate(self) -> None:
        """Raise PipelineValidationError listing every problem of the definition at once."""
        problems, cycle = definition_problems(self._tasks, self._duplicates, self._deps(),
                                              cycles=True)
        missing_run = [t.name for t in self._tasks.values() if not t.has_run]
        if problems:
            raise PipelineValidationError.build(
                self.name, problems, missing_run=missing_run, cycle=cycle
            )

    validate_tasks = validate

    # -- running ------------------------------------------------------------------
    def execute(
        self,
        targets: TaskNames = None,
        force: bool = False,
        force_tasks: TaskNames = None,
        skip_tasks: TaskNames = None,
        dry_run: bool = False,
        single_task: str | Task | None = None,
        progress: Callable[[str, str, TaskOutcome | None], None] | None = None,
        executor: Any = None,
        workers: int | None = None,
        scheduler: str | None = None,
    ) -> RunReport:
        """Run the selected tasks whose results are missing or stale; return a RunReport.

        Parameters:
            targets: run only these tasks and what they need upstream (default: all).
            force: rerun every selected task.
            force_tasks: rerun these even if cached (tasks below them rerun only if
                the result changed).
            skip_tasks: do not run these; tasks below use their stored results.
            dry_run: answer what would run, like `plan()`, without running anything.
            single_task: run just this task, without its upstream (the original's option).
            progress: called as progress("start", name, None) when a task starts and
                progress("finish", name, outcome) when it is settled (for live displays).
            executor: "sequential" (default), "threads", "processes", "dask", any
                concurrent.futures.Executor, or a dask.distributed.Client.
            workers: size of the pool the library creates (default: one per core;
                threads: two per core; dask: 2 workers).
            scheduler: address of an existing Dask scheduler ("tcp://host:8786");
                implies executor="dask".

        Task failures do not raise: see `report.failed` or `report.raise_for_failures()`.
        """
        selection = Selection(targets, force, [*listed(force_tasks), *self.forced_tasks],
                              [*listed(skip_tasks), *self.ignored_tasks], single_task, dry_run)
        # Everything is checked before anything (flags, failures) changes.
        spec = self._spec(selection, progress=progress if dry_run else progress_with_flags(
            self._tasks, progress), executor=executor, workers=workers, scheduler=scheduler)
        if dry_run:
            return self._walk(spec).report
        self.failures = []
        for task in self._tasks.values():
            task.is_executed = False
            task.is_skipped = False
        report = self._walk(spec).report
        self.failures = report.failed
        self.last_report = report
        log = run_logger(self.name, self.log_dir)
        try:
            history.add(self._store_or_open(), report.as_dict())
        except OSError as e:  # best-effort: the run's results are stored; the report stands
            log.warning("this run was not added to the history: {}", e)
        with contextlib.suppress(OSError):  # only `lpipe history --timeline` reads it
            history.save_last_run(self._store_or_open(), timeline.as_dict(report))
        story_line(self.name, self.log_dir, "ERROR" if report.failed else "INFO",
                   report.summary())
        return report

    def set_forced(self, *names: str | Task) -> None:
        """Force these tasks in every later run (with `force_tasks`), until `clear_forced()`."""
        self.forced_tasks.update(n.name if isinstance(n, Task) else n for n in names)

    def clear_forced(self) -> None:
        self.forced_tasks.clear()

    def set_ignored(self, *names: str | Task) -> None:
        """Skip these tasks in every later run (with `skip_tasks`), until `clear_ignored()`."""
        self.ignored_tasks.update(n.name if isinstance(n, Task) else n for n in names)

    def clear_ignored(self) -> None:
        self.ignored_tasks.clear()

    def plan(
        self,
        targets: TaskNames = None,
        force: bool = False,
        force_tasks: TaskNames = None,
        skip_tasks: TaskNames = None,
        single_task: str | Task | None = None,
    ) -> RunReport:
        """What `execute` would do, without running or storing anything.

        Statuses: "run" (with its reasons), "cached", "skipped", and "waiting" for
        tasks that rerun only if an upstream task that will run changes its result.
        """
        return self.execute(targets, force, force_tasks, skip_tasks, True, single_task)

    def _walk(self, spec: RunSpec) -> RunResult:
        run = Run(spec)
        self._run = run
        try:
            return run.execute()
        except KeyboardInterrupt:
            # Finished tasks are already stored; keep the report of what was interrupted.
            self.last_report = run.report
            self.failures = run.report.failed
            run_logger(self.name, self.log_dir).warning("interrupted: {}", run.report.summary())
            raise
        finally:
            self._run = None

    def _spec(self, selection: Selection, **options: Any) -> RunSpec:
        """The run's plain data: names checked, tasks selected, params fixed (validates)."""
        deps = self._deps()  # read once: the order and the run see the same graph
        return build_spec(self.name, self._tasks, self._ordered_names(deps), deps, selection,
                          store=self._store_or_open(), lock_dir=self.folder,
                          expire_none=self.expire_results_if_none, **options)

    # -- results ----------------------------------------------------------------------
    def get_result(self, name: str | Task, default: Any = None) -> Any:
        """The task's result: from the current run (current by construction), else
        from the store unless expired (as the original), else `default`."""
        key = name if type(name) is str and name in self._tasks else self.get_task(name).name
        if self._run is not None:
            value = self._run.value(key)
        else:
            store = self._store_or_open()
            record = store.record(key)
            expired = record is None or expiry_reasons(record, run_id=None)
            value = MISSING if expired else store.load(key)
        return default if value is MISSING else value

    def stored_preview(self, name: str | Task) -> dict[str, Any] | None:
        """The task's record if it carries a preview of a result that is there and current
        (not expired): `preview` (text), and for a DataFrame `preview_head` (its first
        rows, pickled) and `shape`. None otherwise. Loads no value."""
        key = self.get_task(name).name
        record = self._store_or_open().record(key)
        if (record is None or record.get("preview") is None or not record.get("digest")
                or expiry_reasons(record, run_id=None)):
            return None
        return record

    def explain(self, name: str | Task) -> Explanation:
        """Why the task would run or be reused, with the evidence: diffs, stamps, tokens.

        Runs nothing. `print(pipeline.explain("clean"))`, or render it with Rich.
        """
        from .explain import explain

        key = self.get_task(name).name
        result = Run(self._spec(Selection(targets=[key], planned=True))).execute()
        return explain(result, key, self._store_or_open())

    def accept(self, names: TaskNames) -> list[str]:
        """Mark the tasks' current code, inputs, params and sources as matching their
        stored results, without running them (after a cosmetic edit, say).

        Upstream changes are not accepted: a task whose upstream result changed
        still reruns. Returns the names accepted; a task with no stored result is
        an error (run it first).
        """
        chosen = check_names(self._tasks, names, "accept")
        self.validate()
        store = self._store_or_open()
        probe = Probe()
        accepted = []
        for name in chosen:
            record = store.record(name)
            if record is None:
                raise NoResultError(
                    f"Task {name!r} has no stored result to accept; run it first "
                    f"(pipeline.execute(targets=[{name!r}])).", task=name
                )
            task = self._tasks[name]
            inputs = expand_inputs(task.input_paths, task=name) if task.hash_inputs else []
            state = current_state(task, record, probe, inputs, record.get("upstream", {}),
                                  task.params)
            store.update_record(name, **state.record_fields(), accepted_at=time.time())
            run_logger(name, self.log_dir).info(
                "accepted: its current code, inputs, params and sources now match its result"
            )
            accepted.append(name)
        return accepted

    def record(self, name: str | Task) -> dict[str, Any] | None:
        """The stored record of a task (fingerprint, digest, created_at, expires_at,
        duration, type, size, ...) without loading its value; None if it has none."""
        key = self.get_task(name).name
        return self._store_or_open().record(key)

    def stored_record(self, name: str) -> dict[str, Any] | None:
        """The stored record under `name`, also for a task that no longer exists; or None."""
        return self._store_or_open().record(name)

    @property
    def is_complete(self) -> bool:
        """True when every task was executed or skipped (cached counts as skipped), as
        in the original: True for no tasks, False before a run, False if one failed."""
        report = self.last_report
        if report is None:
            return not self._tasks
        done = {o.name for o in report if o.status in ("executed", "cached", "skipped")}
        return done >= set(self._tasks)

    @property
    def cache(self) -> Any:
        """The underlying diskcache.Cache (so `pipeline.cache.clear()` works)."""
        return self._store_or_open().cache

    def clear(self, names: TaskNames = None) -> list[str]:
        """Forget stored results of these tasks (default: all); returns the names forgotten."""
        store = self._store_or_open()
        chosen = (check_names(self._tasks, names, "clear") if names is not None
                  else list(store.names()))
        return store.forget(chosen)

    def stored_names(self) -> list[str]:
        """Names of everything stored, including tasks that no longer exist."""
        return sorted(self._store_or_open().names())

    def history(self) -> list[dict[str, Any]]:
        """Summaries of past runs, oldest first."""
        return history.runs(self._store_or_open())

    def last_run(self) -> RunReport | None:
        """The report of the last run, as far as the store kept it (times, statuses,
        reasons as sentences), for its timeline; None if none was kept."""
        entry = history.last_run(self._store_or_open())
        return timeline.from_dict(entry) if entry else None

    def _store_or_open(self) -> Store:
        if self._store is None:
            self._store = Store(self.folder)
            if self._defined_in is not None:
                history.claim(self._store, self.name, self._defined_in)
        return self._store

    def close(self) -> None:
        """Close the store's files (it reopens on next use)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __repr__(self) -> str:
        return f"<Pipeline: {self.name} ({self.ntasks} tasks)>"


