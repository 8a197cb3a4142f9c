"""Executors: where task code runs. All speak `concurrent.futures.Executor`.

The engine has one loop for all of them; a `Backend` only says how a task
travels to its executor:

* in this process (sequential, threads): the Task object itself;
* our own process pool: just the task's name — the pool's workers are forked
  with the run's task map as their initializer's argument (fork copies it, it
  is never pickled), so each worker already holds every task, even classic
  tasks defined in a script's `__main__`;
* anything else (Dask, a pool the user built): the task pickled by value with
  cloudpickle (shipped with Dask), upstream values as pickled bytes; with Dask,
  large values are scattered to the cluster once per run.

Executors never touch the cache; the driver stores what comes back.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ExecutorError, TaskNotSendable, did_you_mean
from .fingerprint import content_digest
from .valuefiles import ValueFile, preview
from .worker import Call, Outcome, call_task, init_process_worker

if TYPE_CHECKING:
    from .task import Task

#: The tasks a forked pool worker serves, set once in each worker by
#: `_init_forked_worker` (the driver never sets it).
_WORKER_TASKS: Mapping[str, Task] = {}
Tasks = Mapping[str, "Task"]

T = TypeVar("T")
_DASK_HINT = "pip install 'little-pipelines[dask]'"
_SCATTER_BYTES = 1 << 20  # upstream values larger than this go to a Dask cluster once


class SequentialExecutor(Executor):
    """Runs each submitted call at once, in the calling thread (the default)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        fut: Future[T] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except KeyboardInterrupt:  # propagates to the run loop
            raise
        except BaseException as e:  # as a thread pool does: the call's failure, not the run's
            fut.set_exception(e)
        return fut


class Backend:
    """An executor plus how tasks are sent to it; closes what it created itself."""

    remote = True

    def __init__(self, executor: Executor, *, owned: bool, client: Any = None) -> None:
        self.executor = executor
        self.owned = owned
        self.client = client
        self._scattered: dict[str, Any] = {}

    def submit(self, task: Task, inputs: Callable[[], Mapping[str, Any]],
               blobs: Callable[[], Mapping[str, bytes]], call: Call) -> Future[Outcome]:
        """Send one task with its upstream values (asked for only now, lazily)."""
        payload = _pickle_task(task)
        # Another machine may not see our files: large values travel as bytes here.
        sent = {name: blob.read_bytes() if isinstance(blob, ValueFile) else blob
                for name, blob in blobs().items()}
        if self.client is not None:
            for name, blob in sent.items():
                if len(blob) > _SCATTER_BYTES:
                    if name not in self._scattered:
                        self._scattered[name] = self.client.scatter(blob, hash=False)
                    sent[name] = self._scattered[name]
        return self.executor.submit(call_pickled, payload, sent, call)

    def close(self, *, cancel: bool = False) -> None:
        if self.client is not None:
            for fut in self._scattered.values():
                fut.release()
            if self.owned:  # a cluster we started (or connected to) for this run
                cluster = getattr(self.client, "cluster", None)
                self.client.close()
                if cluster is not None:
                    cluster.close()
        elif self.owned:
            if cancel:
                _stop_workers(self.executor)
            self.executor.shutdown(wait=not cancel, cancel_futures=cancel)


class LocalBackend(Backend):
    """Sequential or threads: the task object runs here, with its real pipeline.

    With the sequential executor the run calls `run` instead of `submit`: the task
    runs at once in the run's own thread, and its outcome needs no Future (a Future,
    its condition variable and its callback cost ~4 µs a task).
    """

    remote = False

    def __init__(self, executor: Executor, *, owned: bool) -> None:
        super().__init__(executor, owned=owned)
        self.inline = isinstance(executor, SequentialExecutor)

    def run(self, task: Task, inputs: Mapping[str, Any], call: Call) -> Outcome:
        """Run the task here and now; a failure of the call itself (not the task's own,
        which `call_task` reports) comes back as a failed outcome, as from a Future."""
        try:
            return call_task(task, inputs, call)
        except Exception as e:
            return Outcome.broken(e)

    def submit(self, task: Task, inputs: Callable[[], Mapping[str, Any]],
               blobs: Callable[[], Mapping[str, bytes]], call: Call) -> Future[Outcome]:
        return self.executor.submit(call_task, task, inputs(), call)


class ForkBackend(Backend):
    """Our own process pool, its workers forked holding the run's tasks: names travel."""

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor, owned=True)

    def submit(self, task: Task, inputs: Callable[[], Mapping[str, Any]],
               blobs: Callable[[], Mapping[str, Any]], call: Call) -> Future[Outcome]:
        # A large upstream value goes by its file's name (the worker reads and checks
        # it there), not through the pool's pipe: measured for 512 MB, see
        # docs/benchmarks.md (big values).
        return self.executor.submit(call_forked, task.name, dict(blobs()), call)


def _stop_workers(executor: Executor) -> None:
    """Terminate the processes of a pool we own whose work was abandoned (Ctrl-C, timeout).

    ProcessPoolExecutor has no public way to stop running work; without this, the
    interpreter would wait at exit for every abandoned task to finish. Threads
    cannot be stopped at all: their tasks run to the end in the background.
    """
    processes = getattr(executor, "_processes", None) or {}
    for proc in list(processes.values()):
        proc.terminate()


def resolve(spec: Any, workers: int | None, tasks: Tasks,
            scheduler: str | None = None) -> Backend:
    """Turn `executor=` (a name, an Executor or a Dask Client) into a Backend.

    `tasks` is the run's task map, which our own forked process pool inherits.
    """
    return prepare(spec, workers, tasks, scheduler)()


def prepare(spec: Any, workers: int | None, tasks: Tasks,
            scheduler: str | None = None) -> Callable[[], Backend]:
    """Check `executor=` now; return what makes its Backend when the first task must run.

    A run whose tasks are all reused then starts no pool and no cluster (a local
    Dask cluster took ~3.7 s to start and stop for nothing), while a bad name or
    `workers=` is still refused before anything runs. `tasks` is the run's task
    map, which our own forked process pool inherits.
    """
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ExecutorError(f"workers must be a whole number >= 1, got {workers!r}.")
    if spec is None or isinstance(spec, str):
        name = spec or ("dask" if scheduler else "sequential")
        if name not in _FACTORIES:
            raise ExecutorError(
                f"Unknown executor {name!r}; expected one of {', '.join(map(repr, _FACTORIES))}, "
                f"a concurrent.futures.Executor or a dask.distributed.Client. "
                + did_you_mean(name, _FACTORIES, "executors")
            )
        return lambda: _FACTORIES[name](workers, tasks, scheduler)
    if isinstance(spec, (SequentialExecutor, ThreadPoolExecutor)):
        return lambda: LocalBackend(spec, owned=False)
    if isinstance(spec, Executor):
        return lambda: Backend(spec, owned=False)
    if type(spec).__name__ == "Client" and hasattr(spec, "get_executor"):
        return lambda: Backend(spec.get_executor(pure=False), owned=False, client=spec)
    raise ExecutorError(
        f"executor= takes a name ({', '.join(map(repr, _FACTORIES))}), a "
        f"concurrent.futures.Executor or a dask.distributed.Client, got {spec!r}."
    )


def _sequential(workers: int | None, tasks: Tasks, scheduler: str | None) -> Backend:
    return LocalBackend(SequentialExecutor(), owned=True)


def _threads(workers: int | None, tasks: Tasks, scheduler: str | None) -> Backend:
    return LocalBackend(
        ThreadPoolExecutor(workers or (os.cpu_count() or 2) * 2, thread_name_prefix="lp"),
        owned=True,
    )


def _processes(workers: int | None, tasks: Tasks, scheduler: str | None) -> Backend:
    # Imported here: multiprocessing costs ~5 ms at import, paid only by those who use it.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    n = workers or os.cpu_count() or 2
    if "fork" in multiprocessing.get_all_start_methods():
        # With fork, a worker's initializer arguments are inherited, not pickled.
        pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_init_forked_worker, initargs=(tasks,))
        return ForkBackend(pool)
    # No fork (Windows, macOS by choice): tasks travel pickled by value.
    pool = ProcessPoolExecutor(n, initializer=init_process_worker)
    return Backend(pool, owned=True)


def _dask(workers: int | None, tasks: Tasks, scheduler: str | None) -> Backend:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ExecutorError(
            f"The Dask executor needs Dask's distributed scheduler: {_DASK_HINT}"
        ) from None
    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError) as e:  # nothing listens there (or not in time)
            raise ExecutorError(
                f"Could not reach a Dask scheduler at {scheduler!r} ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else 'no answer'}). Start one with "
                f"`dask scheduler` (and workers with `dask worker {scheduler}`), or leave out "
                f"--scheduler to run on this machine."
            ) from None
        return Backend(client.get_executor(pure=False), owned=True, client=client)
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    return Backend(client.get_executor(pure=False), owned=True, client=client)


#: executor name -> factory(workers, tasks, scheduler)
_FACTORIES: dict[str, Callable[[int | None, Tasks, str | None], Backend]] = {
    "sequential": _sequential,
    "threads": _threads,
    "processes": _processes,
    "dask": _dask,
}


# -- on the worker ---------------------------------------------------------------------


def _init_forked_worker(tasks: Tasks) -> None:
    """Initializer of our forked pool's workers: keep the run's tasks, then set up."""
    global _WORKER_TASKS
    _WORKER_TASKS = tasks
    init_process_worker()


def call_forked(name: str, blobs: Mapping[str, bytes], call: Call) -> Outcome:
    """In a forked worker: find the task among those it inherited and run it."""
    task = _WORKER_TASKS[name]
    return _finish_remote(call_task(task, _unpickle(blobs), _remote(call)))


def call_pickled(payload: bytes, blobs: Mapping[str, bytes], call: Call) -> Outcome:
    """On any worker: unpickle the task and its upstream values, run it."""
    task = pickle.loads(payload)
    return _finish_remote(call_task(task, _unpickle(blobs), _remote(call)))


def _remote(call: Call) -> Call:
    return call.as_remote()


def _unpickle(blobs: Mapping[str, Any]) -> dict[str, Any]:
    from .values import unpickle  # bytes, or a ValueFile the worker reads and checks

    return {name: unpickle(name, blob) for name, blob in blobs.items()}


def _finish_remote(out: Outcome) -> Outcome:
    # Pickle the value here, where it was made: the driver stores these bytes as
    # they are and never unpickles a value it does not need.
    if out.ok:
        out.kind = f"{type(out.value).__module__}.{type(out.value).__qualname__}"
        out.preview = preview(out.value)
        out.content = content_digest(out.value)
        try:
            out.value = pickle.dumps(out.value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            out.ok = False
            out.value = PicklingFailed(type(out.value), e)
    return out


class PicklingFailed:
    """Marks a value that could not be pickled on the worker (the driver reports it)."""

    def __init__(self, kind: type, error: Exception) -> None:
        self.kind = f"{kind.__module__}.{kind.__qualname__}"
        self.error = f"{type(error).__name__}: {error}"


def _pickle_task(task: Task) -> bytes:
    """Pickle a task by value where plain pickle cannot (functions in `__main__`)."""
    try:
        return pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as plain:
        try:
            import cloudpickle
        except ImportError:
            raise TaskNotSendable(task.name, f"{plain}; install cloudpickle "
                                  f"({_DASK_HINT}) to send tasks defined in scripts") from None
        try:
            return bytes(cloudpickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as e:
            raise TaskNotSendable(task.name, f"{type(e).__name__}: {e}") from None
