"""Little Pipelines: make-like pipelines of Python functions, cached on disk.

Declare tasks and what they depend on; `Pipeline.execute()` runs them in
dependency order, stores every result, and on the next run redoes only what
changed (code, input files, upstream results, or an expired result).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    CommandError,
    ExecutorError,
    FingerprintError,
    InvalidOptionError,
    LittlePipelinesError,
    LoadError,
    MissingInputError,
    NoResultError,
    OptionTypeError,
    PipelineFailedError,
    PipelineValidationError,
    StoreError,
    TaskDefinitionError,
    TaskNotSendable,
    UnknownTaskError,
    UnsafeStoreError,
    UsageError,
)

if TYPE_CHECKING:
    from . import expire
    from .fingerprint import register_digest
    from .loading import find_tasks
    from .log import PERF, set_log_format, set_log_level
    from .pipeline import Pipeline
    from .report import Reason, RunReport, TaskOutcome
    from .shell import Shell
    from .store import MISSING
    from .task import Task

__version__ = "0.2.0"

__all__ = [
    "MISSING",
    "PERF",
    "CommandError",
    "ExecutorError",
    "FingerprintError",
    "InvalidOptionError",
    "LittlePipelinesError",
    "LoadError",
    "MissingInputError",
    "NoResultError",
    "OptionTypeError",
    "Pipeline",
    "PipelineFailedError",
    "PipelineValidationError",
    "Reason",
    "RunReport",
    "Shell",
    "StoreError",
    "Task",
    "TaskDefinitionError",
    "TaskNotSendable",
    "TaskOutcome",
    "UnknownTaskError",
    "UnsafeStoreError",
    "UsageError",
    "expire",
    "find_tasks",
    "register_digest",
    "set_log_format",
    "set_log_level",
]


#: Public name -> the module that defines it, imported on first use: `lpipe --help`
#: and `import little_pipelines` need none of them, and the engine pulls in loguru,
#: diskcache and the code-fingerprint machinery (~100 ms; docs/benchmarks.md).
_LAZY = {
    "Pipeline": ".pipeline", "Task": ".task", "find_tasks": ".loading", "Reason": ".report",
    "RunReport": ".report", "TaskOutcome": ".report", "MISSING": ".store", "PERF": ".log",
    "set_log_format": ".log", "set_log_level": ".log", "Shell": ".shell", "expire": ".expire",
    "register_digest": ".fingerprint",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'little_pipelines' has no attribute {name!r}")
    module = importlib.import_module(where, __name__)
    if name != "Shell":  # with the first name used: how reports draw in a notebook
        importlib.import_module(".notebook", __name__)
    value = module if name == "expire" else getattr(module, name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
