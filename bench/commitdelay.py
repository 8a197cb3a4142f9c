"""Commit delay (issue 14, goal 2): from a task's end to its result being durable, as
another process sees it, while the next task is CPU-bound pure Python.

    python bench/commitdelay.py [--quick]           # the section (prints JSON)
    python bench/commitdelay.py drive TOOL DIR      # the run: task a, then b spinning ~1 s
    python bench/commitdelay.py watch TOOL DIR      # polls DIR's store for a's result

Task `a` returns `time.time()` as its last act; task `b` (depends on `a`) spins the
CPU for SPIN seconds in pure Python (holding the GIL, as the issue's case). A watcher
process polls the tool's store every ~0.5 ms and prints when a's result first shows:
our SQLite row of `a` (table `lp_records`); the diskcache floor's key `a` (one `set`, then the
spin); doit's dbm file (doit saves its state when the run ends). The delay is the
watcher's time minus a's end. Fresh processes, interleaved, medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TOOLS = ("diskcache floor", "little_pipelines", "little_pipelines (classic form)", "doit")
SPIN = 1.0
MARK = "BENCH-RESULT "


def _spin(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


def run(this: Any) -> int:
    """Task b of the classic form (the process must be a function named `run`)."""
    return _spin(SPIN) + int(this.pipeline.get_result("a") > 0)


_classic_b = run


def drive(tool: str, folder: Path) -> float:
    """Run a then b with `tool`; returns a's end time (time.time())."""
    if tool == "diskcache floor":
        import diskcache

        with diskcache.Cache(str(folder / "dc"), eviction_policy="none") as c:
            end = time.time()
            c.set("a", end)
            c.set("b", _spin(SPIN))
        return end
    if tool.startswith("little_pipelines"):
        import little_pipelines as lp

        lp.set_log_level("ERROR")
        p = lp.Pipeline("delay", cache_dir=folder / "lp")
        if tool == "little_pipelines":
            p.task(lambda: time.time(), name="a")
            p.task(lambda a: _spin(SPIN), name="b")
        else:
            a = lp.Task("a")

            @a.process
            def run(this: Any) -> float:
                return time.time()

            b = lp.Task("b", dependencies=["a"])
            b.process(_classic_b)

            p.add(a)
            p.add(b)
        p.execute()
        return float(p.get_result("a"))
    if tool == "doit":
        from doit.cmd_base import ModuleTaskLoader
        from doit.doit_cmd import DoitMain

        ends: list[float] = []

        def task_a() -> Any:
            return {"actions": [lambda: ends.append(time.time()) or {"t": ends[-1]}],
                    "verbosity": 0}

        def task_b() -> Any:
            return {"actions": [lambda: {"n": _spin(SPIN)}], "task_dep": ["a"],
                    "verbosity": 0}

        ns = {"task_a": task_a, "task_b": task_b,
              "DOIT_CONFIG": {"dep_file": str(folder / "doit.db"), "backend": "dbm",
                              "reporter": "zero", "verbosity": 0}}
        if DoitMain(ModuleTaskLoader(ns)).run(["run"]) != 0:
            raise RuntimeError("doit failed")
        return ends[0]
    raise ValueError(tool)


def _seen(tool: str, folder: Path) -> bool:
    if tool == "doit":  # dbm.dumb: a key is durable once its line is in the .dir index
        index = folder / "doit.db.dir"
        try:
            return "'a'" in index.read_text()
        except OSError:
            return False
    db = folder / ("dc" if tool == "diskcache floor" else "lp/cache") / "cache.db"
    if not db.exists():
        return False
    # Ours: the row of `a`, or (a store of the previous version) its record's key.
    queries = (["SELECT 1 FROM Cache WHERE key = 'a'"] if tool == "diskcache floor" else
               ["SELECT 1 FROM lp_records WHERE name = 'a'",
                "SELECT 1 FROM Cache WHERE key = 'lp:record:a'"])
    try:
        con = sqlite3.connect(db, timeout=0.1)
        try:
            for query in queries:
                with contextlib.suppress(sqlite3.OperationalError):  # no such table (yet)
                    if con.execute(query).fetchone() is not None:
                        return True
            return False
        finally:
            con.close()
    except sqlite3.Error:
        return False


def watch(tool: str, folder: Path, timeout: float = 30.0) -> float | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _seen(tool, folder):
            return time.time()
        time.sleep(0.0005)
    return None


def run_section(scratch: Path, env: dict[str, str], *, quick: bool,
                log: Any = print) -> dict[str, Any]:
    reps = 2 if quick else 5
    rng = random.Random(2)
    delays: dict[str, list[float]] = {t: [] for t in TOOLS}
    errors: dict[str, str] = {}
    for _rep in range(reps):
        order = list(TOOLS)
        rng.shuffle(order)
        for tool in order:
            folder = scratch / f"delay-{abs(hash(tool))}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            me = [sys.executable, str(HERE / "commitdelay.py")]
            watcher = subprocess.Popen([*me, "watch", tool, str(folder)], env=env,
                                       stdout=subprocess.PIPE, text=True)
            time.sleep(0.3)  # the watcher is polling before the run starts
            run = subprocess.run([*me, "drive", tool, str(folder)], env=env,
                                 capture_output=True, text=True, timeout=120)
            out, _ = watcher.communicate(timeout=60)
            ended = [ln for ln in run.stdout.splitlines() if ln.startswith(MARK)]
            seen = [ln for ln in out.splitlines() if ln.startswith(MARK)]
            if run.returncode != 0 or not ended or not seen:
                errors[tool] = " | ".join(run.stderr.strip().splitlines()[-2:]) or "not seen"
                continue
            t_end = json.loads(ended[-1][len(MARK):])
            t_seen = json.loads(seen[-1][len(MARK):])
            if t_seen is not None:
                delays[tool].append(t_seen - t_end)
            shutil.rmtree(folder, ignore_errors=True)
    log("  commit delay done")
    return {"spin_s": SPIN, "reps": reps, "errors": errors,
            "median_ms": {t: statistics.median(v) * 1000 for t, v in delays.items() if v},
            "max_ms": {t: max(v) * 1000 for t, v in delays.items() if v}}


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("drive", "watch"):
        fn = drive if argv[0] == "drive" else watch
        print(MARK + json.dumps(fn(argv[1], Path(argv[2]))), flush=True)
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lp-delay-") as tmp:
        out = run_section(Path(tmp), dict(os.environ), quick="--quick" in argv)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
