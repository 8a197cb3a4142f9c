"""A/B: our per-task cost for two (or more) source trees, side by side.

    python bench/ab.py [--reps 7] [--n 1000] [--shape chain] [--form function]
                       [--no-store] NAME=SRC_DIR [NAME=SRC_DIR ...]

Each SRC_DIR is a `src` folder holding `little_pipelines` (a checkout of another
commit: `git worktree add /tmp/base main`, then `/tmp/base/src`). For each
repetition, each tree in turn runs the cold, warm and half-invalidated phases of
`tools._lp` (console at ERROR) in fresh processes in a fresh folder, so the trees
share whatever the machine is doing; the medians are printed in µs per task
(`run`: the run; `build`: building the pipeline, cold).

`--no-store` replaces `Store.put_many` with a no-op and runs the cold phase only: what
is left is the driver's own per-task overhead, without the store's writes and their
noise (useful to measure a change of a few µs on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = "AB-RESULT "


def child(src: str, shape: str, n: int, work: str, form: str, no_store: bool) -> None:
    """In a fresh process: one run of our pipeline from `src`, its timings printed."""
    sys.path[:0] = [src, str(HERE)]
    import little_pipelines as lp

    if not lp.__file__ or not lp.__file__.startswith(src):
        raise SystemExit(f"imported {lp.__file__}, not the tree in {src}")
    if no_store:
        from little_pipelines import store

        store.Store.put_many = lambda self, items: None  # type: ignore[method-assign]
    from tools import _lp

    out = _lp(shape, n, Path(work), level="ERROR", form=form)
    print(MARK + json.dumps({"run": out["run_s"], "build": out["build_s"]}), flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--shape", default="chain")
    ap.add_argument("--form", default="function")
    ap.add_argument("--no-store", action="store_true")
    ap.add_argument("trees", nargs="+", metavar="NAME=SRC_DIR")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        src, work = args.child
        child(src, args.shape, args.n, work, args.form, args.no_store)
        return 0
    trees = dict(t.split("=", 1) for t in args.trees)
    phases = ("cold",) if args.no_store else ("cold", "warm", "invalidate")
    times: dict[str, dict[str, list[float]]] = {
        name: {p: [] for p in (*phases, "build")} for name in trees}
    for _ in range(args.reps):
        for name, src in trees.items():
            work = Path(tempfile.mkdtemp(prefix="ab-"))
            (work / "input.txt").write_text("1")
            try:
                for phase in phases:
                    if phase == "invalidate":
                        time.sleep(0.01)  # a different mtime even on coarse clocks
                        (work / "input.txt").write_text("2")
                    os.sync()
                    cmd = [sys.executable, __file__, "--shape", args.shape, "--n", str(args.n),
                           "--form", args.form, *(["--no-store"] if args.no_store else []),
                           "--child", os.path.abspath(src), str(work), "x"]
                    proc = subprocess.run(cmd, capture_output=True, text=True)
                    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
                    if not lines:
                        print(proc.stderr[-3000:], file=sys.stderr)
                        return 1
                    out = json.loads(lines[-1][len(MARK):])
                    times[name][phase].append(out["run"] / args.n * 1e6)
                    if phase == "cold":
                        times[name]["build"].append(out["build"] / args.n * 1e6)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    for name, by_phase in times.items():
        cells = "  ".join(f"{p} {statistics.median(v):6.1f}" for p, v in by_phase.items())
        spread = " ".join(f"{v:.0f}" for v in by_phase["cold"])
        print(f"{name:>12}: {cells}   (cold runs: {spread})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
