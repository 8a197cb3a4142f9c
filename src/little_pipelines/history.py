"""What a store keeps about runs: one summary row per run, the last run's times, and
which file defined the pipeline that uses the store.

One row per run, under a key with a zero-padded sequence number, with at most
`_NAMES` failed names in it (`failed_count` says how many failed): the cost of a
run does not grow with the history or the pipeline. The list every run used to
rewrite whole (4.4 s and 80 MB with 20,000 failing tasks) is moved into rows
once, by the first run that finds it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .log import lib_logger

if TYPE_CHECKING:
    from .store import Store

# String keys, not tuples (see store.py).
_OLD_LIST = "lp:history"  # the list every run rewrote (stores before one row per run)
_RUN = "lp:run:"  # one row per run: lp:run:<zero-padded sequence number>
_RUN_NEXT = "lp:run-next"  # the next run's sequence number
_LAST_RUN = "lp:last_run"  # the last run's per-task times, for its timeline
_DEFINED_IN = "lp:defined_in"  # the file that defined the pipeline using this store
KEPT = 500  # runs kept
_NAMES = 20  # failed task names kept per run (the count is always exact)


def add(store: Store, entry: dict[str, Any]) -> None:
    """Add a run summary to the history (the last `KEPT` are kept)."""
    cache = store.cache
    row = _bounded(entry)
    with store.errors("write"), cache.transact():
        seq = cache.get(_RUN_NEXT)
        if seq is None:
            seq = 0
            for old in cache.get(_OLD_LIST, [])[-KEPT:]:
                cache.set(_RUN + f"{seq:012d}", _bounded(old))
                seq += 1
            cache.delete(_OLD_LIST)
        cache.set(_RUN + f"{seq:012d}", row)
        cache.set(_RUN_NEXT, seq + 1)
        cache.delete(_RUN + f"{seq - KEPT:012d}")


def runs(store: Store) -> list[dict[str, Any]]:
    """Past run summaries, oldest first."""
    with store.errors("read"):
        old: list[dict[str, Any]] = store.cache.get(_OLD_LIST, [])
        rows = [store.cache.get(key) for key in store.keys_with(_RUN)]
    return [*old, *(r for r in rows if r is not None)][-KEPT:]


def save_last_run(store: Store, entry: dict[str, Any]) -> None:
    """Keep the last run's per-task times (one entry, replaced by each run)."""
    with store.errors("write"):
        store.cache.set(_LAST_RUN, entry)


def last_run(store: Store) -> dict[str, Any] | None:
    """The entry `save_last_run` kept, if any."""
    with store.errors("read"):
        entry: dict[str, Any] | None = store.cache.get(_LAST_RUN)
    return entry


_CLAIMED: set[tuple[str, str]] = set()  # (store folder, pipeline) checked by this process


def claim(store: Store, pipeline: str, defined_in: str) -> None:
    """Record which file defined the pipeline; warn if another file's pipeline owns
    this store (two projects with one pipeline name thrash each other's results).

    Checked once a process per store and pipeline name. The first file keeps the
    store; a recorded file that no longer exists (the project moved or was renamed)
    is replaced without a word.
    """
    if (str(store.directory), pipeline) in _CLAIMED:
        return
    _CLAIMED.add((str(store.directory), pipeline))
    try:
        with store.errors("read"):
            owner = store.cache.get(_DEFINED_IN)
        if owner == defined_in:
            return
        if owner is None or not os.path.exists(owner):
            with store.errors("write"):
                store.cache.set(_DEFINED_IN, defined_in)
            return
    except OSError:  # only a warning is at stake
        return
    lib_logger.warning(
        "Pipeline {!r} defined in {} uses the store in {}, which belongs to the pipeline "
        "defined in {}: two pipelines sharing a store overwrite each other's results. "
        "Give this one its own folder (lp.Pipeline({!r}, cache_dir=...)) or another name.",
        pipeline, defined_in, str(store.directory), owner, pipeline,
    )


def _bounded(entry: dict[str, Any]) -> dict[str, Any]:
    """A run summary with at most `_NAMES` failed names, and how many there were."""
    failed = list(entry.get("failed") or ())
    row = dict(entry, failed=failed[:_NAMES])
    row.setdefault("failed_count", len(failed))
    return row
