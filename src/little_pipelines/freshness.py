"""Freshness: for one task, reuse its stored result or run it, and why.

A task's *state* is what its fingerprint is made of: the digests of its code
files, the stamps of its input files and the result digests of its upstream
tasks. The fingerprint is the hash of that state (Merkle style: an upstream
change reaches every task below it; an identical rerun stops there). Comparing
the current state with the recorded one part by part gives the reasons as data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import expire
from .errors import FingerprintError
from .fingerprint import (
    CHANGED_WHILE_RUNNING,
    CodeStamp,
    FileDigests,
    FileStamp,
    changed_since,
    combine_repr,
    pairs_repr,
    short_repr,
    stamp_digest,
    value_digest,
)
from .report import Reason, fmt_time
from .taskcode import CodeIndex, code_state

if TYPE_CHECKING:
    from .store import Record
    from .task import Task

# Older stores may lack a key; a schema number lets a future format change
# invalidate cleanly instead of comparing apples with pears.
SCHEMA = 2  # 2: xxh3_128 digests instead of sha256
_CLOCK_SKEW = 1.0  # seconds a record may lie "in the future" before the clock counts as moved back
#: The reason of every task that has no record yet (reasons are frozen: one serves all).
NO_RESULT = Reason("no_result")


@dataclass
class State:
    """What a task's fingerprint is made of, right now.

    `code` maps a file path (code="module"), a function/class/constant name
    (code="function") or "version" to a stamp whose last item is its digest.
    The `*_text` fields are kept for `explain`, not hashed (code texts are stored
    apart from records, by digest).
    """

    code: dict[str, FileStamp | CodeStamp] = field(default_factory=dict)
    inputs: dict[str, FileStamp] = field(default_factory=dict)
    upstream: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    code_text: dict[str, str] = field(default_factory=dict)
    code_notes: dict[str, str] = field(default_factory=dict)
    params_text: dict[str, str] = field(default_factory=dict)
    sources_text: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """The hash of the state, taken once it is complete (to decide, then to record).

        Kept in the instance's dict by hand: functools.cached_property takes a lock
        on every read (Python 3.11), ~1 µs a task. It is `combine` of the parts

            ("schema", SCHEMA), ("code", ((key, digest), ...)), ("inputs", ((path,
            digest), ...)), ("upstream", ((name, digest), ...)), and, only when used
            (so adding these options left existing fingerprints alone), ("params",
            ((key, digest), ...)), ("sources", ((key, digest), ...)),

        each sorted by key, with its repr built by hand instead of from tuples (~2 µs
        less a task): the text, hence every stored fingerprint, is the same."""
        known = self.__dict__.get("_fingerprint")
        if known is not None:
            return known
        code, inputs = self.code, self.inputs
        files = pairs_repr({path: inputs[path][2] for path in inputs}) if inputs else "()"
        text = (f"(('schema', {SCHEMA!r}), ('code', {_code_repr(code)}), "
                f"('inputs', {files}), ('upstream', {pairs_repr(self.upstream)})")
        if self.params:
            text += f", ('params', {pairs_repr(self.params)})"
        if self.sources:
            text += f", ('sources', {pairs_repr(self.sources)})"
        self.__dict__["_fingerprint"] = digest = combine_repr(text + ")")
        return digest

    def record_fields(self, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """What a record keeps of the state (to compare with, and to explain from),
        added to `record` (a new record's first fields: no dict made to be merged)."""
        # Stamps go in as the plain tuples they equal: a named tuple is pickled by
        # class reference and looked up again on every load (~3 µs of each record's
        # ~8 µs dumps+loads); every reader indexes stamps, as old records need anyway.
        out: dict[str, Any] = {} if record is None else record
        inputs = self.inputs
        out["fingerprint"] = self.fingerprint
        code = self.code
        if len(code) == 1:  # most tasks: no comprehension's frame
            [(key, stamp)] = code.items()
            out["code"] = {key: tuple(stamp)}
        else:
            out["code"] = {key: tuple(stamp) for key, stamp in code.items()}
        out["inputs"] = {path: tuple(stamp) for path, stamp in inputs.items()} if inputs else {}
        out["upstream"], out["params"], out["sources"] = self.upstream, self.params, self.sources
        out["code_notes"], out["params_text"] = self.code_notes, self.params_text
        out["sources_text"] = self.sources_text
        return out


#: The code part's text of a fingerprint by (file or piece, digest): most tasks have one
#: piece (their module), which tasks share; a bounded memo (~0.5 µs a task).
_CODE_REPRS: dict[tuple[str, str], str] = {}
_CODE_REPRS_MAX = 4096


def _code_repr(code: Mapping[str, Any]) -> str:
    """`pairs_repr` of each code key with its stamp's digest as a string."""
    if len(code) != 1:
        return pairs_repr({key: str(code[key][-1]) for key in code})
    [(key, stamp)] = code.items()
    memo = (key, str(stamp[-1]))
    text = _CODE_REPRS.get(memo)
    if text is None:
        if len(_CODE_REPRS) >= _CODE_REPRS_MAX:
            _CODE_REPRS.clear()
        text = _CODE_REPRS[memo] = pairs_repr({key: memo[1]})
    return text


class Probe:
    """Per-run memo of what fingerprints read: file stamps, parsed code, source tokens.

    Each module file is hashed (or parsed) and each source asked for its token
    once per run, however many tasks share them.
    """

    def __init__(self) -> None:
        self.files = FileDigests()
        self.code = CodeIndex(self.files)  # cheap until a task asks it for pieces
        self._tokens: dict[tuple[int, str], tuple[str, str]] = {}

    def token(self, task: Task, key: str, fn: Callable[[], Any]) -> tuple[str, str]:
        """(digest, text) of a source's token, taken once per run."""
        memo = (id(fn), key)
        if memo not in self._tokens:
            try:
                token = fn()
            except Exception as e:
                raise FingerprintError(
                    f"Task {task.name!r}: source {key!r} raised {type(e).__name__}: {e}"
                ) from e
            self._tokens[memo] = (_digest_of(task, "source", key, token), short_repr(token))
        return self._tokens[memo]


def current_state(
    task: Task,
    record: Record | None,
    probe: Probe,
    input_paths: list[str],
    upstream: Mapping[str, str],
    params: Mapping[str, Any],
) -> State:
    """Take the task's state, re-reading only files whose stat changed since `record`.

    `params` are the task's params as fixed for the run (see `spec.build_spec`).
    """
    # Each part made whole, then the state at once (its nine defaults made and
    # replaced cost ~1 µs a task); a part a task does not use is not walked.
    code, code_text, notes = code_state(task, probe.code, record.get("code", {}) if record else {})
    inputs: dict[str, FileStamp] = {}
    if task.hash_inputs and input_paths:
        old_inputs: dict[str, FileStamp] = record.get("inputs", {}) if record else {}
        for path in input_paths:
            inputs[path] = probe.files.stamp(path, old_inputs.get(path))
    digests: dict[str, str] = {}
    texts: dict[str, str] = {}
    if params:
        ignored = set(task.ignore_params or ())
        for key, value in sorted(params.items()):
            if key not in ignored:
                digests[key] = _digest_of(task, "param", key, value)
                texts[key] = short_repr(value)
    sources: dict[str, str] = {}
    sources_text: dict[str, str] = {}
    if task.sources:
        for key, fn in sorted(task.sources.items()):
            sources[key], sources_text[key] = probe.token(task, key, fn)
    return State(code, inputs, dict(upstream), digests, sources, code_text, notes, texts,
                 sources_text)


def check_params(task: Task, params: Mapping[str, Any]) -> None:
    """Raise FingerprintError if a param (not ignored) cannot be fingerprinted."""
    ignored = set(task.ignore_params or ())
    for key, value in params.items():
        if key not in ignored:
            _digest_of(task, "param", key, value)


def _digest_of(task: Task, what: str, key: str, value: Any) -> str:
    try:
        return value_digest(value)
    except Exception as e:
        hint = (f" Add {key!r} to ignore_params= if it must not count." if what == "param"
                else " Return a string, number, tuple or other picklable token.")
        raise FingerprintError(
            f"Task {task.name!r}: {what} {key!r} cannot be fingerprinted: a "
            f"{type(value).__qualname__} ({type(e).__name__}: {e}).{hint}"
        ) from None


def reasons_to_run(
    task: Task, record: Record | None, state: State, *, run_id: str,
    now: datetime | None = None,
) -> list[Reason]:
    """Why the task must run; an empty list means its stored result can be reused.

    `now` (an aware datetime) defaults to the clock, read only when the expiry is
    what decides (a task with no record or another fingerprint never needs it)."""
    if record is None:
        return [NO_RESULT]
    if _made_from(record, state) or record.get("fingerprint") == state.fingerprint:
        return expiry_reasons(record, run_id=run_id, now=now)
    # A part equal to the record's has no reason in it: only the others are walked
    # (a rerun below a changed result has one changed part, its upstream: ~2 µs less).
    reasons: list[Reason] = []
    old_code = record.get("code", {})
    if old_code != state.code:
        reasons += _code_changes(old_code, state.code, state.code_notes)
    old_inputs = record.get("inputs", {})
    if old_inputs != state.inputs:
        reasons += _input_changes(old_inputs, state.inputs)
    old_params = record.get("params", {})
    if old_params != state.params:
        reasons += _value_changes("param_changed", old_params, state.params)
    old_sources = record.get("sources", {})
    if old_sources != state.sources:
        reasons += _value_changes("source_changed", old_sources, state.sources,
                                  record.get("sources_text", {}), state.sources_text)
    old_up: dict[str, str] = record.get("upstream", {})
    new_up = state.upstream
    if old_up != new_up:
        for name, digest in new_up.items():
            if name in old_up and old_up[name] != digest:
                reasons.append(Reason("upstream_changed", name))
        if old_up.keys() != new_up.keys():
            added, removed = set(new_up) - set(old_up), set(old_up) - set(new_up)
            detail = ", ".join([*(f"+{n}" for n in sorted(added)),
                                *(f"-{n}" for n in sorted(removed))])
            reasons.append(Reason("dependencies_changed", detail=detail))
    return reasons or [Reason("definition_changed", detail="fingerprint differs")]


def _made_from(record: Record, state: State) -> bool:
    """Whether the record keeps exactly this state, part by part (stamps and all): its
    fingerprint is then this state's, which need not be hashed (~5 µs a reused task).
    A record whose stamps differ (a touched file) is compared by fingerprint instead."""
    return (record.get("schema") == SCHEMA and record.get("code") == state.code
            and record.get("inputs") == state.inputs and record.get("upstream") == state.upstream
            and record.get("params") == state.params and record.get("sources") == state.sources)


def _code_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], notes: Mapping[str, str]
) -> list[Reason]:
    changed = [key for key, stamp in new.items()
               if key not in old or stamp_digest(old[key]) != stamp_digest(stamp)]
    changed += [key for key in old if key not in new]
    return [
        Reason("version_changed") if key == "version"
        else Reason("code_changed", key, f" ({notes[key]})" if key in notes else "")
        for key in changed
    ]


def _value_changes(
    kind: str, old: Mapping[str, str], new: Mapping[str, str],
    old_text: Mapping[str, str] | None = None, new_text: Mapping[str, str] | None = None,
) -> list[Reason]:
    keys = [k for k in new if old.get(k) != new[k]] + [k for k in old if k not in new]
    if not old_text or not new_text:
        return [Reason(kind, k) for k in keys]
    return [Reason(kind, k, f"{old_text.get(k, '-')} -> {new_text.get(k, '-')}") for k in keys]


def _input_changes(old: Mapping[str, FileStamp], new: Mapping[str, FileStamp]) -> list[Reason]:
    reasons = []
    for path, stamp in new.items():
        if path not in old:
            reasons.append(Reason("input_added", path))
        elif old[path][2] != stamp[2]:
            reasons.append(Reason("input_changed", path))
    reasons += [Reason("input_removed", path) for path in old if path not in new]
    return reasons


def expiry_reasons(record: Record, *, run_id: str | None,
                   now: datetime | None = None) -> list[Reason]:
    """Why a stored result is no longer current whatever its fingerprint ([]: it is).

    `run_id` is the run asking (None: outside any run, when on_complete results have
    ended); `now` an aware datetime, default the clock (`expire.timestamp()`). Runs and
    `Pipeline.get_result` both decide here.
    """
    kind = record.get("expiry", "never")
    ts = expire.timestamp() if now is None else now.timestamp()
    if record.get("created_at", 0.0) > ts + _CLOCK_SKEW:
        return [Reason("clock_moved_back", detail=fmt_time(record["created_at"], zone=True))]
    if kind == "session" and record.get("session") != expire.session_id():
        return [Reason("session_ended")]
    if kind == "on_complete" and record.get("run_id") != run_id:
        return [Reason("run_ended")]
    expires_at = record.get("expires_at")
    if expires_at is not None and ts >= expires_at:
        return [Reason("expired", detail=fmt_time(expires_at, zone=True))]
    return []


def expiry_fields(task: Task, created: float, *, run_id: str, drop_none: bool
                  ) -> dict[str, Any]:
    """The expiry part of a new record, fixed at the moment the result is stored
    (`created`, epoch seconds: a datetime is made only for a policy of kind "time")."""
    policy = task.expire_results
    kind = "on_complete" if drop_none else policy.kind
    when = policy.expires_at(expire.moment(created)) if kind == "time" else None
    return {
        "expiry": kind,
        "expires_at": when.timestamp() if when is not None else None,
        "session": expire.session_id() if kind == "session" else None,
        "run_id": run_id,
    }


def inputs_after_run(state: State, task: Task) -> State:
    """The state to record, with inputs that changed while the task ran marked unknown.

    The fingerprint is taken before the task runs, so the result may come from
    either version of a file changed meanwhile. Keeping the old stamp would let a
    later run reuse that result once the file is changed back; a stamp that
    matches no file makes the next run redo the task.
    """
    changed = changed_since(state.inputs) if state.inputs else None
    if not changed:
        return state
    task.logger.warning(
        "input {} changed while the task ran: its result is stored, but the task runs "
        "again next time", ", ".join(map(repr, changed)),
    )
    inputs = dict(state.inputs)
    for path in changed:
        inputs[path] = FileStamp(-1, -1, CHANGED_WHILE_RUNNING)
    return dataclasses.replace(state, inputs=inputs)


def result_digest(record: Record) -> str | None:
    """The digest a task's result counts by in its dependants' fingerprints: its content
    digest (equal values, equal digests) where one was recorded, else its bytes' digest."""
    return record.get("value_digest") or record.get("digest")
