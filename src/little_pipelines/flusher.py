"""A sequential run's grouped commits, and their bound.

Run inline, one task after another, each result was committed on its own (a
transaction, ~30-40 µs a task) before the next task started. Tasks that do not
depend on each other (the middle of a fan) may share one commit instead: the
recorder keeps a finished result waiting while the next independent task runs,
and commits the group when no task is left that may start before it, when the
group is full or old, or, if the task that followed runs long, here: a
`Flusher`'s thread commits the waiting group at its deadline, whatever the
run's thread is doing.

The bound: a result is committed at most `BOUND` seconds after its task ended,
plus the time this thread waits for the GIL (the interpreter hands it over
within its switch interval, 5 ms, once the thread asks; a pure-Python task that
holds the GIL cannot keep it longer), plus the commit's own statements, each of
which gives the GIL up and waits for it again: while it commits, the flusher
shortens the switch interval (`SWITCH`) and then restores it. Measured by
`bench/commitdelay.py` (a CPU-bound next task).
Results still commit before any task that depends on them starts and before
their lock is released: those wait for the run's own `flush`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

#: Seconds from a waiting result's end to the commit the flusher makes if the
#: run has not committed it by then.
BOUND = 0.01
#: A group stops growing once its first result is this old (seconds)...
WINDOW = 0.005
#: ... or this many results wait.
GROUP = 64
#: The interpreter's switch interval while the flusher commits (seconds; see `_run`).
SWITCH = 0.0002


class Flusher:
    """Calls `commit` from its own thread at a deadline, unless `disarm`ed first."""

    def __init__(self, commit: Callable[[int], None]) -> None:
        self._commit = commit
        self._cond = threading.Condition(threading.Lock())
        self._deadline: float | None = None
        self._group = 0  # which group the deadline is for (see `arm`)
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, deadline: float, group: int) -> None:
        """Commit `group` at `deadline` (time.monotonic()) if it is still waiting then:
        `commit(group)` is called, and must do nothing for a group already committed."""
        with self._cond:
            self._deadline, self._group = deadline, group
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lp-flusher",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread (the run is over; the run itself committed what waited)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                group, self._deadline = self._group, None
                self._cond.release()
                # Each SQLite call gives the GIL up; a task that runs Python holds it
                # till the interpreter's switch interval asks it back (5 ms): the dozen
                # statements of a commit (a connection's first included) took ~30-50 ms
                # so. For those few ms the interval is shortened, then put back.
                switch = sys.getswitchinterval()
                sys.setswitchinterval(min(switch, SWITCH))
                try:
                    self._commit(group)
                finally:
                    sys.setswitchinterval(switch)
                    self._cond.acquire()
