"""One runner per tool: build the workload's graph with that tool and run it once.

Each runner is called in a fresh child process (see child.py) as
``runner(shape, n, work, phase)`` and returns a dict with the in-process
timings (``import_s``, ``build_s``, ``setup_s``, ``run_s``), how many tasks ran
(``executed``) and the last task's value (``result``, None if not read back).

``work`` is the run's own folder: it holds ``input.txt`` (read by the middle
task) and the tool's cache, so every tool starts cold in an empty folder and its
warm and invalidation runs find what its cold run stored. ``phase`` is one of
"cold", "warm", "invalidate"; only the diskcache floor looks at it (a floor is
allowed to know what it is measuring).

Every tool is used the way its documentation shows, with its own caching turned
on and its console output turned down, and imports happen inside the runner so
a child imports only the tool it measures.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workloads import CALLS, compute, deps, middle, read_extra

Runner = Callable[[str, int, Path, str], dict[str, Any]]
perf = time.perf_counter


def _input(work: Path) -> str:
    return str(work / "input.txt")


# -- floors ------------------------------------------------------------------------------


def run_plain(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Floor 1: a loop calling the functions in order, nothing cached."""
    t0 = perf()
    m, inp = middle(n), _input(work)
    graph = [deps(shape, n, i) for i in range(n)]
    t1 = perf()
    values: list[int] = []
    for i in range(n):
        extra = read_extra(inp) if i == m else 0
        values.append(compute(i, [values[d] for d in graph[i]], extra))
    t2 = perf()
    return {"import_s": 0.0, "build_s": t1 - t0, "run_s": t2 - t1,
            "executed": CALLS[0], "result": values[-1]}


def run_diskcache(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Floor 2: the same loop with one diskcache `set` per task (cold) or `get` (warm).

    Same Cache settings as our store (eviction_policy="none"). Warm and
    invalidation runs stat the input file once and compare it with the stamp
    stored by the previous run; a task whose input or upstream is dirty is
    recomputed and set, every other task is one `get`.
    """
    t = perf()
    import diskcache

    imp = perf() - t
    t0 = perf()
    m, inp = middle(n), _input(work)
    graph = [deps(shape, n, i) for i in range(n)]
    keys = [f"t{i}" for i in range(n)]
    t1 = perf()
    cache = diskcache.Cache(str(work / "diskcache"), eviction_policy="none", size_limit=2**62)
    values: list[int] = []
    if phase == "cold":
        for i in range(n):
            extra = read_extra(inp) if i == m else 0
            v = compute(i, [values[d] for d in graph[i]], extra)
            cache.set(keys[i], v)
            values.append(v)
        st = os.stat(inp)
        cache.set("stamp", (st.st_size, st.st_mtime_ns))
    else:
        st = os.stat(inp)
        stamp = (st.st_size, st.st_mtime_ns)
        changed = cache.get("stamp") != stamp
        dirty = [False] * n
        for i in range(n):
            up = graph[i]
            dirty[i] = (changed and i == m) or any(dirty[d] for d in up)
            if dirty[i]:
                extra = read_extra(inp) if i == m else 0
                v = compute(i, [values[d] for d in up], extra)
                cache.set(keys[i], v)
            else:
                v = cache.get(keys[i])
            values.append(v)
        if changed:
            cache.set("stamp", stamp)
    cache.close()
    t2 = perf()
    return {"import_s": imp, "build_s": t1 - t0, "run_s": t2 - t1,
            "executed": CALLS[0], "result": values[-1]}


# -- Little Pipelines --------------------------------------------------------------------


def lp_step(this: Any) -> int:
    """Our task, in the function form with `this`: upstream results via get_result."""
    get = this.pipeline.get_result
    up = [get(d) for d in this.dependencies]
    extra = read_extra(this.input_files[0]) if this.input_files else 0
    return compute(int(this.name[1:]), up, extra)


def _lp(shape: str, n: int, work: Path, *, level: str | None, form: str) -> dict[str, Any]:
    t = perf()
    import little_pipelines as lp

    # The facade loads its names on first use (issue 14's import-time work): load the
    # ones used here inside the import's time, or ~90 ms of imports counted as building.
    lp.Pipeline, lp.Task, lp.set_log_level  # noqa: B018
    imp = perf() - t
    if level is not None:
        lp.set_log_level(level)
    t0 = perf()
    m, inp = middle(n), _input(work)
    p = lp.Pipeline("bench", cache_dir=work / "lp")
    for i in range(n):
        names = [f"t{d}" for d in deps(shape, n, i)]
        files = [inp] if i == m else None
        if form == "function":
            p.task(lp_step, name=f"t{i}", dependencies=names, input_files=files)
        else:
            task = lp.Task(f"t{i}", dependencies=names, input_files=files)

            def run(this: Any) -> int:
                return lp_step(this)

            task.process(run)
            p.add(task)
    t1 = perf()
    report = p.execute()
    t2 = perf()
    if report.failed:
        raise RuntimeError(f"little_pipelines failed: {report.failed[:3]}")
    return {"import_s": imp, "build_s": t1 - t0, "run_s": t2 - t1,
            "executed": len(report.executed), "result": p.get_result(f"t{n - 1}")}


def run_lp(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Little Pipelines, function form, console at ERROR (what the other tools print: nothing)."""
    return _lp(shape, n, work, level="ERROR", form="function")


def run_lp_info(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Little Pipelines at its default console level (one INFO line per task to stderr)."""
    return _lp(shape, n, work, level=None, form="function")


def run_lp_classic(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Little Pipelines, classic form: lp.Task + @task.process def run(this)."""
    return _lp(shape, n, work, level="ERROR", form="classic")


# -- doit --------------------------------------------------------------------------------

_DOIT_LAST: dict[str, int] = {}


def _doit_action(i: int, n: int, m: int, inp: str, **upstream: int) -> dict[str, int]:
    v = compute(i, list(upstream.values()), read_extra(inp) if i == m else 0)
    if i == n - 1:
        _DOIT_LAST["v"] = v
    return {"v": v}


def run_doit(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """doit: python-actions passing values with getargs, `result_dep` on each upstream
    task (doit's early cutoff), `file_dep` on the input file; default dbm backend."""
    t = perf()
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain
    from doit.tools import result_dep, run_once

    imp = perf() - t
    t0 = perf()
    m, inp = middle(n), _input(work)

    def task_t() -> Any:
        for i in range(n):
            up = deps(shape, n, i)
            task: dict[str, Any] = {
                "name": str(i),
                "actions": [(_doit_action, [i, n, m, inp])],
                "getargs": {f"u{d}": (f"t:{d}", "v") for d in up},
                "uptodate": [result_dep(f"t:{d}") for d in up] or [run_once],
                "verbosity": 0,
            }
            if i == m:
                task["file_dep"] = [inp]
            yield task

    namespace = {
        "task_t": task_t,
        "DOIT_CONFIG": {
            "dep_file": str(work / "doit.db"),
            "backend": os.environ.get("BENCH_DOIT_BACKEND", "dbm"),
            "reporter": os.environ.get("BENCH_DOIT_REPORTER", "zero"),
            "verbosity": 0,
        },
    }
    main = DoitMain(ModuleTaskLoader(namespace))
    t1 = perf()
    code = main.run(["run"])
    t2 = perf()
    if code != 0:
        raise RuntimeError(f"doit exited with {code}")
    return {"import_s": imp, "build_s": t1 - t0, "run_s": t2 - t1,
            "executed": CALLS[0], "result": _DOIT_LAST.get("v")}


# -- joblib ------------------------------------------------------------------------------


def run_joblib(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """joblib.Memory: one memoised function called per task with the upstream values."""
    t = perf()
    from joblib import Memory

    imp = perf() - t
    t0 = perf()
    m, inp = middle(n), _input(work)
    graph = [deps(shape, n, i) for i in range(n)]
    t1 = perf()
    step = Memory(str(work / "joblib"), verbose=0).cache(compute)
    values: list[int] = []
    for i in range(n):
        extra = read_extra(inp) if i == m else 0  # joblib does not watch files: pass content
        values.append(step(i, tuple(values[d] for d in graph[i]), extra))
    t2 = perf()
    return {"import_s": imp, "build_s": t1 - t0, "run_s": t2 - t1,
            "executed": CALLS[0], "result": values[-1]}


# -- Luigi -------------------------------------------------------------------------------


def run_luigi(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Luigi: one Task class, one LocalTarget file per task, local scheduler, 1 worker.

    Luigi decides by whether the output exists, so it cannot notice a changed
    input file: the invalidation workload does not apply.
    """
    t = perf()
    import logging

    import luigi

    imp = perf() - t
    t0 = perf()
    m, inp, out = middle(n), _input(work), work / "luigi"
    out.mkdir(exist_ok=True)
    done: dict[str, int] = {}

    class Step(luigi.Task):
        i = luigi.IntParameter()

        def requires(self) -> list[Any]:
            return [Step(i=d) for d in deps(shape, n, self.i)]

        def output(self) -> Any:
            return luigi.LocalTarget(str(out / f"t{self.i}"))

        def run(self) -> None:
            up = []
            for target in self.input():
                with target.open("r") as f:
                    up.append(int(f.read()))
            v = compute(self.i, up, read_extra(inp) if self.i == m else 0)
            with self.output().open("w") as f:
                f.write(str(v))
            done["v"] = v

    t1 = perf()
    logging.getLogger("luigi-interface").setLevel(logging.ERROR)
    ok = luigi.build([Step(i=n - 1)], local_scheduler=True, workers=1, log_level="ERROR",
                     detailed_summary=False)
    t2 = perf()
    if not ok:
        raise RuntimeError("luigi.build reported failure")
    result = int((out / f"t{n - 1}").read_text())
    return {"import_s": imp, "build_s": t1 - t0, "run_s": t2 - t1,
            "executed": CALLS[0], "result": result}


# -- Apache Hamilton ---------------------------------------------------------------------


def _hamilton_module(shape: str, n: int, work: Path) -> Path:
    """Write the DAG as a module of n functions (Hamilton reads each function's source)."""
    path = work / f"hamilton_dag_{shape}_{n}.py"
    if path.exists():
        return path
    m = middle(n)
    lines = ['"""Generated DAG for the benchmark."""', "from workloads import compute", ""]
    for i in range(n):
        up = [f"t{d}" for d in deps(shape, n, i)]
        params = [f"{u}: int" for u in up] + (["extra: int"] if i == m else [])
        lines.append(f"def t{i}({', '.join(params)}) -> int:")
        lines.append(f"    return compute({i}, [{', '.join(up)}]{', extra' if i == m else ''})")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def run_hamilton(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Apache Hamilton: a module of n functions, Builder().with_cache(path=...)."""
    t = perf()
    from hamilton import driver

    imp = perf() - t
    path = _hamilton_module(shape, n, work)  # written once per (shape, n), not timed
    # Hamilton walks the graph recursively: a chain of n nodes needs ~3n frames.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5 * n + 1000))
    t0 = perf()
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    dr = driver.Builder().with_modules(module).with_cache(path=str(work / "hamilton")).build()
    t1 = perf()
    out = dr.execute([f"t{n - 1}"], inputs={"extra": read_extra(_input(work))})
    t2 = perf()
    return {"import_s": imp, "build_s": t1 - t0, "run_s": t2 - t1,
            "executed": CALLS[0], "result": int(out[f"t{n - 1}"])}


# -- Prefect -----------------------------------------------------------------------------


def run_prefect(shape: str, n: int, work: Path, phase: str) -> dict[str, Any]:
    """Prefect 3: tasks with cache_policy=INPUTS + TASK_SOURCE and persisted results,
    called from a flow, against the ephemeral local API server (PREFECT_HOME in `work`).

    `setup_s` is starting the ephemeral server (timed with a no-op flow, so it
    stays out of the per-task figure); the whole-process wall time includes it.
    """
    t = perf()
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE

    imp = perf() - t
    t0 = perf()
    m, inp = middle(n), _input(work)
    graph = [deps(shape, n, i) for i in range(n)]
    step = task(compute, cache_policy=INPUTS + TASK_SOURCE, persist_result=True)

    @flow
    def warmup() -> int:
        return 0

    @flow
    def pipeline(extra: int) -> int:
        values: list[int] = []
        for i in range(n):
            values.append(step(i, [values[d] for d in graph[i]], extra if i == m else 0))
        return values[-1]

    t1 = perf()
    warmup()
    t2 = perf()
    result = pipeline(read_extra(inp))
    t3 = perf()
    return {"import_s": imp, "build_s": t1 - t0, "setup_s": t2 - t1, "run_s": t3 - t2,
            "executed": CALLS[0], "result": int(result)}


#: tool name -> runner (names as they appear in the report)
TOOLS: dict[str, Runner] = {
    "plain loop": run_plain,
    "diskcache floor": run_diskcache,
    "little_pipelines": run_lp,
    "little_pipelines (INFO console)": run_lp_info,
    "little_pipelines (classic form)": run_lp_classic,
    "doit": run_doit,
    "joblib": run_joblib,
    "luigi": run_luigi,
    "hamilton": run_hamilton,
    "prefect": run_prefect,
}
