"""Big values (issue 14, goal 7): store, load, preview and process transfer of one large value.

    python bench/bigvalues.py                 # the section, as run.py runs it (prints JSON)
    python bench/bigvalues.py one KIND OP DIR # one measurement in this fresh process

KIND is `array` (a float64 numpy array) or `frame` (a DataFrame of five float64
columns), of SIZE_MB (400; `--quick`: 64). Every OP runs in a fresh process and
reports its time and the growth of the process's peak resident memory during
the op (the peak is reset before the op; VmHWM after minus VmRSS before: the
value itself, made before the op, is not counted for stores; for loads the
value is what grows). The ops:

* `pickle_dump` / `pickle_load`: the floor, `pickle.dump`/`pickle.load` (protocol 5), a file;
* `diskcache_set` / `diskcache_get`: `Cache.set(key, value)` / `get` (diskcache pickles it);
* `lp_store` / `lp_load`: a one-task pipeline's `execute()` storing the value; `get_result`;
* `lp_show`: `lpipe show` of that task (the preview);
* `lp_processes` / `lp_threads`: a stored value fed to a downstream task that runs on
  `executor="processes"` / `"threads"` (the downstream reads it and returns its sum).

doit has no counterpart: its values go through JSON into its dbm file.
Repetitions are interleaved (every op once per repetition, shuffled); medians.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARK = "BENCH-RESULT "
OPS = ("pickle_dump", "diskcache_set", "lp_store", "pickle_load", "diskcache_get", "lp_load",
       "lp_show", "lp_threads", "lp_processes")
STORES = {"pickle_load": "pickle_dump", "diskcache_get": "diskcache_set", "lp_load": "lp_store",
          "lp_show": "lp_store", "lp_threads": "lp_store", "lp_processes": "lp_store"}


def _status_kb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Restart VmHWM from the current RSS (Linux: "5" to clear_refs), so making the value
    (with its temporaries) does not count as the op's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def make(kind: str, size_mb: int) -> Any:
    import numpy as np

    n = size_mb * 2**20 // 8
    if kind == "array":
        return np.arange(n, dtype=np.float64)
    import pandas as pd

    rows = n // 5
    return pd.DataFrame({c: np.arange(rows, dtype=np.float64) for c in "abcde"})


def _pipeline(folder: Path, value: Any = None) -> Any:
    import little_pipelines as lp

    lp.set_log_level("ERROR")
    p = lp.Pipeline("big", cache_dir=folder / "lp")
    p.task(lambda: value, name="big")

    @p.task
    def total(big: Any) -> float:
        return float(big.sum().sum()) if hasattr(big, "columns") else float(big.sum())

    return p


def one(kind: str, op: str, folder: Path, size_mb: int) -> dict[str, Any]:
    """One op in this process; the value is made (stores) or imports done (loads) first."""
    import diskcache
    import numpy  # noqa: F401  (imported before the clock: not part of any op)
    import pandas  # noqa: F401

    import little_pipelines.cli
    import little_pipelines.pipeline  # noqa: F401  (the facade loads lazily: import it now)

    value = make(kind, size_mb) if op in ("pickle_dump", "diskcache_set", "lp_store") else None
    plain = folder / "plain.pkl"
    _reset_peak()
    before = _status_kb("VmRSS:")
    t = time.perf_counter()
    if op == "pickle_dump":
        with open(plain, "wb") as f:
            pickle.dump(value, f, protocol=5)
    elif op == "pickle_load":
        with open(plain, "rb") as f:
            value = pickle.load(f)
    elif op == "diskcache_set":
        with diskcache.Cache(str(folder / "dc"), eviction_policy="none") as c:
            c.set("big", value)
    elif op == "diskcache_get":
        with diskcache.Cache(str(folder / "dc"), eviction_policy="none") as c:
            value = c.get("big")
    elif op == "lp_store":
        p = _pipeline(folder, value)
        p.execute(["big"])
    elif op == "lp_load":
        value = _pipeline(folder).get_result("big")
    elif op == "lp_show":
        import io

        from little_pipelines.cli import main
        from little_pipelines.render import make_console

        script = folder / "show_big.py"
        script.write_text(f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
                          f"from bigvalues import _pipeline\nfrom pathlib import Path\n"
                          f"pipeline = _pipeline(Path({str(folder)!r}))\n")
        out = make_console(io.StringIO(), width=100, color_system=None)
        if main(["show", str(script), "big"], console=out, err_console=out) != 0:
            raise RuntimeError("lpipe show failed")
    elif op in ("lp_threads", "lp_processes"):
        p = _pipeline(folder)
        r = p.execute(force_tasks=["total"], executor=op[3:])
        if r.failed:
            raise RuntimeError(f"{op} failed: {r['total'].error}")
    seconds = time.perf_counter() - t
    return {"s": seconds, "peak_growth_mb": _status_kb("VmHWM:") - before,
            "loaded": value is not None if op.endswith(("load", "get")) else None}


def run_section(scratch: Path, env: dict[str, str], *, quick: bool,
                log: Any = print) -> dict[str, Any]:
    size_mb = 64 if quick else 400
    reps = 1 if quick else 3
    rng = random.Random(14)
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rep in range(reps):
        for kind in ("array", "frame"):
            folder = scratch / f"big-{kind}-{rep}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            # Stores first (the loads read what they wrote), each group shuffled.
            stores = [op for op in OPS if op not in STORES]
            loads = [op for op in OPS if op in STORES]
            rng.shuffle(stores)
            rng.shuffle(loads)
            for op in stores + loads:
                os.sync()
                proc = subprocess.run(
                    [sys.executable, str(HERE / "bigvalues.py"), "one", kind, op, str(folder),
                     str(size_mb)], env=env, capture_output=True, text=True, timeout=900)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
                if proc.returncode != 0 or not lines:
                    out = {"error": " | ".join(proc.stderr.strip().splitlines()[-3:])}
                else:
                    out = json.loads(lines[-1][len(MARK):])
                samples.setdefault(kind, {}).setdefault(op, []).append(out)
            shutil.rmtree(folder, ignore_errors=True)
        log(f"  big values rep {rep + 1}/{reps} done")
    result: dict[str, Any] = {"size_mb": size_mb, "reps": reps, "kinds": {}}
    for kind, ops in samples.items():
        table = {}
        for op, runs in ops.items():
            good = [r for r in runs if "error" not in r]
            table[op] = ({"s": statistics.median(r["s"] for r in good),
                          "peak_growth_mb": statistics.median(r["peak_growth_mb"] for r in good)}
                         if good else {"error": runs[0]["error"]})
        result["kinds"][kind] = table
    return result


def main(argv: list[str]) -> int:
    if argv and argv[0] == "one":
        kind, op, folder, size_mb = argv[1], argv[2], Path(argv[3]), int(argv[4])
        print(MARK + json.dumps(one(kind, op, folder, size_mb)), flush=True)
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lp-big-") as tmp:
        out = run_section(Path(tmp), dict(os.environ), quick="--quick" in argv)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
