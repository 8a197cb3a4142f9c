"""Where our time goes: py-spy and cProfile over cold and warm runs of the N=1,000 chain.

    python bench/profile_lp.py target PHASE N REPS ROOT   # the profiled workload itself

`run_all` (called by run.py) primes a warm store, then for each phase:

* samples the workload with py-spy (``--idle``, so time blocked in I/O counts
  too) and attributes every sample to (a) the function on top of the stack
  ("self"), (b) every function on the stack ("inclusive"), and (c) the
  innermost frame of our package, which names the *room* (store.py, log.py,
  engine.py, ...) responsible for the time, including the libraries it calls;
* runs it under cProfile for call counts (cProfile's own overhead inflates
  small calls, so its times are read as relative).

Times are given in µs per task: samples / rate / (N x REPS).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARK = "BENCH-RESULT "
RATE = 1000  # py-spy samples per second
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def target(phase: str, n: int, reps: int, root: Path) -> None:
    """The profiled workload: `reps` runs of our chain, cold in fresh folders or warm."""
    sys.path.insert(0, str(HERE))
    from tools import run_lp

    for r in range(reps):
        work = root / (f"cold{r}" if phase == "cold" else "warm")
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "input.txt").exists():
            (work / "input.txt").write_text("1")
        out = run_lp("chain", n, work, phase)
        want = 0 if phase == "warm" else n
        if out["executed"] != want:
            raise SystemExit(f"profile target: {out['executed']} tasks ran, expected {want}")
    (root / f"done-{phase}").write_text("ok")  # py-spy does not pass on the exit code


def _finished(root: Path, phase: str) -> bool:
    """Whether the target ran all its repetitions (and reset the mark for the next one)."""
    mark = root / f"done-{phase}"
    ok = mark.exists()
    mark.unlink(missing_ok=True)
    return ok


def _frame(text: str) -> tuple[str, str]:
    m = _FRAME.match(text.strip())
    if not m:
        return text.strip(), ""
    return m["func"], m["file"]


def _short(file: str) -> str:
    for marker in ("little_pipelines/", "site-packages/", "lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1] if marker != "little_pipelines/" else (
                "little_pipelines/" + file.split(marker, 1)[1])
    return os.path.basename(file)


def parse_pyspy(raw: str, per_task: float) -> dict[str, Any]:
    """Self, inclusive and by-room µs/task from py-spy's raw (collapsed) output."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    room_c: Counter[str] = Counter()
    phase_c: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        if not any(f == "_lp" and file.endswith("tools.py") for f, file in frames):
            continue  # outside the measured build + execute (start-up, imports of tools)
        if any(f == "_find_and_load" for f, _ in frames):
            continue  # importing the package (measured separately)
        count = int(count_s)
        total += count
        top_f, top_file = frames[-1]
        self_c[f"{top_f} ({_short(top_file)})"] += count
        for key in {f"{f} ({_short(file)})" for f, file in frames}:
            incl_c[key] += count
        rooms = [file for _, file in frames if "little_pipelines/" in file]
        if rooms:
            room = "little_pipelines/" + rooms[-1].split("little_pipelines/", 1)[1]
        elif any(f == "lp_step" for f, _ in frames):
            room = "the task's own code (bench lp_step)"
        else:
            room = "bench harness"
        room_c[room] += count
        in_exec = any(f.split(".")[-1] == "execute" and file.endswith("pipeline.py")
                      for f, file in frames)
        phase_c["execute()" if in_exec else "building the pipeline"] += count

    def table(c: Counter[str], k: int) -> list[dict[str, Any]]:
        return [{"name": name, "us_per_task": cnt * per_task, "share": cnt / total}
                for name, cnt in c.most_common(k)]

    ours = Counter({k: v for k, v in incl_c.items() if "little_pipelines/" in k})
    return {
        "samples": total,
        "us_per_task_total": total * per_task,
        "self_top": table(self_c, 25),
        "inclusive_ours": table(ours, 30),
        "inclusive_all": table(incl_c, 60),
        "by_room": table(room_c, 20),
        "by_part": table(phase_c, 5),
    }


def parse_cprofile(path: Path, tasks: int) -> list[dict[str, Any]]:
    stats = pstats.Stats(str(path))
    rows = []
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in table.items():
        rows.append({"name": f"{func} ({_short(file)}:{line})", "calls_per_task": ncalls / tasks,
                     "tottime_us_per_task": tottime / tasks * 1e6,
                     "cumtime_us_per_task": cumtime / tasks * 1e6})
    rows.sort(key=lambda r: r["tottime_us_per_task"], reverse=True)
    return rows[:30]


def run_all(scratch: Path, env: dict[str, str], *, quick: bool, log: Any) -> dict[str, Any]:
    n = 1000
    reps_of = {"cold": 2, "warm": 4} if quick else {"cold": 5, "warm": 10}
    root = scratch / "profile"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    py = sys.executable
    me = str(HERE / "profile_lp.py")
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    out: dict[str, Any] = {"n": n, "reps": reps_of, "rate_hz": RATE, "shape": "chain"}
    # Prime the warm store once, in place (paths are part of the fingerprint), not profiled.
    subprocess.run([py, me, "target", "prime", str(n), "1", str(root)], env=env,
                   check=True, capture_output=True)
    pyspy = Path(py).with_name("py-spy")
    for phase in ("cold", "warm"):
        reps = reps_of[phase]
        args = [py, me, "target", phase, str(n), str(reps), str(root)]
        per_task = 1e6 / RATE / (n * reps)
        # 1. py-spy
        raw_path = results_dir / f"pyspy-{phase}.txt"
        t = time.perf_counter()
        if pyspy.exists():
            proc = subprocess.run([str(pyspy), "record", "--idle", "-r", str(RATE), "-f", "raw",
                                   "-o", str(raw_path), "--", *args], env=env,
                                  capture_output=True, text=True)
            if _finished(root, phase) and raw_path.exists():
                out[f"pyspy_{phase}"] = parse_pyspy(raw_path.read_text(), per_task)
            else:
                out[f"pyspy_{phase}"] = {"error": (proc.stderr or proc.stdout)[-400:]}
        else:
            out[f"pyspy_{phase}"] = {"error": "py-spy is not installed in the bench venv"}
        _clean_cold(root, reps)
        # 2. cProfile
        prof = results_dir / f"cprofile-{phase}.prof"
        proc = subprocess.run([py, me, "cprofile", str(prof), *args[3:]], env=env,
                              capture_output=True, text=True)
        if _finished(root, phase) and prof.exists():
            out[f"cprofile_{phase}"] = parse_cprofile(prof, n * reps)
        else:
            out[f"cprofile_{phase}"] = [{"error": proc.stderr[-400:]}]
        _clean_cold(root, reps)
        log(f"  profile {phase}: {time.perf_counter() - t:.1f}s")
    return out


def _clean_cold(root: Path, reps: int) -> None:
    for r in range(reps):
        shutil.rmtree(root / f"cold{r}", ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[0] == "target":
        target(argv[1], int(argv[2]), int(argv[3]), Path(argv[4]))
        return 0
    if argv[0] == "cprofile":
        prof = argv[1]
        profiler = cProfile.Profile()
        profiler.enable()
        target(argv[2], int(argv[3]), int(argv[4]), Path(argv[5]))
        profiler.disable()
        profiler.dump_stats(prof)
        return 0
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
