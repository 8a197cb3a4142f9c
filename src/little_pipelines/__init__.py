"""Little Pipelines: make-like pipelines of Python functions, cached on disk.

Declare tasks and what they depend on; `Pipeline.execute()` runs them in
dependency order, stores every result, and on the next run redoes only what
changed (code, input files, upstream results, or an expired result).
"""

from __future__ import annotations

from typing import Any

from . import (
    expire,
    notebook,  # noqa: F401  (registers how reports draw in a notebook)
)
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
from .fingerprint import register_digest
from .loading import find_tasks
from .log import PERF, set_log_format, set_log_level
from .pipeline import Pipeline
from .report import Reason, RunReport, TaskOutcome
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


def __getattr__(name: str) -> Any:
    # The shell pulls in Rich and cmd; import it only when someone asks for it.
    if name == "Shell":
        from .shell import Shell

        return Shell
    raise AttributeError(f"module 'little_pipelines' has no attribute {name!r}")
