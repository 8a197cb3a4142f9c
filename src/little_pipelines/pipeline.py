"""The Pipeline: a registry of tasks and a thin face over graph, engine and store."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import expire, graph
from .engine import Options, Run
from .errors import (
    LittlePipelinesError,
    PipelineValidationError,
    TaskDefinitionError,
    UnknownTaskError,
)
from .fingerprint import expand_inputs
from .freshness import Probe, check_params, current_state, expiry_reasons
from .log import ensure_console, run_logger
from .report import RunReport, TaskOutcome
from .store import MISSING, Store
from .task import Task

if TYPE_CHECKING:
    from .explain import Explanation

# A name is one folder: no separator (':' is a drive on Windows), no NUL or control character.
_UNSAFE_CHARS = re.compile(r"[/\\:\x00-\x1f\x7f]")
_HOME_ENV = "LITTLE_PIPELINES_HOME"
_LOG_ENV = "LOG_DIR"

TaskNames = str | Task | Iterable[str | Task] | None


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
        self.name = _check_name(name)
        if code not in ("module", "function"):
            raise ValueError(
                f"code must be 'module' (a task's whole defining file counts) or 'function' "
                f"(its functions and what they use), got {code!r}."
            )
        self.code = code
        self.params: dict[str, Any] = dict(params or {})
        if cache_dir is not None:
            self.folder = Path(cache_dir).expanduser()
        else:
            home = os.environ.get(_HOME_ENV) or Path.home() / ".little_pipelines"
            self.folder = Path(home).expanduser() / name
        if log_dir is not None:
            self.log_dir = Path(log_dir).expanduser()
        elif os.environ.get(_LOG_ENV):
            # The folder itself, as the original (shared by pipelines sharing it).
            self.log_dir = Path(os.environ[_LOG_ENV]).expanduser()
        else:
            self.log_dir = self.folder / "logs"
        self.expire_results_if_none = expire_results_if_none
        self._tasks: dict[str, Task] = {}
        self._duplicates: list[str] = []
        self._order: list[str] | None = None
        self._store: Store | None = None
        self._run: Run | None = None
        self.failures: list[str] = []
        self.last_report: RunReport | None = None

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
        if known is not None:
            self._duplicates.append(task.name)
            return
        self._tasks[task.name] = task
        task.pipeline = self
        task._logger = None  # rebind to this pipeline's log folder
        self._changed()

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
            self.add(t)
            return t

        return decorate(fn) if fn is not None else decorate

    def _changed(self) -> None:
        self._order = None

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

    def _ordered_names(self) -> list[str]:
        if self._order is None:
            self.validate()
            self._order = graph.order(self._deps())
        return self._order

    # -- validation -------------------------------------------------------------
    def validate(self) -> None:
        """Raise PipelineValidationError listing every problem of the definition at once."""
        problems = [
            f"Two different tasks are named {n!r}; task names must be unique in a pipeline "
            f"(rename one)."
            for n in dict.fromkeys(self._duplicates)
        ]
        missing_run = False
        for task in self._tasks.values():
            found = task.definition_problems(self._tasks)
            missing_run = missing_run or any("missing 'run' method" in p for p in found)
            problems += found
        graph_problems, cycle = graph.check(self._deps())
        problems += graph_problems
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
        options = self._options(targets, force, force_tasks, skip_tasks, single_task, dry_run)
        options.progress = progress
        options.executor, options.workers, options.scheduler = executor, workers, scheduler
        if dry_run:
            return self._walk(options)
        ensure_console()
        self.failures = []
        for task in self._tasks.values():
            task.is_executed = False
            task.is_skipped = False
        report = self._walk(options)
        self.failures = report.failed
        self.last_report = report
        self._store_or_open().add_history(report.as_dict())
        log = run_logger(self.name, self.log_dir)
        (log.error if report.failed else log.info)("{}", report.summary())
        return report

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

    def _walk(self, options: Options) -> RunReport:
        run = Run(self, options)
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

    def _options(
        self,
        targets: TaskNames,
        force: bool,
        force_tasks: TaskNames,
        skip_tasks: TaskNames,
        single_task: str | Task | None,
        planned: bool,
    ) -> Options:
        """Check every name and input before anything runs, and select the tasks."""
        order = self._ordered_names()  # validates
        deps = self._deps()
        forced = frozenset(self._names(force_tasks, "force_tasks"))
        skipped = frozenset(self._names(skip_tasks, "skip_tasks"))
        if single_task is not None:
            only = self._names(single_task, "single_task")
            chosen, forced = set(only), forced | set(only)
        elif targets is not None:
            chosen = graph.upstream(deps, self._names(targets, "targets"))
        else:
            chosen = set(order)
        skipped -= forced  # as the original: "forced tasks execute even if ignored"
        selected = [n for n in order if n in chosen]
        for n in selected:  # fixed for the run, and travelling with the task to workers
            task = self._tasks[n]
            task._effective_params = None
            task._effective_params = task.params
            check_params(task)
            _check_expiry(task)
        inputs = {
            n: expand_inputs(t.input_paths, task=n) if t.hash_inputs and n not in skipped else []
            for n in selected
            for t in (self._tasks[n],)
        }
        return Options(
            selected=selected, deps=deps, inputs=inputs, force_all=bool(force),
            force=forced, skip=skipped, planned=planned,
        )

    def _names(self, names: TaskNames, where: str) -> list[str]:
        if names is None:
            return []
        items: Iterable[str | Task] = [names] if isinstance(names, (str, Task)) else names
        out = []
        for n in items:
            key = n.name if isinstance(n, Task) else n
            if key not in self._tasks:
                raise UnknownTaskError(str(key), self._tasks, where=where)
            out.append(key)
        return out

    # -- results ----------------------------------------------------------------------
    def get_result(self, name: str | Task, default: Any = None) -> Any:
        """The task's result: from the current run (current by construction), else
        from the store unless expired (as the original), else `default`."""
        key = self.get_task(name).name
        if self._run is not None:
            value = self._run.value(key)
        else:
            store = self._store_or_open()
            record = store.record(key)
            expired = record is None or expiry_reasons(record, run_id=None, now=expire.now())
            value = MISSING if expired else store.load(key)
        return default if value is MISSING else value

    def stored_preview(self, name: str | Task) -> str | None:
        """The short text preview kept with the task's stored result, if that result is
        there and current (not expired); None otherwise. Loads no value."""
        key = self.get_task(name).name
        record = self._store_or_open().record(key)
        if (record is None or record.get("preview") is None or not record.get("digest")
                or expiry_reasons(record, run_id=None, now=expire.now())):
            return None
        return str(record["preview"])

    def explain(self, name: str | Task) -> Explanation:
        """Why the task would run or be reused, with the evidence: diffs, stamps, tokens.

        Runs nothing. `print(pipeline.explain("clean"))`, or render it with Rich.
        """
        from .explain import explain

        return explain(self, self.get_task(name).name)

    def accept(self, names: TaskNames) -> list[str]:
        """Mark the tasks' current code, inputs, params and sources as matching their
        stored results, without running them (after a cosmetic edit, say).

        Upstream changes are not accepted: a task whose upstream result changed
        still reruns. Returns the names accepted; a task with no stored result is
        an error (run it first).
        """
        chosen = self._names(names, "accept")
        self.validate()
        ensure_console()
        store = self._store_or_open()
        probe = Probe()
        accepted = []
        for name in chosen:
            record = store.record(name)
            if record is None:
                raise LittlePipelinesError(
                    f"Task {name!r} has no stored result to accept; run it first "
                    f"(pipeline.execute(targets=[{name!r}]))."
                )
            task = self._tasks[name]
            task._effective_params = None
            inputs = expand_inputs(task.input_paths, task=name) if task.hash_inputs else []
            state = current_state(task, record, probe, inputs, record.get("upstream", {}))
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
        chosen = self._names(names, "clear") if names is not None else list(store.names())
        return store.forget(chosen)

    def stored_names(self) -> list[str]:
        """Names of everything stored, including tasks that no longer exist."""
        return sorted(self._store_or_open().names())

    def history(self) -> list[dict[str, Any]]:
        """Summaries of past runs, oldest first."""
        return self._store_or_open().history()

    def _store_or_open(self) -> Store:
        if self._store is None:
            self._store = Store(self.folder)
        return self._store

    def close(self) -> None:
        """Close the store's files (it reopens on next use)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __repr__(self) -> str:
        return f"<Pipeline: {self.name} ({self.ntasks} tasks)>"


def _check_expiry(task: Task) -> None:
    """Ask a time policy for its moment once, before anything runs.

    A user's expire_results function is otherwise first called when the task's
    result is stored: a bad return value would then fail the task after it did
    its work.
    """
    policy = task.expire_results
    if getattr(policy, "kind", None) != "time":
        return
    try:
        policy.expires_at()
    except Exception as e:
        raise TaskDefinitionError(
            f"Task {task.name!r}: its expire_results policy {policy!r} failed: "
            f"{type(e).__name__}: {e} Fix the function given as expire_results=, or use "
            f"a built-in policy such as lp.expire.from_now(hours=1)."
        ) from None


def _check_name(name: Any) -> str:
    # Any other name is one folder, as in the original (".little-pipelines-tests").
    if not isinstance(name, str) or name in ("", ".", "..") or _UNSAFE_CHARS.search(name):
        raise ValueError(
            f"Pipeline name {name!r} is not a safe folder name: it must name one folder, "
            f"so not '.' or '..', no '/', '\\' or ':' and no control characters "
            f"(e.g. 'sales_etl' or '.hidden')."
        )
    return name
