"""The exception tree of Little Pipelines.

Every error the library raises on purpose derives from one base, and each
subclass also inherits the built-in whose meaning it shares, so callers can
catch either::

    LittlePipelinesError(Exception)
    ├── PipelineValidationError(ValueError)      all definition problems at once;
    │                                             also AttributeError when a task lacks
    │                                             `run`, graphlib.CycleError on a cycle
    ├── UnknownTaskError(KeyError)               a name that is no task (did you mean ...)
    ├── TaskDefinitionError(TypeError)           a task or process declared wrongly
    │   └── FingerprintError                     a param or source token that cannot be hashed
    ├── InvalidOptionError(ValueError)           an option given a value it does not take
    │   │                                         (a pipeline's name or code=, an expiry
    │   │                                         policy, a log level, a graph format)
    │   └── OptionTypeError(TypeError)           ... given a value of the wrong type
    ├── ExecutorError(ValueError)                an executor that cannot be used
    ├── TaskNotSendable(TypeError)               a task that cannot be pickled to a worker
    ├── MissingInputError(FileNotFoundError)     an input file or glob matching nothing
    ├── UnsafeStoreError(PermissionError)        a store others could have written to
    ├── StoreError(OSError)                      the store could not be read or written
    ├── PipelineFailedError(RuntimeError)        raised by RunReport.raise_for_failures()
    ├── NoResultError(LookupError)               a task with no stored result (`accept`)
    ├── LoadError(ImportError)                   `lpipe`'s PIPELINE names nothing loadable
    ├── UsageError(ValueError)                   a command line asking the impossible
    └── CommandError(ValueError)                 a shell command given wrong arguments

Each is exported from the package (`lp.StoreError`, ...).
"""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Iterable


class LittlePipelinesError(Exception):
    """Base of every error Little Pipelines raises on purpose."""


class PipelineValidationError(LittlePipelinesError, ValueError):
    """A pipeline's definition has problems; `problems` lists every one of them."""

    #: names of the tasks that have no `run` process (a fact, not a message to parse)
    missing_run: list[str]

    def __init__(self, pipeline: str, problems: list[str]) -> None:
        self.pipeline = pipeline
        self.problems = list(problems)
        self.missing_run = []
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(
            f"Pipeline {pipeline!r} is not valid ({n} problem{'s' * (n != 1)}); "
            f"nothing was run:\n{lines}"
        )

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def build(
        cls, pipeline: str, problems: list[str], *, missing_run: Iterable[str] = (),
        cycle: list[str] | None = None,
    ) -> PipelineValidationError:
        """Make the error, also an AttributeError / CycleError where the original raised those.

        `missing_run` names the tasks without a `run` process; `cycle` is a cycle's path.
        """
        missing_run = list(missing_run)
        bases: tuple[type, ...] = (cls,)
        if missing_run:
            bases += (AttributeError,)
        if cycle is not None:
            bases += (graphlib.CycleError,)
        kind = cls if len(bases) == 1 else _combined(bases)
        err = kind(pipeline, problems)
        err.missing_run = missing_run
        if cycle is not None:
            # graphlib.CycleError carries the cycle as its second argument.
            err.args = (err.args[0], cycle)
        return err


_COMBINED: dict[tuple[type, ...], type] = {}


def _combined(bases: tuple[type, ...]) -> type:
    if bases not in _COMBINED:
        _COMBINED[bases] = type("PipelineValidationError", bases, {"__module__": __name__})
    return _COMBINED[bases]


class UnknownTaskError(LittlePipelinesError, KeyError):
    """A name that is not a task of the pipeline."""

    def __init__(self, name: str, known: Iterable[str], *, where: str = "") -> None:
        self.name = name
        known = list(known)
        where = f" in {where}" if where else ""
        msg = f"No task named {name!r}{where}. {did_you_mean(name, known)}"
        super().__init__(msg.rstrip())

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class TaskDefinitionError(LittlePipelinesError, TypeError):
    """A task, a process or an option was declared in a way that cannot work."""


class FingerprintError(TaskDefinitionError):
    """A param value or source token that cannot be fingerprinted (never a silent miss)."""


class MissingInputError(LittlePipelinesError, FileNotFoundError):
    """An input file, folder or glob of a task matches no file."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnsafeStoreError(LittlePipelinesError, PermissionError):
    """A store folder that another user could have written to (its pickles would run code)."""

    def __str__(self) -> str:
        return str(self.args[0])


class StoreError(LittlePipelinesError, OSError):
    """The store could not be read or written (a damaged file, a full disk, a lock held too long).

    An OSError, so code that handles a full disk handles this too.
    """

    def __str__(self) -> str:
        return str(self.args[0])


class PipelineFailedError(LittlePipelinesError, RuntimeError):
    """Raised by `RunReport.raise_for_failures()` when tasks failed."""


class InvalidOptionError(LittlePipelinesError, ValueError):
    """An option given a value it does not take (a pipeline's name or `code=`, an expiry
    policy's arguments, a log level or format, a graph format)."""


class OptionTypeError(InvalidOptionError, TypeError):
    """An option given a value of the wrong type (also a TypeError, as it was)."""


class ExecutorError(LittlePipelinesError, ValueError):
    """An executor that cannot be used (unknown name, missing optional dependency)."""


class TaskNotSendable(LittlePipelinesError, TypeError):
    """A task that cannot be sent to a worker process (its code or state won't pickle)."""

    def __init__(self, task: str, why: str) -> None:
        super().__init__(
            f"Task {task!r} cannot be sent to a worker: {why}. Keep what the task refers to "
            f"picklable (no open files, locks or connections at module level), or use "
            f"executor='threads'."
        )


class NoResultError(LittlePipelinesError, LookupError):
    """A task has no stored result where one is needed (`accept` before any run)."""

    def __init__(self, message: str, *, task: str) -> None:
        super().__init__(message)
        self.task = task

    def __str__(self) -> str:
        return str(self.args[0])


class LoadError(LittlePipelinesError, ImportError):
    """The PIPELINE argument names nothing that can be loaded.

    `details` is the traceback of the user's code when importing it failed, else "".
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details

    def __str__(self) -> str:
        return str(self.args[0])


class UsageError(LittlePipelinesError, ValueError):
    """A command line that asks for something impossible (exit status 2)."""


class CommandError(LittlePipelinesError, ValueError):
    """A shell command given arguments it does not take, or an unknown command."""


def did_you_mean(name: str, known: Iterable[str], what: str = "tasks", *,
                 listing: bool = True) -> str:
    """A hint naming the closest known names, or listing a few when none is close
    (or "" then, with `listing=False`). The one place every "did you mean" comes from."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return "Did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not listing:
        return ""
    if not known:
        return "The pipeline has no tasks yet; add some with pipeline.add(...)."
    shown = ", ".join(repr(k) for k in known[:8])
    more = f" and {len(known) - 8} more" if len(known) > 8 else ""
    return f"Known {what}: {shown}{more}."
