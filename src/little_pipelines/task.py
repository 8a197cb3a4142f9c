"""Tasks: the classic `Task` + `@task.process` form and the function form.

Both forms build the same `Task`. A classic task is given processes with
`@task.process`; the one named `run` computes its result, the others are
helpers callable as `this.<name>(...)` and each timed. A function-form task
wraps one plain function whose parameters named after tasks receive their
results.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import expire as _expire
from .errors import TaskDefinitionError, did_you_mean
from .log import safe_filename, task_logger, timed

if TYPE_CHECKING:
    from .pipeline import Pipeline

#: Options a Task takes beyond the original's arguments: name -> default.
NEW_OPTIONS: dict[str, Any] = {
    "description": None,
    "retries": 0,  # extra attempts after a failure
    "retry_delay": 0.0,  # seconds before each retry, or a list of them for back-off
    "timeout": None,  # seconds per attempt (enforced where the executor can stop work)
    "code": None,  # "module" or "function"; None: the pipeline's choice
    "version": None,  # when given, replaces the code part of the fingerprint
    "sources": None,  # {"name": fn} where fn() returns a token; a new token reruns the task
    "params": None,  # {"key": value} passed to the task, part of its fingerprint
    "ignore_params": None,  # param keys left out of the fingerprint
}
_CODE_MODES = ("module", "function")
_UPSTREAM_ERROR_POLICIES = ("FAIL", "SKIP")


class Task:
    """A named unit of work with dependencies, input files and an expiry policy.

    Parameters:
        name: unique name within its pipeline.
        dependencies: names (or Task objects) of the tasks it needs; default none.
        expire_results: an `lp.expire` policy; default `lp.expire.never()`.
        if_upstream_errors: "FAIL" (default) records it as failed when an upstream
            task fails, "SKIP" records it as skipped.
        input_files: paths, folders and globs whose content is part of its fingerprint.
        hash_inputs: False leaves the input files out of the fingerprint.
    """

    def __init__(
        self,
        name: str,
        dependencies: Iterable[str | Task] | str | Task | None = None,
        expire_results: Any = None,
        if_upstream_errors: str = "FAIL",
        input_files: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        hash_inputs: bool = True,
        **new_options: Any,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise TaskDefinitionError(
                f"A task name must be a non-empty string, got {name!r}: lp.Task('Extract')."
            )
        policy = str(if_upstream_errors).upper()
        if policy not in _UPSTREAM_ERROR_POLICIES:
            raise TaskDefinitionError(
                f"Task {name!r}: if_upstream_errors must be 'FAIL' or 'SKIP', "
                f"got {if_upstream_errors!r}."
            )
        unknown = set(new_options) - set(NEW_OPTIONS)
        if unknown:
            bad = sorted(unknown)[0]
            raise TaskDefinitionError(
                f"Task {name!r} got an unknown option {bad!r}. "
                + did_you_mean(bad, [*NEW_OPTIONS, "dependencies", "expire_results",
                                     "if_upstream_errors", "input_files", "hash_inputs"])
            )
        self.name = name
        self._declared_deps = _names_of(dependencies, name)
        self.expire_results = _expire.normalize(expire_results)
        self.if_upstream_errors = policy
        # Kept as given (a Path stays a Path, as in the original); `input_paths` is the
        # normalised form everything else uses. A one-shot iterable is kept as a list.
        self.input_files = _as_given(input_files)
        _paths_of(self.input_files, name)  # checked now, before anything runs
        self.hash_inputs = bool(hash_inputs)
        for option, default in NEW_OPTIONS.items():
            if option != "params":
                setattr(self, option, new_options.get(option, default))
        self._own_params: dict[str, Any] = dict(new_options.get("params") or {})
        self._effective_params: dict[str, Any] | None = None
        _check_run_options(self)
        _check_fingerprint_options(self)
        self.pipeline: Pipeline | None = None
        self.is_executed = False
        self.is_skipped = False
        self._processes: dict[str, Callable[..., Any]] = {}
        self._function: Callable[..., Any] | None = None
        self._params: tuple[str, ...] = ()
        self._required: frozenset[str] = frozenset()
        self._wants_this = False
        self._logger: Any = None

    # -- declaring -----------------------------------------------------------
    def process(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: attach `fn(this, *args, **kwargs)` as the process `fn.__name__`."""
        if not callable(fn) or not hasattr(fn, "__name__"):
            raise TaskDefinitionError(
                f"Task {self.name!r}: @task.process decorates a function, got {fn!r}."
            )
        pname = fn.__name__
        if pname != "run" and hasattr(type(self), pname):
            raise TaskDefinitionError(
                f"Task {self.name!r}: a process cannot be named {pname!r}, which is a Task "
                f"attribute; rename the function."
            )
        self._processes[pname] = fn
        return fn

    @classmethod
    def from_function(
        cls, fn: Callable[..., Any], name: str | None = None, **kwargs: Any
    ) -> Task:
        """Build a function-form task: parameters named after tasks receive their results."""
        if not callable(fn):
            raise TaskDefinitionError(f"A function-form task wraps a function, got {fn!r}.")
        task = cls(name or fn.__name__, **kwargs)
        params = list(inspect.signature(fn).parameters.values())
        if params and params[0].name == "this":
            task._wants_this = True
            params = params[1:]
        for p in params:
            if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                raise TaskDefinitionError(
                    f"Task {task.name!r}: parameter {p.name!r} of {fn.__name__}() is "
                    f"{p.kind.description}; function-form tasks take named parameters only, "
                    f"each named after the upstream task whose result it receives."
                )
        task._function = fn
        task._params = tuple(p.name for p in params)
        task._required = frozenset(p.name for p in params if p.default is p.empty)
        task._processes["run"] = task._run_function_from_pipeline
        functools.update_wrapper(task, fn, updated=())
        return task

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call a function-form task's function directly (handy in tests)."""
        if self._function is None:
            raise TypeError(f"Task {self.name!r} is not callable; call task.run() instead.")
        return self._function(*args, **kwargs)

    # -- dependencies --------------------------------------------------------
    def dependency_names(self, known: Mapping[str, Any] | None = None) -> list[str]:
        """Declared dependencies plus, in the function form, parameters naming known tasks."""
        names = list(self._declared_deps)
        if known is not None:
            names += [p for p in self._params if p in known and p not in names]
        return names

    def definition_problems(self, known: Mapping[str, Any]) -> list[str]:
        """What is wrong with this task's declaration, as sentences (empty when fine)."""
        run = self._processes.get("run")
        if run is None:
            return [
                f"Task {self.name!r} is missing 'run' method: add a process with "
                f"@{_var(self.name)}.process on a function named run(this)."
            ]
        if self._function is None:
            try:
                inspect.signature(run).bind(self)
            except TypeError:
                return [
                    f"Task {self.name!r}: its 'run' process must take the task as its only "
                    f"required argument, def run(this): ..., but it is "
                    f"run{inspect.signature(run)}."
                ]
            except ValueError:
                return []
            return []
        params = self.params
        return [
            f"Task {self.name!r}: parameter {p!r} of {self._function.__name__}() names no task "
            f"or param and has no default. " + did_you_mean(p, [*known, *params])
            for p in self._params
            if p in self._required and p not in known and p not in params
        ]

    @property
    def params(self) -> dict[str, Any]:
        """Parameters passed to the task: the pipeline's `params`, updated by the task's."""
        if self._effective_params is not None:
            return self._effective_params
        inherited = getattr(self.pipeline, "params", None) or {}
        return {**inherited, **self._own_params}

    @params.setter
    def params(self, value: Mapping[str, Any] | None) -> None:
        self._own_params = dict(value or {})
        _check_fingerprint_options(self)

    @property
    def dependencies(self) -> dict[str, Task] | None:
        """None until the task is added to a pipeline, then `{name: Task}`."""
        if self.pipeline is None:
            return None
        tasks = self.pipeline._tasks
        return {n: tasks[n] for n in self.dependency_names(tasks) if n in tasks}

    @dependencies.setter
    def dependencies(self, value: Iterable[str | Task] | None) -> None:
        self._declared_deps = _names_of(value, self.name)
        if self.pipeline is not None:
            self.pipeline._changed()

    # -- running ---------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        processes = self.__dict__.get("_processes")
        if processes is not None and name in processes:
            return functools.partial(self._call_process, name)
        raise AttributeError(
            f"Task {self.__dict__.get('name', '?')!r} has no attribute or process {name!r}"
            + (" (is the task missing 'run' method?)" if name == "run" else "")
        )

    def _call_process(self, pname: str, *args: Any, **kwargs: Any) -> Any:
        with timed(self.logger, f"process {pname!r}"):
            return self._processes[pname](self, *args, **kwargs)

    def invoke(self, inputs: Mapping[str, Any]) -> Any:
        """Compute the result: the engine's entry point, given upstream values by name."""
        if self._function is None:
            return self._call_process("run")
        params = self.params
        kwargs = {p: inputs[p] if p in inputs else params[p]
                  for p in self._params if p in inputs or p in params}
        with timed(self.logger, f"function {self._function.__name__!r}"):
            if self._wants_this:
                return self._function(self, **kwargs)
            return self._function(**kwargs)

    def _run_function_from_pipeline(self, this: Task) -> Any:
        # `task.run()` on a function-form task: fetch the upstream results itself.
        pipeline = self.pipeline
        known = pipeline._tasks if pipeline is not None else {}
        inputs = {p: pipeline.get_result(p) for p in self._params if p in known} if pipeline else {}
        return self.invoke(inputs)

    # -- introspection -----------------------------------------------------------
    def code_functions(self) -> list[Callable[..., Any]]:
        """The user's functions that make up this task (for its code fingerprint)."""
        if self._function is not None:
            return [self._function]
        return list(self._processes.values())

    @property
    def input_paths(self) -> list[str]:
        """`input_files` as a list of path strings (read at each call, so a changed
        `input_files` counts)."""
        return _paths_of(self.input_files, self.name)

    @property
    def main_function(self) -> Callable[..., Any] | None:
        """The function that computes the result: the function form's, or the `run` process."""
        return self._function or self._processes.get("run")

    @property
    def log_dir(self) -> Path | None:
        """The folder of this task's log file (its pipeline's), as the original; None alone."""
        return None if self.pipeline is None else Path(self.pipeline.log_dir)

    @property
    def log_file(self) -> Path | None:
        """This task's log file, once it belongs to a pipeline."""
        if self.pipeline is None:
            return None
        return self.log_dir / f"{safe_filename(self.name)}.log" if self.log_dir else None

    @property
    def logger(self) -> Any:
        """This task's loguru logger; its records also go to `<log dir>/<name>.log`."""
        if self._logger is None:
            log_dir = self.pipeline.log_dir if self.pipeline is not None else None
            self._logger = task_logger(self.name, log_dir)
        return self._logger

    @property
    def info(self) -> str | None:
        """The docstring of the module that defines the task."""
        fns = self.code_functions()
        module = sys.modules.get(getattr(fns[0], "__module__", "") or "") if fns else None
        return module.__doc__ if module is not None else None

    @property
    def result(self) -> Any:
        """The task's cached result (loaded on access), or None."""
        if self.pipeline is None:
            return None
        return self.pipeline.get_result(self.name)

    def __repr__(self) -> str:
        return f"<Task ({self.name!r})>"

    # Identity semantics: two tasks are equal only if they are the same object.
    __hash__ = object.__hash__

    def __getstate__(self) -> dict[str, Any]:
        # Sent to a worker without its pipeline (the store stays with the driver)
        # and without its logger (rebuilt there, its records shipped back).
        state = self.__dict__.copy()
        pipeline = state.pop("pipeline", None)
        state["_pipeline_name"] = getattr(pipeline, "name", None)
        state["pipeline"] = None
        state["_logger"] = None
        return state


def find_tasks(namespace: Mapping[str, Any], nested: bool = True) -> set[Task]:
    """The Tasks among a namespace's values (e.g. `globals()`), one level into modules."""
    found: set[Task] = set()
    for value in list(namespace.values()):
        if isinstance(value, Task):
            found.add(value)
        elif nested and isinstance(value, types.ModuleType):
            found.update(v for v in vars(value).values() if isinstance(v, Task))
    return found


def _check_run_options(task: Task) -> None:
    retries, delay, timeout = task.retries, task.retry_delay, task.timeout
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise TaskDefinitionError(
            f"Task {task.name!r}: retries must be a whole number >= 0, got {retries!r}."
        )
    delays = delay if isinstance(delay, (list, tuple)) else [delay]
    if not all(_is_seconds(d) for d in delays):
        raise TaskDefinitionError(
            f"Task {task.name!r}: retry_delay must be seconds >= 0 or a list of them "
            f"(e.g. [1, 5, 30]), got {delay!r}."
        )
    if timeout is not None and not (_is_seconds(timeout) and timeout > 0):
        raise TaskDefinitionError(
            f"Task {task.name!r}: timeout must be a number of seconds > 0, got {timeout!r}."
        )


def _check_fingerprint_options(task: Task) -> None:
    where = f"Task {task.name!r}"
    if task.code is not None and task.code not in _CODE_MODES:
        raise TaskDefinitionError(
            f"{where}: code must be 'module' (the whole defining file) or 'function' (the "
            f"task's functions and what they use), got {task.code!r}."
        )
    if task.version is not None and not isinstance(task.version, str):
        raise TaskDefinitionError(f"{where}: version must be a string, got {task.version!r}.")
    sources = task.sources
    if sources is not None and not (
        isinstance(sources, Mapping)
        and all(isinstance(k, str) and callable(f) for k, f in sources.items())
    ):
        raise TaskDefinitionError(
            f"{where}: sources must map names to functions returning a token, e.g. "
            f"sources={{'orders': lambda: db.max_updated_at()}}, got {sources!r}."
        )
    if not all(isinstance(k, str) for k in task._own_params):
        raise TaskDefinitionError(f"{where}: params keys must be strings.")
    ignored = task.ignore_params
    if ignored is not None and (isinstance(ignored, str) or not all(
            isinstance(k, str) for k in ignored)):
        raise TaskDefinitionError(
            f"{where}: ignore_params must be a list of param names, got {ignored!r}."
        )


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _names_of(deps: Iterable[str | Task] | str | Task | None, owner: str) -> list[str]:
    if deps is None:
        return []
    items: Iterable[str | Task] = [deps] if isinstance(deps, (str, Task)) else deps
    names: dict[str, None] = {}  # ordered and deduplicated in linear time
    for d in items:
        if isinstance(d, Task):
            d = d.name
        if not isinstance(d, str):
            raise TaskDefinitionError(
                f"Task {owner!r}: dependencies are task names or Task objects, got {d!r}."
            )
        names[d] = None
    return list(names)


def _as_given(paths: Any) -> Any:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike, tuple)):
        return paths
    return list(paths) if isinstance(paths, Iterable) else [paths]  # [5]: a clear error next


def _paths_of(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None, owner: str
) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TaskDefinitionError(
                f"Task {owner!r}: input_files are paths, folders or globs, got {p!r}."
            )
        out.append(os.fspath(p))
    return out


def _var(name: str) -> str:
    return name.lower() if name.isidentifier() else "task"
