"""Executors: where task code runs. All speak `concurrent.futures.Executor`.

The engine submits `call_task(task, inputs)` and stores what comes back; an
executor never touches the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")


class SequentialExecutor(Executor):
    """Runs each submitted call at once, in the calling thread (the default)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        fut: Future[T] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # a KeyboardInterrupt must still reach the caller
            if not isinstance(e, Exception):
                raise
            fut.set_exception(e)
        return fut
