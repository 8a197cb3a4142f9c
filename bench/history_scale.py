"""The run history at scale: one run's add_history at the 500-run cap, 20,000 failed names a run.

    python bench/history_scale.py

Issue 11 (item 19), on the 2-core development machine under load: before, the
whole list was rewritten each run: 7.8 s a run and a 230 MB store at the cap;
after, one bounded row per run: 0.15 ms a run and 4.5 MB for 500 runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from little_pipelines import history
from little_pipelines.store import Store


def main() -> None:
    names = [f"some_task_name_{i:05d}" for i in range(20_000)]
    entry = {"run_id": "x", "started_at": 0.0, "duration": 1.0, "saved": 0.0,
             "counts": {"failed": len(names)}, "failed": names}
    folder = Path(tempfile.mkdtemp())
    store = Store(folder)
    start = time.perf_counter()
    for _ in range(500):
        history.add(store, dict(entry))
    fill = time.perf_counter() - start
    times = []
    for _ in range(20):
        start = time.perf_counter()
        history.add(store, dict(entry))
        times.append(time.perf_counter() - start)
    size = sum(f.stat().st_size for f in (folder / "cache").rglob("*") if f.is_file())
    print(f"500 runs in {fill:.2f}s; at the cap: {statistics.median(times) * 1e3:.2f} ms a run "
          f"(median of 20); store {size / 1e6:.1f} MB; history() {len(history.runs(store))} runs")
    store.close()


if __name__ == "__main__":
    main()
