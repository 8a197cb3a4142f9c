"""What a Task may be declared with, checked once, at the boundary.

The options a Task takes beyond the original's arguments (with their defaults),
and the checks every declaration passes before anything runs. Plain values in,
a `TaskDefinitionError` saying what was wrong out; `task.Task` calls these and
holds only the checked values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import TaskDefinitionError, did_you_mean

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
CODE_MODES = ("module", "function")
UPSTREAM_ERROR_POLICIES = ("FAIL", "SKIP")


def check_declaration(name: Any, if_upstream_errors: Any, options: Mapping[str, Any]) -> str:
    """Check a Task's name, its `if_upstream_errors` (returned upper-cased) and that
    every option beyond the original's arguments is one it takes."""
    if not isinstance(name, str) or not name.strip():
        raise TaskDefinitionError(
            f"A task name must be a non-empty string, got {name!r}: lp.Task('Extract')."
        )
    if (type(if_upstream_errors) is str and if_upstream_errors in UPSTREAM_ERROR_POLICIES
            and name.isascii() and not options):
        return if_upstream_errors  # the common case, checked in fewer steps
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # e.g. os.fsdecode(b"report_\xff.csv"): undecodable bytes
        raise TaskDefinitionError(
            f"A task name must be valid Unicode text, got {name!r}, which holds "
            f"undecodable bytes (a file name read with os.fsdecode?); name the task "
            f"with text, e.g. {name.encode('utf-8', 'replace').decode('utf-8')!r}."
        ) from None
    policy = str(if_upstream_errors).upper()
    if policy not in UPSTREAM_ERROR_POLICIES:
        raise TaskDefinitionError(
            f"Task {name!r}: if_upstream_errors must be 'FAIL' or 'SKIP', "
            f"got {if_upstream_errors!r}."
        )
    unknown = set(options) - set(NEW_OPTIONS)
    if unknown:
        bad = sorted(unknown)[0]
        raise TaskDefinitionError(
            f"Task {name!r} got an unknown option {bad!r}. "
            + did_you_mean(bad, [*NEW_OPTIONS, "dependencies", "expire_results",
                                 "if_upstream_errors", "input_files", "hash_inputs"])
        )
    return policy


def check_run_options(name: str, retries: Any, delay: Any, timeout: Any) -> None:
    """Raise TaskDefinitionError unless retries, retry_delay and timeout= can work."""
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise TaskDefinitionError(
            f"Task {name!r}: retries must be a whole number >= 0, got {retries!r}."
        )
    delays = delay if isinstance(delay, (list, tuple)) else [delay]
    if not all(is_seconds(d) for d in delays):
        raise TaskDefinitionError(
            f"Task {name!r}: retry_delay must be seconds >= 0 or a list of them "
            f"(e.g. [1, 5, 30]), got {delay!r}."
        )
    if timeout is not None and not (is_seconds(timeout) and timeout > 0):
        raise TaskDefinitionError(
            f"Task {name!r}: timeout must be a number of seconds > 0 and at most "
            f"{MAX_SECONDS:,.0f} (about 3 years), got {timeout!r}; use timeout=None for "
            f"no limit."
        )


def check_fingerprint_options(name: str, code: Any, version: Any, sources: Any,
                              params: Mapping[str, Any], ignored: Any) -> None:
    """Raise TaskDefinitionError unless code=, version=, sources=, params= and
    ignore_params= are what a fingerprint can use."""
    where = f"Task {name!r}"
    if code is not None and code not in CODE_MODES:
        raise TaskDefinitionError(
            f"{where}: code must be 'module' (the whole defining file) or 'function' (the "
            f"task's functions and what they use), got {code!r}."
        )
    if version is not None and not isinstance(version, str):
        raise TaskDefinitionError(f"{where}: version must be a string, got {version!r}.")
    if sources is not None and not (
        isinstance(sources, Mapping)
        and all(isinstance(k, str) and callable(f) for k, f in sources.items())
    ):
        raise TaskDefinitionError(
            f"{where}: sources must map names to functions returning a token, e.g. "
            f"sources={{'orders': lambda: db.max_updated_at()}}, got {sources!r}."
        )
    if not all(isinstance(k, str) for k in params):
        raise TaskDefinitionError(f"{where}: params keys must be strings.")
    if ignored is not None and (isinstance(ignored, str) or not all(
            isinstance(k, str) for k in ignored)):
        raise TaskDefinitionError(
            f"{where}: ignore_params must be a list of param names, got {ignored!r}."
        )


MAX_SECONDS = 1e8  # beyond this the OS timer overflows (1e10 raised OverflowError mid-run)


def is_seconds(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 <= value <= MAX_SECONDS)  # also refuses inf and nan


def as_given(paths: Any) -> Any:
    """`input_files` kept as given (a Path stays a Path, as in the original); a
    one-shot iterable is kept as a list."""
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike, tuple)):
        return paths
    return list(paths) if isinstance(paths, Iterable) else [paths]  # [5]: a clear error next


def paths_of(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None, owner: str
) -> list[str]:
    """`input_files` as path strings; anything else is a TaskDefinitionError."""
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
