"""Freshness: for one task, reuse its stored result or run it, and why.

A task's *state* is what its fingerprint is made of: the digests of its code
files, the stamps of its input files and the result digests of its upstream
tasks. The fingerprint is the hash of that state (Merkle style: an upstream
change reaches every task below it; an identical rerun stops there). Comparing
the current state with the recorded one part by part gives the reasons as data.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import expire
from .fingerprint import FileDigests, FileStamp, combine, digest_bytes
from .report import Reason

if TYPE_CHECKING:
    from .store import Record
    from .task import Task

# Older stores may lack a key; a schema number lets a future format change
# invalidate cleanly instead of comparing apples with pears.
SCHEMA = 1
_CLOCK_SKEW = 1.0  # seconds a record may lie "in the future" before the clock counts as moved back


@dataclass
class State:
    """What a task's fingerprint is made of, right now."""

    code: dict[str, FileStamp] = field(default_factory=dict)
    inputs: dict[str, FileStamp] = field(default_factory=dict)
    upstream: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return combine(
            ("schema", SCHEMA),
            ("code", tuple((path, s[2]) for path, s in sorted(self.code.items()))),
            ("inputs", tuple((path, s[2]) for path, s in sorted(self.inputs.items()))),
            ("upstream", tuple(sorted(self.upstream.items()))),
        )


def current_state(
    task: Task,
    record: Record | None,
    files: FileDigests,
    input_paths: list[str],
    upstream: Mapping[str, str],
) -> State:
    """Take the task's state, re-reading only files whose stat changed since `record`."""
    old_code: dict[str, FileStamp] = record.get("code", {}) if record else {}
    old_inputs: dict[str, FileStamp] = record.get("inputs", {}) if record else {}
    state = State(upstream=dict(upstream))
    for fn in task.code_functions():
        path, stamp = code_stamp(fn, files, old_code)
        state.code[path] = stamp
    if task.hash_inputs:
        for path in input_paths:
            state.inputs[path] = files.stamp(path, old_inputs.get(path))
    return state


def code_stamp(
    fn: Callable[..., Any], files: FileDigests, old: Mapping[str, FileStamp]
) -> tuple[str, FileStamp]:
    """The code part of a fingerprint: the whole defining file, as the original promised.

    A function with no file on disk (defined in a REPL or by exec) counts by its
    compiled code instead.
    """
    code = getattr(fn, "__code__", None)
    path = getattr(code, "co_filename", None)
    if path and not path.startswith("<"):
        try:
            return path, files.stamp(path, old.get(path))
        except OSError:
            pass
    name = f"<code of {getattr(fn, '__qualname__', repr(fn))}>"
    blob = marshal.dumps(code) if code is not None else repr(fn).encode()
    return name, (0, 0, digest_bytes(blob))


def reasons_to_run(
    task: Task, record: Record | None, state: State, *, run_id: str, now: datetime
) -> list[Reason]:
    """Why the task must run; an empty list means its stored result can be reused."""
    if record is None:
        return [Reason("no_result")]
    if record.get("fingerprint") == state.fingerprint:
        return _expiry_reasons(record, run_id=run_id, now=now)
    reasons = _code_changes(record.get("code", {}), state.code)
    reasons += _input_changes(record.get("inputs", {}), state.inputs)
    old_up: dict[str, str] = record.get("upstream", {})
    for name, digest in state.upstream.items():
        if name in old_up and old_up[name] != digest:
            reasons.append(Reason("upstream_changed", name))
    added, removed = set(state.upstream) - set(old_up), set(old_up) - set(state.upstream)
    if added or removed:
        detail = ", ".join([*(f"+{n}" for n in sorted(added)), *(f"-{n}" for n in sorted(removed))])
        reasons.append(Reason("dependencies_changed", detail=detail))
    return reasons or [Reason("definition_changed", detail="fingerprint differs")]


def _code_changes(old: Mapping[str, FileStamp], new: Mapping[str, FileStamp]) -> list[Reason]:
    changed = [path for path, stamp in new.items() if path not in old or old[path][2] != stamp[2]]
    changed += [path for path in old if path not in new]
    return [Reason("code_changed", path) for path in changed]


def _input_changes(old: Mapping[str, FileStamp], new: Mapping[str, FileStamp]) -> list[Reason]:
    reasons = []
    for path, stamp in new.items():
        if path not in old:
            reasons.append(Reason("input_added", path))
        elif old[path][2] != stamp[2]:
            reasons.append(Reason("input_changed", path))
    reasons += [Reason("input_removed", path) for path in old if path not in new]
    return reasons


def _expiry_reasons(record: Record, *, run_id: str, now: datetime) -> list[Reason]:
    kind = record.get("expiry", "never")
    ts = now.timestamp()
    if record.get("created_at", 0.0) > ts + _CLOCK_SKEW:
        return [Reason("clock_moved_back", detail=_local(record["created_at"]))]
    if kind == "session" and record.get("session") != expire.session_id():
        return [Reason("session_ended")]
    if kind == "on_complete" and record.get("run_id") != run_id:
        return [Reason("run_ended")]
    expires_at = record.get("expires_at")
    if expires_at is not None and ts >= expires_at:
        return [Reason("expired", detail=_local(expires_at))]
    return []


def expiry_fields(task: Task, now: datetime, *, run_id: str, drop_none: bool) -> dict[str, Any]:
    """The expiry part of a new record, fixed at the moment the result is stored."""
    policy = task.expire_results
    kind = "on_complete" if drop_none else policy.kind
    when = policy.expires_at(now) if kind == "time" else None
    return {
        "expiry": kind,
        "expires_at": when.timestamp() if when is not None else None,
        "session": expire.session_id() if kind == "session" else None,
        "run_id": run_id,
    }


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
