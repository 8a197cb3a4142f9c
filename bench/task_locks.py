"""The per-task cost of the cross-process task locks: take and release, 20,000 names.

    python bench/task_locks.py        # prints µs a task, best of 5

Issue 11 (exact locks): 10.0 µs a task before (24-bit slots, the PID written
into the slot), 5.1 µs after (62-bit offsets, a process-local table by exact
name, the holder asked of the kernel), on the 2-core development machine.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from little_pipelines.locks import TaskLocks


def main() -> None:
    names = [f"task_{i:05d}" for i in range(20_000)]
    best = []
    for _ in range(5):
        locks = TaskLocks(Path(tempfile.mkdtemp()))
        start = time.perf_counter()
        for name in names:
            held = locks.try_acquire(name)
            assert held is not None
            held.release()
        best.append((time.perf_counter() - start) / len(names) * 1e6)
        locks.close()
    print(f"{min(best):.2f} us/task (best of 5, {len(names):,} names)")


if __name__ == "__main__":
    main()
