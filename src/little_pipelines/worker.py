"""What runs on a worker: one task's code, with retries, a timeout and captured logs.

The engine submits `call_task` to an executor. In this process (sequential,
threads) the task runs with its real pipeline and logger. Elsewhere (processes,
Dask) the task arrives without its pipeline: it gets a stand-in that serves the
upstream values the driver sent, and its log records are captured and sent back
with the value, so the driver writes the per-task log file and PERF timings
whichever executor ran the task. Workers never touch the cache.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from .log import captured, forget_driver_sinks

if TYPE_CHECKING:
    from .task import Task


class TaskTimeout(BaseException):
    """Raised inside a task whose attempt ran past its `timeout=`.

    A BaseException, like KeyboardInterrupt, so that a task's own `except
    Exception:` cannot swallow it and return a fallback that would be stored as
    its result. A task that swallows even this is caught by the clock: an
    attempt that returns after its timeout counts as timed out all the same.
    """


@dataclass
class Attempt:
    """One try of a task: how long it took and, if it failed, the traceback text."""

    duration: float
    error: str | None = None


@dataclass
class Outcome:
    """What a worker sends back to the driver."""

    ok: bool
    value: Any = None
    attempts: list[Attempt] = field(default_factory=list)
    #: captured log records when the task ran away from the driver:
    #: (epoch time, level name, message)
    logs: list[tuple[float, str, str]] = field(default_factory=list)
    #: the value's type name, sent with its pickled bytes from a remote worker
    kind: str = ""
    #: a short text preview of the value, made where the value is (valuefiles.preview)
    preview: str = ""
    #: its canonical content digest (early cutoff), taken where the value is
    content: str | None = None

    @classmethod
    def broken(cls, e: BaseException) -> Outcome:
        """The outcome of a call the executor itself failed (a worker died, a lost connection)."""
        return cls(False, attempts=[Attempt(0.0, f"{type(e).__name__}: {e}\n")])

    @property
    def duration(self) -> float:
        attempts = self.attempts
        if len(attempts) == 1:  # most outcomes: no generator to sum one number
            return attempts[0].duration
        return sum(a.duration for a in attempts)

    @property
    def error(self) -> str:
        return self.attempts[-1].error or "" if self.attempts else ""


@dataclass(frozen=True)
class Call:
    """How to run one task: its retry and timeout settings, where it runs, and the
    params fixed for the run (they travel with the call, not on the task)."""

    retries: int = 0
    delays: Sequence[float] = ()
    timeout: float | None = None
    remote: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)


def call_task(task: Task, inputs: Mapping[str, Any], call: Call) -> Outcome:
    """Run the task's code, retrying as asked; never raises for the task's own errors."""
    if call.remote:
        return _call_remote(task, inputs, call)
    if call.retries == 0 and call.timeout is None:
        return _once(task, inputs, call)
    return _attempts(task, inputs, call)


def _once(task: Task, inputs: Mapping[str, Any], call: Call) -> Outcome:
    """`_attempts` for one attempt without a time limit (most tasks): the same outcomes,
    exceptions caught the same way, without the retry loop and the timer (~2 µs a task)."""
    start = time.perf_counter()
    try:
        value = task.invoke(inputs, call.params)
    except KeyboardInterrupt:
        raise
    except TaskTimeout:  # raised by the task itself (it has no timeout=): as `_attempts`
        return Outcome(False, attempts=[Attempt(time.perf_counter() - start, _timed_out(call))])
    except BaseException:  # see `_attempts`
        return Outcome(False, attempts=[Attempt(time.perf_counter() - start,
                                                traceback.format_exc())])
    return Outcome(True, value, [Attempt(time.perf_counter() - start)])


def _attempts(task: Task, inputs: Mapping[str, Any], call: Call) -> Outcome:
    out = Outcome(ok=False)
    for attempt in range(call.retries + 1):
        if attempt:
            delay = call.delays[min(attempt - 1, len(call.delays) - 1)] if call.delays else 0.0
            task.logger.warning(
                "attempt {} of {} failed; retrying in {}s", attempt, call.retries + 1, delay
            )
            if delay > 0:
                time.sleep(delay)
        start = time.perf_counter()
        try:
            with _time_limit(call.timeout):
                value = task.invoke(inputs, call.params)
        except KeyboardInterrupt:
            raise  # the user's Ctrl-C stops the run; everything else is this task's failure
        except TaskTimeout:
            out.attempts.append(Attempt(time.perf_counter() - start, _timed_out(call)))
            continue
        except BaseException:  # sys.exit(), asyncio.CancelledError, ... fail this task only
            out.attempts.append(Attempt(time.perf_counter() - start, traceback.format_exc()))
            continue
        took = time.perf_counter() - start
        if call.timeout is not None and took >= call.timeout:
            # The task swallowed its timeout (or could not be interrupted here): what
            # it returned is a fallback, not its result, and must not be stored.
            out.attempts.append(Attempt(took, _timed_out(call)))
            continue
        out.attempts.append(Attempt(took))
        out.ok, out.value = True, value
        break
    return out


def _timed_out(call: Call) -> str:
    return f"TaskTimeout: gave up after {call.timeout}s (timeout=)\n"


class _time_limit:
    """Raise TaskTimeout in the task after `seconds`, where that is possible.

    Only the main thread of a process can be interrupted (by SIGALRM): that
    covers sequential runs and process pools. A task in a thread (threads,
    Dask) cannot be stopped safely; the driver then stops waiting for it instead.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.armed = False

    def __enter__(self) -> None:
        if (self.seconds is None or not hasattr(signal, "setitimer")
                or threading.current_thread() is not threading.main_thread()):
            return
        self.previous = signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self.armed = True

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def _raise_timeout(signum: int, frame: object) -> None:
    raise TaskTimeout()


# -- away from the driver ---------------------------------------------------------------

class WorkerPipeline:
    """Stands in for the pipeline on a worker: serves the upstream values sent along.

    It satisfies `task.Host`, what a task may ask of its pipeline.
    """

    def __init__(self, name: str, values: Mapping[str, Any], task: str,
                 params: Mapping[str, Any]) -> None:
        self.name = name
        self._values = dict(values)
        self._task = task
        self.params = dict(params)
        self.code = "module"  # unused on a worker: fingerprints are taken by the driver
        self.log_dir = None

    def tasks_by_name(self) -> Mapping[str, Task]:
        return {}  # a worker holds one task, not the pipeline

    def definition_changed(self) -> None:
        """Nothing to forget: a worker holds no execution order."""

    def get_result(self, name: Any, default: Any = None) -> Any:
        key = getattr(name, "name", name)
        if key in self._values:
            return self._values[key]
        raise KeyError(
            f"Task {self._task!r} asked for the result of {key!r}, which is not one of its "
            f"dependencies; on a worker only dependencies' results are sent. Add {key!r} "
            f"to its dependencies=."
        )


def _call_remote(task: Task, inputs: Mapping[str, Any], call: Call) -> Outcome:
    name = getattr(task.pipeline, "name", None) or task.__dict__.get("_pipeline_name") or ""
    task.attach(WorkerPipeline(name, inputs, task.name, call.params))
    with captured() as records:
        out = _attempts(task, inputs, call)
    out.logs = records
    return out


def init_process_worker() -> None:
    """Initializer of our own process pools: the driver alone writes logs and files.

    A forked worker inherits the driver's loguru handlers; writing from both
    would print lines twice and interleave the task files.
    """
    logger.remove()
    forget_driver_sinks()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _die_with_parent()


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the driver dies (even by SIGKILL).

    Without it, a killed driver's pool workers would run on, orphaned, forever.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the driver died before prctl took effect
        os._exit(1)
