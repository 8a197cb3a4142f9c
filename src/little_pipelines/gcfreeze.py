"""Keeping the objects that existed before a run out of the collector's full passes.

A 1,000-task run allocates enough to trigger full (generation 2) collections,
each walking every object of the process (modules, the user's data): ~15 µs a
task. Frozen objects are not walked; new objects are collected as usual, and
`unfreeze` hands the old ones back when the last run of the process ends.
Disabling the collector for the run was rejected: a task making cyclic garbage
in a loop would grow without bound.
"""

from __future__ import annotations

import gc
import threading

_frozen = [0]  # runs in this process inside `freeze` (threads, nested runs)
_frozen_lock = threading.Lock()


def freeze() -> None:
    """A run begins: move every object there is now out of the collector's passes."""
    with _frozen_lock:
        _frozen[0] += 1
        gc.freeze()


def unfreeze() -> None:
    """A run ended: the last one of the process hands the frozen objects back."""
    with _frozen_lock:
        _frozen[0] -= 1
        if _frozen[0] == 0:
            gc.unfreeze()
