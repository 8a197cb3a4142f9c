"""Upstream values in flight during one run.

A result a run produced (or loaded) is kept as its pickled bytes only while
tasks that need it are still to run, then dropped. Every consumer unpickles its
own copy, so a task that mutates what it was given cannot change what its
siblings see: a cold run and a warm run compute the same results. A value read
from the store is checked against the digest this run's fingerprints used, so a
damaged value file is never handed to a task as if it were the result.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import StoreError
from .store import MISSING

if TYPE_CHECKING:
    from .store import Store
    from .task import Task


class RunValues:
    """Pickled results still needed by the run, with how many dependants are left."""

    def __init__(
        self, store: Store, deps: Mapping[str, list[str]], selected: list[str],
        digests: Mapping[str, str | None],
    ) -> None:
        self._store = store
        self._deps = deps
        self._digests = digests  # the run's result digests, filled in as it goes
        self._blobs: dict[str, bytes] = {}
        self._left: dict[str, int] = {}
        for name in selected:
            for dep in deps[name]:
                self._left[dep] = self._left.get(dep, 0) + 1

    def keep(self, name: str, blob: bytes) -> None:
        """A task just produced this result: hold it if tasks below still need it."""
        if self._left.get(name):
            self._blobs[name] = blob

    def blob(self, name: str) -> Any:
        """The pickled result of a task (this run's, else the stored one), or MISSING."""
        blob = self._blobs.get(name)
        if blob is not None:
            return blob
        expected = self._digests.get(name)
        blob = self._store.load_blob(name, expected)
        if blob is MISSING and expected is not None:
            raise StoreError(
                f"The stored result of {name!r} could not be read: its value file was "
                f"damaged or deleted, or another run replaced it meanwhile. Run again: "
                f"{name!r} is computed afresh and this task runs with it."
            )
        if blob is not MISSING and self._left.get(name):
            self._blobs[name] = blob  # more dependants to come: read the store once
        return blob

    def value(self, name: str) -> Any:
        """A fresh copy of a task's result, or MISSING."""
        blob = self.blob(name)
        return MISSING if blob is MISSING else unpickle(name, blob)

    def for_function(self, task: Task) -> dict[str, Any]:
        """Upstream values for a function-form task's parameters, loaded only now."""
        return {dep: self.value(dep) for dep in self._deps[task.name] if dep in task._params}

    def for_worker(self, task: Task) -> dict[str, bytes]:
        """Every dependency's pickled value, for a task that runs on another process."""
        out = {}
        for dep in self._deps[task.name]:
            blob = self.blob(dep)
            if blob is not MISSING:
                out[dep] = blob
        return out

    def settled(self, name: str) -> None:
        """A task is settled: drop the values of dependencies no one else needs."""
        for dep in self._deps[name]:
            left = self._left.get(dep, 0) - 1
            self._left[dep] = left
            if left <= 0:
                self._blobs.pop(dep, None)

    def clear(self) -> None:
        self._blobs.clear()


def unpickle(name: str, blob: bytes) -> Any:
    """The result of task `name` from its pickled bytes; a value whose class is gone
    (renamed, moved, removed since it was stored) is a StoreError saying how to fix it."""
    try:
        return pickle.loads(blob)
    except (AttributeError, ImportError) as e:
        raise StoreError(
            f"The stored result of {name!r} could not be loaded: {type(e).__name__}: {e}. "
            f"Its class was probably renamed, moved or removed since it was stored. Forget "
            f"it so that it is computed again: lpipe forget PIPELINE.py {name} (or "
            f"pipeline.clear([{name!r}]))."
        ) from None
