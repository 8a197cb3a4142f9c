"""Per-task locks across processes, so two runs of one pipeline never run a task twice.

Each task has a lock file in `<store folder>/locks/`, locked with `flock`. The
kernel releases an flock when its process dies, however it dies (SIGKILL
included), so a lock left by a killed run is taken over at once instead of being
waited on forever; a lock held in the cache itself (diskcache.Lock) was rejected
for exactly that reason. The holder writes its PID into the file, so a waiting
run can say whom it waits for.

On systems without `fcntl` (Windows) tasks are not locked across processes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class Held:
    """A held task lock; `release()` it when the task's result is stored."""

    def __init__(self, f: IO[str] | None) -> None:
        self._f = f

    def release(self) -> None:
        if self._f is not None and not self._f.closed:
            if fcntl is not None:
                fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()


class TaskLocks:
    """The lock files of one pipeline's tasks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "locks"

    def try_acquire(self, task: str) -> Held | None:
        """Take the task's lock if it is free; None if another process holds it."""
        if fcntl is None:
            return Held(None)
        f = self._open(task)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return None
        self._write_pid(f)
        return Held(f)

    def wait(self, task: str) -> Held:
        """Block until the task's lock is free, then take it."""
        if fcntl is None:
            return Held(None)
        f = self._open(task)
        fcntl.flock(f, fcntl.LOCK_EX)
        self._write_pid(f)
        return Held(f)

    def holder(self, task: str) -> int | None:
        """The PID written by the process holding (or last holding) the task's lock."""
        try:
            text = self._path(task).read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _path(self, task: str) -> Path:
        # Task names may hold any character: keep a readable part plus a digest.
        readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in task)[:60]
        digest = hashlib.sha256(task.encode()).hexdigest()[:12]
        return self.folder / f"{readable}-{digest}.lock"

    def _open(self, task: str) -> IO[str]:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return open(self._path(task), "a+", encoding="ascii")

    @staticmethod
    def _write_pid(f: IO[str]) -> None:
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
