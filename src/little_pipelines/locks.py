"""Per-task locks across processes, so two runs of one pipeline never run a task twice.

All tasks share one lock file, `<store folder>/tasks.lock`; each task locks its
own 8-byte slot in it with a POSIX record lock (`lockf`), at an offset derived
from its name, and writes its PID into the slot so a waiting run can say whom it
waits for. The kernel releases record locks when their process dies (SIGKILL
included), so a lock left by a killed run is taken over at once; a lock kept in
the cache itself (diskcache.Lock) was rejected for exactly that reason. One file
for all tasks, rather than a file per task, keeps locking to two syscalls a task
(creating a file per task cost ~70 µs here).

Record locks belong to the process: forked workers do not inherit them, and
threads of one run share them, which is why only the driver takes them.
Two names landing on one slot (about one pair in 16 million) only make one run
wait for the other's task. On systems without `fcntl` (Windows) tasks are not
locked across processes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_SLOTS = 1 << 24
_SLOT = 8  # bytes: the holder's PID, as text


class Held:
    """A held task lock; `release()` it when the task's result is stored."""

    def __init__(self, locks: TaskLocks | None, offset: int) -> None:
        self._locks = locks
        self._offset = offset

    def release(self) -> None:
        if self._locks is not None:
            self._locks._unlock(self._offset)
            self._locks = None


class TaskLocks:
    """The task locks of one pipeline's store."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "tasks.lock"
        self._fd: int | None = None

    def try_acquire(self, task: str) -> Held | None:
        """Take the task's lock if it is free; None if another process holds it."""
        if fcntl is None:
            return Held(None, 0)
        offset = _offset(task)
        try:
            fcntl.lockf(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB, _SLOT, offset)
        except OSError:  # EAGAIN / EACCES: held by another process
            return None
        return self._took(offset)

    def wait(self, task: str) -> Held:
        """Block until the task's lock is free, then take it."""
        if fcntl is None:
            return Held(None, 0)
        offset = _offset(task)
        fcntl.lockf(self._file(), fcntl.LOCK_EX, _SLOT, offset)
        return self._took(offset)

    def holder(self, task: str) -> int | None:
        """The PID written by the process holding (or last holding) the task's lock."""
        text = os.pread(self._file(), _SLOT, _offset(task)).strip(b"\0 ")
        return int(text) if text.isdigit() else None

    def close(self) -> None:
        """Close the lock file (which releases every lock this process holds in it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _took(self, offset: int) -> Held:
        os.pwrite(self._file(), str(os.getpid()).encode().rjust(_SLOT), offset)
        return Held(self, offset)

    def _unlock(self, offset: int) -> None:
        if self._fd is not None and fcntl is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, _SLOT, offset)

    def _file(self) -> int:
        if self._fd is None:
            # A sparse file: only the slots in use take space.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd


def _offset(task: str) -> int:
    digest = hashlib.blake2b(task.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") % _SLOTS) * _SLOT
