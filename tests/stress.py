"""`make stress`: the kill and concurrency scenarios in a loop, with random moments.

    python tests/stress.py [--seconds 180] [--seed N]

Each round picks a scenario from tests/crashes.py at random: a pipeline process
SIGKILLed at a random moment (inside a task, between tasks, inside the store's
write, or from outside after a random delay while a task runs or a 50 MB value
is written), with an empty store, among stale results, or while valid results
are being replaced, on a random executor; or two processes running the pipeline
at once, the first sometimes killed while the second waits for its lock. After
every round the store must open cleanly, the resumed run must reuse exactly the
tasks that had finished, and every result must equal a clean run's.

Prints the counts (runs, kills, resumes, tasks reused, mismatches) and exits 1
if anything did not hold. Not collected by pytest (the name is not test_*.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import crashes

BIG = 50 * 2**20
SMALL = 2**20


def kill_round(
    rng: random.Random, root: Path, clean: Path
) -> tuple[crashes.Scene, dict[str, Any]]:
    task = rng.choice(crashes.TASKS)
    moment: dict[str, Any] = rng.choice([
        {"hook": f"task:{task}"},
        {"hook": f"stored:{task}"},
        {"hook": "value:big"},
        {"hook": "record:big"},
        {"kill_at_marker": f"{task}.running", "delay": rng.uniform(0, 0.02)},
        {"kill_at_marker": "slow.running", "delay": rng.uniform(0, 0.05)},
        {"kill_at_marker": "big.storing", "delay": rng.uniform(0, 0.06)},
    ])
    writes_big = moment.get("hook", "").endswith(":big") or "big.storing" in str(moment)
    executor = rng.choice(["sequential", "sequential", "threads", "processes"])
    if moment.get("hook", "").startswith("task:") and executor == "processes":
        executor = "sequential"  # the hook would kill a worker, not the pipeline process
    scene = crashes.Scene(root, big=BIG if writes_big else SMALL, executor=executor)
    prior = rng.choice(["", "changed", "forced"])
    return scene, {**moment, "prior": prior}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    counts = {"runs": 0, "kills": 0, "resumes": 0, "tasks reused": 0, "mismatches": 0}
    rounds = 0
    base = Path(tempfile.mkdtemp(prefix="lp-stress-"))
    clean = base / "clean"
    print(f"stress: {args.seconds:.0f} s, seed {seed}, in {base}", flush=True)
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            rounds += 1
            root = base / f"round-{rounds}"
            if rng.random() < 0.7:
                scene, how = kill_round(rng, root, clean)
                try:
                    report = crashes.kill_and_resume(scene, clean, **how)
                finally:
                    scene.close()
                counts["kills"] += report.killed
                counts["resumes"] += 1
                counts["tasks reused"] += len(report.reused)
                problems = report.problems
                label = f"kill {how} on {scene.executor}"
            else:
                kill_holder = rng.random() < 0.4
                scene = crashes.Scene(root, big=SMALL)
                try:
                    conc = crashes.two_at_once(scene, clean, kill_holder=kill_holder)
                finally:
                    scene.close()
                counts["kills"] += kill_holder
                counts["resumes"] += kill_holder
                counts["tasks reused"] += len(conc.reused)
                problems = conc.problems
                label = f"two at once (kill holder: {kill_holder})"
            counts["runs"] += scene.runs
            counts["mismatches"] += len(problems)
            for problem in problems:
                print(f"MISMATCH in round {rounds}, {label}: {problem}", flush=True)
            shutil.rmtree(root, ignore_errors=True)  # 50 MB values add up
    finally:
        shutil.rmtree(base, ignore_errors=True)
    summary = ", ".join(f"{name}: {n}" for name, n in counts.items())
    print(f"stress: {rounds} rounds; {summary}")
    return 1 if counts["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
