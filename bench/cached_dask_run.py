"""A fully cached run with executor="dask": how long it takes, and whether a cluster starts.

    .venv/bin/python bench/cached_dask_run.py

Before executors started lazily (issue 15): ~3.7-4.1 s here (a LocalCluster
started and stopped for nothing). After: ~1 ms, and dask.distributed is not imported.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

if __name__ == "__main__":
    os.environ.setdefault("LITTLE_PIPELINES_HOME", tempfile.mkdtemp())
    import little_pipelines as lp

    p = lp.Pipeline("cached_dask_bench")

    @p.task
    def one() -> int:
        return 1

    p.execute()  # store the result
    start = time.perf_counter()
    report = p.execute(executor="dask")
    took = time.perf_counter() - start
    print(f"cached run with executor='dask': {took:.3f}s, {report.summary()}")
    print(f"dask.distributed imported: {'distributed' in sys.modules}")
