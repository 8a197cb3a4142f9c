"""Tasks: the classic `Task` + `@task.process` form and the function form.

Both forms build the same `Task`. A classic task is given processes with `@task.process`;
the one named `run` computes its result, the others are helpers callable as
`this.<name>(...)` and each timed. A function-form task wraps one plain function whose
parameters named after tasks receive their results.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

from . import expire as _expire
from .errors import TaskDefinitionError, did_you_mean
from .log import safe_filename, task_logger, timed
from .taskoptions import (
    NEW_OPTIONS,
    as_given,
    check_declaration,
    check_fingerprint_options,
    check_run_options,
    paths_of,
)


class Host(Protocol):
    """What a task may ask of its pipeline (`Pipeline`, or `worker.WorkerPipeline`)."""

    name: str
    params: dict[str, Any]
    code: str  # "module" or "function": what a task's code fingerprint covers by default

    @property
    def log_dir(self) -> Path | None: ...
    def get_result(self, name: str | Task, default: Any = None) -> Any: ...
    def tasks_by_name(self) -> Mapping[str, Task]: ...
    def definition_changed(self) -> None: ...


#: The task running in this thread and its run's params (a Task holds no run's state).
_RUNNING: ContextVar[tuple[Task, Mapping[str, Any]] | None] = ContextVar("lp_running")

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
        policy = check_declaration(name, if_upstream_errors, new_options)
        self.name = name
        self._declared_deps = _names_of(dependencies, name)
        self.expire_results = _expire.normalize(expire_results)
        self.if_upstream_errors = policy
        # Kept as given (a Path stays a Path, as in the original); `input_paths` is the
        # normalised form everything else uses. A one-shot iterable is kept as a list.
        self.input_files = as_given(input_files)
        if input_files is not None:
            paths_of(self.input_files, name)  # checked now, before anything runs
        self.hash_inputs = bool(hash_inputs)
        self._own_params: dict[str, Any] = (
            dict(new_options.get("params") or {}) if new_options else {})
        self._processes: dict[str, Callable[..., Any]] = {}
        self.pipeline: Host | None = None
        self.is_executed = False
        self.is_skipped = False
        self._logger: Any = None
        # The options' and the function form's defaults are class attributes (see
        # _SHARED): a value given lands in the task's own __dict__. A subclass's own
        # class attributes of those names are overridden, as they always were.
        if type(self) is not Task:
            self.__dict__.update(_SHARED)
        if new_options:
            for option in NEW_OPTIONS:
                if option != "params" and option in new_options:
                    setattr(self, option, new_options[option])
            check_run_options(name, self.retries, self.retry_delay, self.timeout)
            self._check_fingerprint_options()
        # else: the options' defaults, which pass both checks

    # -- declaring -----------------------------------------------------------
    def process(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: attach `fn(this, *args, **kwargs)` as the process `fn.__name__`."""
        if not callable(fn) or not hasattr(fn, "__name__"):
            raise TaskDefinitionError(
                f"Task {self.name!r}: @task.process decorates a function, got {fn!r}."
            )
        pname = fn.__name__
        if pname != "run" and hasattr(type(self), pname) and pname not in _SHARED:
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
        task._init_from_function(fn)
        return task

    def _init_from_function(self, fn: Callable[..., Any]) -> None:
        """Become the function-form task of `fn` (a classic task's defaults: `_SHARED`)."""
        wants_this, params, required, bad = _shape(fn)
        if bad is not None:
            raise TaskDefinitionError(
                f"Task {self.name!r}: parameter {bad[0]!r} of {fn.__name__}() is "
                f"{bad[1]}; function-form tasks take named parameters only, "
                f"each named after the upstream task whose result it receives."
            )
        self._wants_this: bool = wants_this
        self._function: Callable[..., Any] | None = fn
        self._params: tuple[str, ...] = params
        self._required: frozenset[str] = required
        self._processes["run"] = _run_from_pipeline  # a function, not a bound method: no cycle
        # functools.update_wrapper(self, fn, updated=()) without its per-name setattr:
        # Task defines none of these names, so they land in the task's __dict__ all the same.
        own = self.__dict__
        for attr in functools.WRAPPER_ASSIGNMENTS:
            value = getattr(fn, attr, _ABSENT)
            if value is not _ABSENT:
                own[attr] = value
        own["__wrapped__"] = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call a function-form task's function directly (handy in tests)."""
        if self._function is None:
            raise TypeError(f"Task {self.name!r} is not callable; call task.run() instead.")
        return self._function(*args, **kwargs)

    # -- dependencies --------------------------------------------------------
    def dependency_names(self, known: Mapping[str, Any] | None = None) -> list[str]:
        """Declared dependencies plus, in the function form, parameters naming known tasks."""
        names = list(self._declared_deps)
        if known is not None and self._params:
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
            if _takes_one_argument(run):
                return []
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
        if not self._params:  # fn() or fn(this): no parameter to check
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
        """Parameters passed to the task: the pipeline's `params`, updated by the task's.

        While the task runs, the params fixed for the run (those its fingerprint holds).
        """
        running = _RUNNING.get(None)
        if running is not None and running[0] is self:
            return dict(running[1])
        inherited = getattr(self.pipeline, "params", None) or {}
        return {**inherited, **self._own_params}

    @params.setter
    def params(self, value: Mapping[str, Any] | None) -> None:
        self._own_params = dict(value or {})
        self._check_fingerprint_options()

    @property
    def dependencies(self) -> dict[str, Task] | None:
        """None until the task is added to a pipeline, then `{name: Task}`."""
        if self.pipeline is None:
            return None
        tasks = self.pipeline.tasks_by_name()
        names = self.dependency_names(tasks) if self._params else self._declared_deps
        return {n: tasks[n] for n in names if n in tasks}

    @dependencies.setter
    def dependencies(self, value: Iterable[str | Task] | None) -> None:
        self._declared_deps = _names_of(value, self.name)
        if self.pipeline is not None:
            self.pipeline.definition_changed()

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

    def invoke(self, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> Any:
        """Compute the result: the worker's entry point, given upstream values by name
        and the params fixed for the run (default: the task's current `params`)."""
        params = self.params if params is None else params
        token = _RUNNING.set((self, params))
        try:
            fn = self._function
            # Not timed here: the worker times the call, and the driver logs it as
            # `main_call` with the task's status line (one record, see statuslines).
            if fn is None:
                return self._processes["run"](self)
            if not self._params:  # fn() or fn(this): no arguments to gather
                return fn(self) if self._wants_this else fn()
            kwargs = {p: inputs[p] if p in inputs else params[p]
                      for p in self._params if p in inputs or p in params}
            return fn(self, **kwargs) if self._wants_this else fn(**kwargs)
        finally:
            _RUNNING.reset(token)

    @property
    def main_call(self) -> str:
        """The task's main call as its PERF timing names it: "function 'f'" or "process 'run'"."""
        fn = self._function
        return "process 'run'" if fn is None else f"function {fn.__name__!r}"

    def attach(self, host: Host | None) -> None:
        """Belong to `host` (a pipeline, a worker's stand-in); the logger follows its folder."""
        self.pipeline = host
        self._logger = None

    # -- introspection -----------------------------------------------------------
    @property
    def argument_names(self) -> tuple[str, ...]:
        """A function-form task's parameter names (upstream tasks or params); () if classic."""
        return self._params

    def code_functions(self) -> list[Callable[..., Any]]:
        """The user's functions that make up this task (for its code fingerprint)."""
        if self._function is not None:
            return [self._function]
        return list(self._processes.values())

    @property
    def has_run(self) -> bool:
        """Whether the task has its `run` process (a function-form task always has)."""
        return "run" in self._processes

    @property
    def input_paths(self) -> list[str]:
        """`input_files` as path strings (read at each call: a changed `input_files` counts)."""
        files = self.input_files  # none given (most tasks): [] without paths_of's ABC checks
        return [] if type(files) is list and not files else paths_of(files, self.name)

    @property
    def main_function(self) -> Callable[..., Any] | None:
        """The function that computes the result: the function form's, or the `run` process."""
        return self._function or self._processes.get("run")

    @property
    def log_dir(self) -> Path | None:
        """The folder of this task's log file (its pipeline's), as the original; None alone."""
        log_dir = self.pipeline.log_dir if self.pipeline is not None else None
        return log_dir if log_dir is None or isinstance(log_dir, Path) else Path(log_dir)

    @property
    def log_file(self) -> Path | None:
        """This task's log file, once it belongs to a pipeline."""
        return None if self.log_dir is None else self.log_dir / f"{safe_filename(self.name)}.log"

    @property
    def logger(self) -> Any:
        """This task's loguru logger; its records also go to `<log dir>/<name>.log`."""
        if self._logger is None:
            self._logger = task_logger(self.name, self.log_dir)
        return self._logger

    @property
    def info(self) -> str | None:
        """What the task is about: a function-form task's own docstring; for a classic
        task the docstring of the module that defines it (as the original library
        had it), else its processes' docstrings, `run` first."""
        if self._function is not None:
            return inspect.getdoc(self._function)
        fns = self.code_functions()
        module = sys.modules.get(getattr(fns[0], "__module__", "") or "") if fns else None
        if module is not None and module.__doc__:
            return inspect.cleandoc(module.__doc__)
        run = self._processes.get("run")
        ordered = ([run] if run is not None else []) + [f for f in fns if f is not run]
        docs = [inspect.getdoc(f) for f in ordered]
        return "\n\n".join(d for d in docs if d) or None

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

    def _check_fingerprint_options(self) -> None:
        check_fingerprint_options(self.name, self.code, self.version, self.sources,
                                  self._own_params, self.ignore_params)

    def __getstate__(self) -> dict[str, Any]:
        # Sent to a worker without its pipeline (the store stays with the driver)
        # and without its logger (rebuilt there, its records shipped back).
        state = self.__dict__.copy()
        pipeline = state.pop("pipeline", None)
        state["_pipeline_name"] = getattr(pipeline, "name", None)
        state["pipeline"] = None
        state["_logger"] = None
        return state


_ABSENT = object()  # what getattr() answers for an attribute a function lacks

#: Defaults every Task shares as class attributes (immutable values): the options' and a
#: classic task's function-form state. Copied into each task they made it ~1 KB and ~1 µs
#: bigger and slower to build. `process` may take their names, as it always could.
_SHARED: dict[str, Any] = {
    **{k: v for k, v in NEW_OPTIONS.items() if k != "params"},
    "_function": None, "_params": (), "_required": frozenset(), "_wants_this": False,
}
for _name, _value in _SHARED.items():
    assert not hasattr(Task, _name), _name  # a default must not hide a Task attribute
    setattr(Task, _name, _value)


def _run_from_pipeline(this: Task) -> Any:
    """A function-form task's `run` process: `task.run()` fetches the upstream results."""
    host = this.pipeline
    if host is None:
        return this.invoke({})
    known = host.tasks_by_name()
    return this.invoke({p: host.get_result(p) for p in this.argument_names if p in known})


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


def _var(name: str) -> str:
    return name.lower() if name.isidentifier() else "task"


def _takes_one_argument(fn: Any) -> bool:
    """Whether a plain function can be called with one positional argument, read from
    its code object: `inspect.signature` cost ~15 µs a classic task on every run.
    False means "ask inspect" (other callables, or a signature that does not fit)."""
    if not isinstance(fn, types.FunctionType):
        return False
    code = fn.__code__
    positional = code.co_argcount
    required = positional - len(fn.__defaults__ or ())
    kw_required = set(code.co_varnames[positional:positional + code.co_kwonlyargcount])
    kw_required -= set(fn.__kwdefaults__ or ())
    takes_more = positional >= 1 or bool(code.co_flags & inspect.CO_VARARGS)
    return takes_more and required <= 1 and not kw_required


_Shape = tuple[bool, tuple[str, ...], frozenset[str], "tuple[str, str] | None"]
#: Each function's parameters as a function-form task reads them, once per function:
#: a pipeline built in a loop from one function paid inspect.signature per task.
_SHAPES: weakref.WeakKeyDictionary[Any, _Shape] = weakref.WeakKeyDictionary()


def _shape(fn: Any) -> _Shape:
    """(wants `this`, parameter names, required ones, the first bad (name, kind) or None)."""
    try:
        return _SHAPES[fn]
    except (KeyError, TypeError):  # TypeError: not weakly referenceable, or unhashable
        pass
    params = list(inspect.signature(fn).parameters.values())
    wants_this = bool(params) and params[0].name == "this"
    if wants_this:
        params = params[1:]
    bad = next(((p.name, p.kind.description) for p in params
                if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)), None)
    shape: _Shape = (wants_this, tuple(p.name for p in params),
                     frozenset(p.name for p in params if p.default is p.empty), bad)
    with contextlib.suppress(TypeError):
        _SHAPES[fn] = shape
    return shape
