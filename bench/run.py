"""The benchmark harness of issue 3: run every tool on every workload, write the report.

    python bench/run.py            # the full run (`make bench`), about 15 minutes on 2 cores
    python bench/run.py --quick    # a smoke run of a minute or two (numbers not for publishing)
    python bench/run.py --report-only bench/results/<file>.json   # redo docs from saved results

Each measurement is one fresh child process (bench/child.py) per tool, shape,
size and phase, with the tool's own cache folder: cold (empty folder), warm
(same folder, new process), invalidate (the middle task's input file changed,
new process). Repetitions are interleaved: every repetition runs every tool in
a shuffled order before the next repetition starts, so a slow minute of the
machine hurts all tools alike. Medians are taken over the repetitions.

Then the micro-benchmarks (bench/micro.py) and the profile of our cold and warm
runs (bench/profile_lp.py) run, each in fresh processes too, and everything is
written to bench/results/<stamp>.json, docs/benchmarks.md and
docs/benchmark_chart.png (bench/report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from workloads import SHAPES, affected, expected  # noqa: E402

PHASES = ("cold", "warm", "invalidate")
MARK = "BENCH-RESULT "


@dataclass(frozen=True)
class Case:
    """One tool on one graph: the phases to record (cold always runs first)."""

    tool: str
    shape: str
    n: int
    phases: tuple[str, ...]
    reps: int | None = None  # fewer repetitions than the others (quick mode's Prefect)


def plan(quick: bool) -> list[Case]:
    """What runs. Slow peers are left out where one run would take tens of seconds.

    Left out of the full run, and why (also written in the report):
    * Luigi, Hamilton at N=10,000: 20-50 s per run (x 2 shapes x 3 phases x 5);
    * Prefect: N=1,000 cold and warm only, 2 repetitions (about 16 s a process, 5 s of
      it starting its API server); at N=10,000 a run takes minutes;
    * Luigi invalidation: Luigi checks that outputs exist, never their inputs.
    """
    cases: list[Case] = []
    sizes = (100, 1000) if quick else (100, 1000, 10000)
    for n in sizes:
        for shape in SHAPES:
            for tool in ("plain loop", "diskcache floor", "little_pipelines",
                         "little_pipelines (classic form)", "doit", "joblib"):
                cases.append(Case(tool, shape, n, PHASES))
            if n <= 1000:
                cases.append(Case("luigi", shape, n, ("cold", "warm")))
                cases.append(Case("hamilton", shape, n, PHASES))
    cases.append(Case("little_pipelines (INFO console)", "chain", 1000, ("cold", "warm")))
    if quick:
        cases.append(Case("prefect", "chain", 100, ("cold", "warm"), reps=1))
    else:
        for shape in SHAPES:  # 2 repetitions: ~16 s a process (keeps `make bench` < 15 min)
            cases.append(Case("prefect", shape, 1000, ("cold", "warm"), reps=2))
    return cases


def snapshot_source(scratch: Path) -> tuple[Path, str]:
    """Copy src/ so that every child measures the same code, even while src/ is edited.

    Returns the copy's folder (put first on the children's PYTHONPATH, ahead of the
    editable install) and a digest of its files, written into the report.
    """
    import hashlib

    snap = scratch / "src"
    shutil.copytree(ROOT / "src", snap, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    h = hashlib.sha256()
    for path in sorted(snap.rglob("*.py")):
        h.update(str(path.relative_to(snap)).encode() + b"\0" + path.read_bytes())
    return snap, h.hexdigest()[:12]


def child_env(scratch: Path, source: Path | None = None) -> dict[str, str]:
    """The environment of every child: quiet, offline, Prefect pointed at the scratch folder."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source),
                                                          env.get("PYTHONPATH", "")]))
    env.pop("PREFECT_API_URL", None)  # ephemeral server: what a user without one gets
    env.update({
        "PREFECT_HOME": str(scratch / "prefect_home"),
        "PREFECT_LOGGING_LEVEL": "ERROR",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "HAMILTON_TELEMETRY_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def run_child(args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run one child process; its last BENCH-RESULT line plus the whole-process wall time."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, *args], env=env, capture_output=True,
                              text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    out: dict[str, Any] = json.loads(lines[-1][len(MARK):])
    out["wall_s"] = wall
    return out


def run_case(case: Case, scratch: Path, env: dict[str, str], timeout: float) -> list[dict]:
    """Cold, then the recorded phases, each in a new process, in one fresh folder."""
    work = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    (work / "input.txt").write_text("1")
    runs = []
    env = {**env, "PREFECT_LOCAL_STORAGE_PATH": str(work / "prefect_storage")}
    todo = ["cold", *[p for p in case.phases if p != "cold"]]
    for phase in todo:
        if phase == "invalidate":
            time.sleep(0.01)  # a different mtime even on coarse clocks
            (work / "input.txt").write_text("2")
        os.sync()  # the previous run's dirty pages are written back now, not during this one
        out = run_child(["child.py", case.tool, case.shape, str(case.n), str(work), phase],
                        env, timeout)
        out.update(tool=case.tool, shape=case.shape, n=case.n, phase=phase)
        out["check"] = check(out)
        if phase in case.phases:
            runs.append(out)
        if "error" in out:
            break
    shutil.rmtree(work, ignore_errors=True)
    return runs


def check(out: dict[str, Any]) -> str:
    """'ok', or what is wrong: how many tasks ran and the last value, against expectations."""
    if "error" in out:
        return "error"
    n, shape, phase = out["n"], out["shape"], out["phase"]
    want = {"cold": n, "warm": 0, "invalidate": affected(shape, n)}[phase]
    problems = []
    if out["tool"] == "plain loop":
        want = n
    if out.get("executed") != want:
        problems.append(f"ran {out.get('executed')} tasks, expected {want}")
    value = out.get("result")
    if value is not None and value != expected(shape, n, 2 if phase == "invalidate" else 1):
        problems.append(f"wrong result {value}")
    return "; ".join(problems) or "ok"


def main_runs(cases: list[Case], reps: int, scratch: Path, env: dict[str, str],
              timeout: float, log: Any) -> list[dict]:
    results: list[dict] = []
    rng = random.Random(20240601)
    slow: set[tuple[str, str, int]] = set()
    for rep in range(reps):
        order = cases[:]
        rng.shuffle(order)
        # Interleave within each size, smallest first, so a rep's sizes stay together.
        order.sort(key=lambda c: c.n)
        for case in order:
            key = (case.tool, case.shape, case.n)
            if key in slow or (case.reps is not None and rep >= case.reps):
                continue
            t = time.perf_counter()
            runs = run_case(case, scratch, env, timeout)
            for r in runs:
                r["rep"] = rep
            results += runs
            errors = [r for r in runs if "error" in r]
            if errors:
                slow.add(key)  # don't retry a tool that failed or timed out
            log(f"rep {rep + 1}/{reps} {case.tool:<32} {case.shape:<5} N={case.n:<6} "
                f"{time.perf_counter() - t:6.1f}s "
                + ", ".join(f"{r['phase']}={_us(r)}" for r in runs)
                + ("" if not errors else f"  ERROR {errors[0]['error'][:200]}"))
    return results


def _us(r: dict) -> str:
    if "error" in r:
        return "error"
    return f"{(r['build_s'] + r['run_s']) / r['n'] * 1e6:.0f}us" + (
        "" if r["check"] == "ok" else f"[{r['check']}]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, 2 repetitions")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; quick 2)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per child process")
    ap.add_argument("--report-only", type=Path, default=None,
                    help="skip running: rebuild docs/ from this saved results JSON")
    ap.add_argument("--skip", default="",
                    help="comma list of sections to skip: main,micro,profile,big,delay")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs", help="where to write the report")
    ap.add_argument("--tools", default="", help="comma list: run only these tools (main part)")
    ap.add_argument("--sizes", default="", help="comma list: run only these N (main part)")
    args = ap.parse_args(argv)

    import report  # bench/report.py (imports matplotlib only when drawing)

    if args.report_only:
        report.write(json.loads(args.report_only.read_text()), args.docs)
        return 0

    reps = args.reps or (2 if args.quick else 5)
    skip = set(filter(None, args.skip.split(",")))
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.time()
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    def log(msg: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {msg}", flush=True)

    data: dict[str, Any] = {"command": command.strip(), "quick": args.quick, "reps": reps,
                            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                            "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="lp-bench-") as tmp:
        scratch = Path(tmp)
        source, digest = snapshot_source(scratch)
        env = child_env(scratch, source)
        import machine

        data["machine"] = machine.describe(sys.executable)
        data["machine"]["source_digest"] = digest
        data["machine"]["source_taken"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        check_env = subprocess.run(
            [sys.executable, "-c", "import little_pipelines as m; print(m.__file__)"],
            env=env, capture_output=True, text=True).stdout.strip()
        if not check_env.startswith(str(source)):
            raise SystemExit(f"children would not import the snapshot: {check_env!r}")
        log(f"measuring a snapshot of src/ (digest {digest})")
        log(f"machine: {data['machine']['cpu']} / {data['machine']['cores']} cores")
        if "micro" not in skip:
            import micro

            log("micro-benchmarks ...")
            data["micro"] = micro.run_all(scratch, env, quick=args.quick, log=log)
        if "big" not in skip:
            import bigvalues

            log("big values ...")
            data["big"] = bigvalues.run_section(scratch, env, quick=args.quick, log=log)
        if "delay" not in skip:
            import commitdelay

            log("commit delay ...")
            data["delay"] = commitdelay.run_section(scratch, env, quick=args.quick, log=log)
        if "profile" not in skip:
            import profile_lp

            log("profiling little_pipelines ...")
            data["profile"] = profile_lp.run_all(scratch, env, quick=args.quick, log=log)
        if "main" not in skip:
            cases = plan(args.quick)
            if args.tools:
                wanted = {t.strip() for t in args.tools.split(",")}
                cases = [c for c in cases if c.tool in wanted]
            if args.sizes:
                sizes = {int(x) for x in args.sizes.split(",")}
                cases = [c for c in cases if c.n in sizes]
            if any(c.tool == "prefect" for c in cases):
                log("prefect: creating its database once (first ephemeral server start) ...")
                first_dir = scratch / "prefect-first"
                first_dir.mkdir()
                (first_dir / "input.txt").write_text("1")
                first = run_child(["child.py", "prefect", "chain", "1", str(first_dir), "cold"],
                                  {**env, "PREFECT_LOCAL_STORAGE_PATH": str(first_dir / "ps")},
                                  args.timeout)
                data["prefect_first_start"] = first
            log(f"main workloads: {len(cases)} cases x {reps} repetitions")
            data["runs"] = main_runs(cases, reps, scratch, env, args.timeout, log)
    data["duration_s"] = time.time() - started
    data["load_after"] = os.getloadavg()  # 1, 5, 15 minutes: was the machine busy elsewhere?
    path = out_dir / f"{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(data, indent=1))
    log(f"raw results: {path.relative_to(ROOT)}")
    report.write(data, args.docs)
    log(f"wrote {args.docs / 'benchmarks.md'} and {args.docs / 'benchmark_chart.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
