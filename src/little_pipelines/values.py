"""Upstream values in flight during one run.

A small result a run produced (or loaded) is kept as its pickled bytes only
while tasks that need it are still to run, then dropped; a large one stays in
its value file and is read from there by each task that needs it. Every
consumer unpickles its own copy, so a task that mutates what it was given cannot change what its
siblings see: a cold run and a warm run compute the same results. A value read
from the store is checked against the digest this run's fingerprints used, so a
damaged value file is never handed to a task as if it were the result.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import StoreError
from .store import MISSING
from .valuefiles import ValueFile

if TYPE_CHECKING:
    from .store import Store
    from .task import Task


class RunValues:
    """Pickled results still needed by the run, with how many dependants are left."""

    def __init__(
        self, store: Store, deps: Mapping[str, list[str]], selected: Iterable[str],
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

    def keep(self, name: str, blob: bytes | None) -> None:
        """A task just produced this result: hold its bytes if tasks below still need it.

        A large result (`blob` None) is not held: it is in its value file, which
        each consumer reads (and checks) on its own, one copy at a time.
        """
        if blob is not None and self._left.get(name):
            self._blobs[name] = blob

    def blob(self, name: str) -> Any:
        """The pickled result of a task (this run's, else the stored one), a `ValueFile`
        for a large stored one, or MISSING."""
        blob = self._blobs.get(name)
        if blob is not None:
            return blob
        found = self._found(name, self._store.value_file(name, self._digests.get(name)))
        if isinstance(found, ValueFile):
            return found
        if found is not MISSING and self._left.get(name):
            self._blobs[name] = found  # more dependants to come: read the store once
        return found

    def value(self, name: str) -> Any:
        """A fresh copy of a task's result, or MISSING."""
        blob = self._blobs.get(name)
        if blob is not None:  # bytes (see `keep`): `unpickle` inlined, a call less a task
            try:
                return pickle.loads(blob)
            except (AttributeError, ImportError) as e:
                raise _class_gone(name, e) from None
        try:
            found = self._store.load(name, self._digests.get(name))
        except (AttributeError, ImportError) as e:
            raise _class_gone(name, e) from None
        return self._found(name, found)

    def _found(self, name: str, found: Any) -> Any:
        if found is MISSING and self._digests.get(name) is not None:
            raise StoreError(
                f"The stored result of {name!r} could not be read: its value file was "
                f"damaged or deleted, or another run replaced it meanwhile. Run again: "
                f"{name!r} is computed afresh and this task runs with it."
            )
        return found

    def for_function(self, task: Task) -> dict[str, Any]:
        """Upstream values for a function-form task's parameters, loaded only now."""
        wanted = task.argument_names
        if not wanted:  # fn(this) or a classic task: it asks for what it needs itself
            return {}
        return {dep: self.value(dep) for dep in self._deps[task.name] if dep in wanted}

    def for_worker(self, task: Task) -> dict[str, Any]:
        """Every dependency's pickled value (or its `ValueFile`), for a task that runs
        on another process."""
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


def unpickle(name: str, blob: bytes | ValueFile) -> Any:
    """The result of task `name` from its pickled bytes or its checked value file; a
    value whose class is gone (renamed, moved, removed since it was stored) is a
    StoreError saying how to fix it."""
    try:
        return blob.load() if isinstance(blob, ValueFile) else pickle.loads(blob)
    except (AttributeError, ImportError) as e:
        raise _class_gone(name, e) from None


def _class_gone(name: str, e: Exception) -> StoreError:
    return StoreError(
        f"The stored result of {name!r} could not be loaded: {type(e).__name__}: {e}. "
        f"Its class was probably renamed, moved or removed since it was stored. Forget "
        f"it so that it is computed again: lpipe forget PIPELINE.py {name} (or "
        f"pipeline.clear([{name!r}]))."
    )
