"""Speed-up of parallel executors: CPU-bound fan-out on processes, sleeping fan-out on threads.

Usage: python bench/parallel_speedup.py [--repeat 5] [--out docs/parallel.md]

Each measurement is a forced run of a fresh pipeline (so every task executes),
repeated and reported as a median; executors are interleaved within each repeat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import little_pipelines as lp

CPU_TASKS = 8
CPU_WORK = 3_000_000  # loop iterations per task: ~0.15-0.3 s of pure Python
SLEEP_TASKS = 16
SLEEP_SECONDS = 0.2


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def cpu_pipeline(folder: str) -> lp.Pipeline:
    p = lp.Pipeline("cpu_fanout", cache_dir=folder)

    @p.task
    def start():
        return CPU_WORK

    for i in range(CPU_TASKS):
        def work(start, i=i):
            return burn(start + i)
        work.__name__ = f"cpu_{i}"
        p.task(work)
    return p


def sleep_pipeline(folder: str) -> lp.Pipeline:
    p = lp.Pipeline("sleep_fanout", cache_dir=folder)

    @p.task
    def start():
        return SLEEP_SECONDS

    for i in range(SLEEP_TASKS):
        def wait(start, i=i):
            time.sleep(start)
            return i
        wait.__name__ = f"sleep_{i}"
        p.task(wait)
    return p


def timed_run(make, executor: str, workers: int | None) -> float:
    with tempfile.TemporaryDirectory() as folder:
        p = make(folder)
        t0 = time.perf_counter()
        report = p.execute(executor=executor, workers=workers, force=True)
        elapsed = time.perf_counter() - t0
        assert report.ok, report.summary()
        p.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    lp.set_log_level("ERROR")
    cases = [
        ("CPU fan-out", cpu_pipeline, "sequential", None),
        ("CPU fan-out", cpu_pipeline, "processes", 2),
        ("sleep fan-out", sleep_pipeline, "sequential", None),
        ("sleep fan-out", sleep_pipeline, "threads", 4),
        ("sleep fan-out", sleep_pipeline, "threads", 8),
        ("sleep fan-out", sleep_pipeline, "threads", 16),
    ]
    times: dict[tuple[str, str, int | None], list[float]] = {}
    for _ in range(args.repeat):
        for label, make, executor, workers in cases:  # interleaved
            times.setdefault((label, executor, workers), []).append(
                timed_run(make, executor, workers))
    base = {label: statistics.median(times[(label, "sequential", None)])
            for label in ("CPU fan-out", "sleep fan-out")}
    lines = [
        "# Parallel speed-up",
        "",
        f"`python bench/parallel_speedup.py --repeat {args.repeat}` on {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}. Medians of {args.repeat} forced runs.",
        "",
        f"CPU fan-out: {CPU_TASKS} tasks of pure-Python arithmetic. Sleep fan-out: "
        f"{SLEEP_TASKS} tasks sleeping {SLEEP_SECONDS} s each.",
        "",
        "| workload | executor | workers | median s | speed-up |",
        "|---|---|---:|---:|---:|",
    ]
    for label, _make, executor, workers in cases:
        med = statistics.median(times[(label, executor, workers)])
        lines.append(f"| {label} | {executor} | {workers or 1} | {med:.3f} | "
                     f"{base[label] / med:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
