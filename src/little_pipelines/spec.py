"""The plain data one run needs, checked and fixed before anything runs.

`build_spec` turns a pipeline's tasks and the caller's options (targets, force,
skip, single task, executor) into a frozen `RunSpec`: every name checked, the
selection made, each task's params fixed and checked, input globs expanded.
The engine runs a `RunSpec` and knows nothing of the `Pipeline` class that
built it; a test can build one by hand.
"""

from __future__ import annotations

import contextlib
import graphlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import graph
from .errors import TaskDefinitionError, UnknownTaskError
from .fingerprint import expand_inputs
from .freshness import check_params
from .task import Task

if TYPE_CHECKING:
    from .freshness import State
    from .report import RunReport, TaskOutcome
    from .store import Record, Store

TaskNames = str | Task | Iterable[str | Task] | None
#: called as progress("start", name, None) and progress("finish", name, outcome)
Progress = Callable[[str, str, "TaskOutcome | None"], None]


@dataclass(frozen=True)
class RunSpec:
    """Everything one run reads, and nothing it may change.

    Parameters:
        name: the pipeline's name (the report's title).
        tasks: every task by name (a single-task run reads unselected ones' records).
        deps: each task's dependencies, by name.
        selected: the tasks this run walks, in execution order.
        inputs: each selected task's input files, globs expanded (empty when not hashed).
        params: each selected task's params, fixed for this run.
        store: the open store results are read from and written to.
        lock_dir: the folder of the cross-process task locks (the store's folder).
        force_all, force, skip: what the caller forced or skipped.
        planned: True for a plan (`plan()`, `dry_run=`, `explain`): nothing runs or is stored.
        expire_none: a result of None expires when the run ends (`expire_results_if_none`).
        executor, workers, scheduler: where task code runs (see `executors.resolve`).
        progress: told when a task starts and when it is settled.
    """

    name: str
    tasks: Mapping[str, Task]
    deps: Mapping[str, list[str]]
    selected: tuple[str, ...]
    inputs: Mapping[str, list[str]]
    params: Mapping[str, dict[str, Any]]
    store: Store
    lock_dir: Path
    force_all: bool = False
    force: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    planned: bool = False
    expire_none: bool = False
    executor: Any = None
    workers: int | None = None
    scheduler: str | None = None
    progress: Progress | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RunResult:
    """What one run leaves (`engine.Run.execute` returns it): its report, and the
    evidence behind each decision.

    `states` holds what each decided task's fingerprint was made of, `records` the
    stored records the run read (updated as it stored results), `digests` each
    task's result digest as the run saw it ("<will run>" in a plan).
    """

    report: RunReport
    states: dict[str, State]
    records: dict[str, Record]
    digests: dict[str, str | None]


@dataclass(frozen=True)
class Selection:
    """What the caller asked for, before it is checked against the pipeline."""

    targets: TaskNames = None
    force: bool = False
    force_tasks: TaskNames = None
    skip_tasks: TaskNames = None
    single_task: str | Task | None = None
    planned: bool = False


def build_spec(
    name: str,
    tasks: Mapping[str, Task],
    order: list[str],
    deps: Mapping[str, list[str]],
    selection: Selection,
    *,
    store: Store,
    lock_dir: Path,
    expire_none: bool = False,
    executor: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> RunSpec:
    """Check every name and input before anything runs, select the tasks, fix their params.

    `order` is the validated execution order of all tasks; `deps` their dependencies.
    """
    forced = frozenset(check_names(tasks, selection.force_tasks, "force_tasks"))
    skipped = frozenset(check_names(tasks, selection.skip_tasks, "skip_tasks"))
    if selection.single_task is not None:
        only = check_names(tasks, selection.single_task, "single_task")
        chosen, forced = set(only), forced | set(only)
    elif selection.targets is not None:
        chosen = graph.upstream(deps, check_names(tasks, selection.targets, "targets"))
    else:
        chosen = set(order)
    skipped -= forced  # as the original: "forced tasks execute even if ignored"
    selected = tuple(n for n in order if n in chosen)
    params: dict[str, dict[str, Any]] = {}
    for n in selected:  # fixed for the run, and travelling with the task to workers
        task = tasks[n]
        params[n] = fixed = task.params
        if fixed:
            check_params(task, fixed)
        check_expiry(task)
    inputs: dict[str, list[str]] = {}
    for n in selected:
        task = tasks[n]
        paths = task.input_paths if task.hash_inputs and n not in skipped else None
        inputs[n] = expand_inputs(paths, task=n) if paths else []
    return RunSpec(
        name=name, tasks=tasks, deps=deps, selected=selected, inputs=inputs, params=params,
        store=store, lock_dir=lock_dir, force_all=bool(selection.force), force=forced,
        skip=skipped, planned=selection.planned, expire_none=expire_none, executor=executor,
        workers=workers, scheduler=scheduler, progress=progress,
    )


def definition_problems(tasks: Mapping[str, Task], duplicates: Iterable[str],
                        deps: Mapping[str, list[str]], *, cycles: bool
                        ) -> tuple[list[str], list[str] | None]:
    """Every problem of a pipeline's definition as sentences, and a cycle's path if
    `cycles` (looking for one is left to the sort when it is not asked)."""
    problems = [
        f"Two different tasks are named {n!r}; task names must be unique in a pipeline "
        f"(rename one)."
        for n in dict.fromkeys(duplicates)
    ]
    for task in tasks.values():
        problems += task.definition_problems(tasks)
    graph_problems, cycle = graph.check(deps, cycles=cycles)
    return problems + graph_problems, cycle


def checked_order(deps: Mapping[str, list[str]], problems: list[str],
                  validate: Callable[[], None]) -> list[str]:
    """The execution order in one pass over the graph: sorting finds a cycle too, so
    `validate` (which lists every problem at once, and raises) runs only when the
    definition has problems or the sort fails."""
    if not problems:
        with contextlib.suppress(graphlib.CycleError):
            return graph.order(deps)
    validate()
    return graph.order(deps)


def check_names(tasks: Mapping[str, Task], names: TaskNames, where: str) -> list[str]:
    """The names given (names or Task objects), each checked to be a task of `tasks`."""
    out = []
    for n in listed(names):
        key = n.name if isinstance(n, Task) else n
        if key not in tasks:
            raise UnknownTaskError(str(key), tasks, where=where)
        out.append(key)
    return out


def listed(names: TaskNames) -> list[str | Task]:
    """A name, a Task, or an iterable of them (or None) as a list."""
    if names is None:
        return []
    return [names] if isinstance(names, (str, Task)) else list(names)


def progress_with_flags(
    tasks: Mapping[str, Task], progress: Callable[[str, str, TaskOutcome | None], None] | None
) -> Callable[[str, str, TaskOutcome | None], None]:
    """The run's progress callback, also setting the original's `is_executed`/`is_skipped`
    from each outcome as it is reported, before any task below it starts: a task reading
    an upstream task's flag sees this run's, as in the original. A task skipped because
    the run was interrupted keeps its flags (it was never decided)."""

    def on_progress(event: str, name: str, outcome: TaskOutcome | None) -> None:
        if outcome is not None:
            task = tasks[name]
            if outcome.status == "executed":
                task.is_executed, task.is_skipped = True, False
            elif outcome.status == "cached" or (
                    outcome.status == "skipped"
                    and not any(r.kind == "interrupted" for r in outcome.reasons)):
                task.is_skipped = True
        if progress is not None:
            progress(event, name, outcome)

    return on_progress


def check_expiry(task: Task) -> None:
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


__all__ = [
    "RunResult", "RunSpec", "Selection", "TaskNames", "build_spec", "check_expiry", "check_names",
    "checked_order", "definition_problems", "listed", "progress_with_flags",
]
