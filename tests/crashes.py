"""Kill and concurrency scenarios over real child processes, shared by tests and `make stress`.

Each scenario starts `crash_pipeline.py` in child processes, kills them with
real SIGKILLs or runs two at once, then checks what must hold, returning the
problems it found as sentences (an empty list means all held):

* the store opens cleanly afterwards (nothing moved aside as damaged);
* the next run reuses every task that had finished and reruns the rest;
* every result equals what a clean run computes;
* two processes never both run a task, and the second says whom it waits for.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHILD = Path(__file__).with_name("crash_pipeline.py")
TASKS = ["source", "words", "big", "slow", "stats", "checksum", "report"]
DATA = {
    1: "the quick brown fox jumps over the lazy dog and the cat\n",
    2: "a stitch in time saves nine but a fox in time saves ten\n",
}
_CLEAN: dict[tuple[int, int], dict[str, str]] = {}


@dataclass
class Child:
    """One run of the child pipeline."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def result(self) -> dict[str, Any]:
        lines = self.out.read_text().strip().splitlines()
        if not lines:
            raise AssertionError(f"child printed nothing; stderr:\n{self.stderr}")
        parsed: dict[str, Any] = json.loads(lines[-1])
        return parsed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


@dataclass
class Scene:
    """A store, a work folder and the children run over them."""

    root: Path
    big: int = 50 * 2**20
    executor: str = "sequential"
    runs: int = 0
    children: list[Child] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = self.root / "store"
        self.work = self.root / "work"
        self.work.mkdir(parents=True, exist_ok=True)

    def data(self, version: int) -> None:
        """Write version 1 or 2 of the input (with a new mtime, so the change is seen)."""
        path = self.work / "data.txt"
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(DATA[version])
        later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
        os.utime(path, ns=(later, later))

    def start(self, **env: str) -> Child:
        self.runs += 1
        out = self.root / f"run-{self.runs}.out"
        err = self.root / f"run-{self.runs}.err"
        full = {**os.environ, "LP_STORE": str(self.store), "LP_WORK": str(self.work),
                "LP_BIG": str(self.big), "LP_EXECUTOR": self.executor, **env}
        with open(out, "wb") as o, open(err, "wb") as e:
            # A session of its own, so the workers a killed run leaves behind can be
            # found (its process group) and reaped once the test is done with them.
            proc = subprocess.Popen([sys.executable, str(CHILD)], stdout=o, stderr=e, env=full,
                                    start_new_session=True)
        child = Child(proc, out, err)
        self.children.append(child)
        return child

    def run(self, **env: str) -> Child:
        child = self.start(**env)
        child.wait()
        return child

    def marker(self, name: str) -> Path:
        return self.work / name

    def wait_for(self, test: Any, timeout: float = 30, child: Child | None = None) -> bool:
        """Poll `test()` until true; False on timeout or when `child` exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if test():
                return True
            if child is not None and child.proc.poll() is not None:
                return bool(test())
            time.sleep(0.005)
        return False

    def stored(self) -> dict[str, float]:
        """Tasks with a stored record -> when it was stored; fails if the store is damaged."""
        from little_pipelines.store import Store

        store = Store(self.store)
        try:
            if store.damaged is not None:
                raise AssertionError(f"the store was found damaged: {store.damaged}")
            return {name: (store.record(name) or {}).get("created_at", 0.0)
                    for name in store.names()}
        finally:
            store.close()

    def log(self) -> list[tuple[int, str]]:
        path = self.work / "tasks.log"
        if not path.exists():
            return []
        return [(int(pid), name) for pid, name in
                (line.split() for line in path.read_text().splitlines())]

    def clear_markers(self) -> None:
        for path in self.work.iterdir():
            if path.name != "data.txt":
                path.unlink()

    def reap(self) -> None:
        """Kill every child and what it left behind (workers of a killed `processes` run)."""
        for child in self.children:
            child.kill()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)

    close = reap


def clean_results(root: Path, version: int, big: int) -> dict[str, str]:
    """What a clean, uninterrupted run computes (memoised per input version and size)."""
    key = (version, big)
    if key not in _CLEAN:
        scene = Scene(root / f"clean-{version}-{big}", big=big)
        scene.data(version)
        child = scene.run()
        if child.proc.returncode != 0:
            raise AssertionError(f"the clean run failed:\n{child.stderr}")
        _CLEAN[key] = child.result()["results"]
    return _CLEAN[key]


# -- kills -------------------------------------------------------------------------------


@dataclass
class KillReport:
    killed: bool
    finished: list[str]  # tasks stored by the killed run
    reused: list[str]  # tasks the resuming run reused
    problems: list[str]


def kill_and_resume(
    scene: Scene,
    clean_root: Path,
    *,
    hook: str = "",
    kill_at_marker: str = "",
    delay: float = 0.0,
    prior: str = "",
) -> KillReport:
    """Run the pipeline, SIGKILL it at one moment, resume, and check the outcome.

    hook: a moment the child kills itself at (LP_KILL, see crash_pipeline.py).
    kill_at_marker: the parent kills the child `delay` seconds after this marker
        appears ("slow.running": while a task runs; "big.storing": while the
        50 MB value is being written).
    prior: what the store holds when the killed run starts: "" nothing; "changed"
        a complete run of input version 1, the killed run reading version 2 (the
        kill lands among stale results); "forced" a complete run, the killed run
        forcing every task on the same input (the kill lands while valid results
        are being replaced: the old ones must survive it).
    """
    problems: list[str] = []
    version = 1
    if prior:
        scene.data(1)
        first = scene.run()
        if first.proc.returncode != 0:
            problems.append(f"the first full run failed:\n{first.stderr}")
        version = 2 if prior == "changed" else 1
    scene.data(version)
    scene.clear_markers()
    env: dict[str, str] = {"LP_FORCE": ",".join(TASKS)} if prior == "forced" else {}
    if hook:
        env["LP_KILL"] = hook
    if kill_at_marker == "slow.running":
        env["LP_GATE"] = "1"  # `slow` waits, so the kill surely lands while it runs
    if kill_at_marker.endswith(".storing"):
        env["LP_MARK_STORE"] = kill_at_marker.split(".")[0]
    started = time.time()
    child = scene.start(**env)
    if kill_at_marker:
        if scene.wait_for(scene.marker(kill_at_marker).exists, child=child):
            time.sleep(delay)
            child.kill()
        else:
            problems.append(f"marker {kill_at_marker} never appeared:\n{child.stderr}")
    child.wait()
    killed = child.proc.returncode == -signal.SIGKILL
    try:
        stored = scene.stored()
    except AssertionError as e:
        return KillReport(killed, [], [], [*problems, str(e)])
    finished = sorted(n for n, at in stored.items() if at >= started)

    scene.clear_markers()
    resumed = scene.run()  # with any orphaned worker of the killed run still alive
    scene.reap()
    if resumed.proc.returncode != 0:
        problems.append(f"the resuming run failed (exit {resumed.proc.returncode}):\n"
                        f"{resumed.stderr}")
        return KillReport(killed, finished, [], problems)
    out = resumed.result()
    statuses = out["statuses"]
    for name in TASKS:
        want = "cached" if name in finished or prior == "forced" else "executed"
        if statuses.get(name) != want:
            problems.append(f"after the kill ({hook or kill_at_marker}), {name!r} was "
                            f"{statuses.get(name)!r} on resume, expected {want!r}")
    clean = clean_results(clean_root, version, scene.big)
    for name in TASKS:
        if out["results"][name] != clean[name]:
            problems.append(f"{name!r} differs from a clean run after the kill "
                            f"({hook or kill_at_marker})")
    for bad in ("Traceback", "damaged", "sqlite"):
        if bad in resumed.stderr:
            problems.append(f"the resuming run printed {bad!r}:\n{resumed.stderr}")
    reused = [n for n in TASKS if statuses.get(n) == "cached"]
    return KillReport(killed, finished, reused, problems)


# -- two processes -----------------------------------------------------------------------


@dataclass
class ConcurrencyReport:
    waited: bool  # the second process said it waited for the first, naming its PID
    reused: list[str]  # tasks the second process reused
    problems: list[str]


def two_at_once(scene: Scene, clean_root: Path, *, kill_holder: bool = False) -> ConcurrencyReport:
    """Start the pipeline, start it again while the first runs `slow`, check no task ran twice.

    kill_holder: SIGKILL the first process while the second waits for its lock;
        the second must take the task over instead of waiting forever.
    """
    problems: list[str] = []
    scene.data(1)
    scene.clear_markers()
    first = scene.start(LP_GATE="1")
    if not scene.wait_for(scene.marker("slow.running").exists, child=first):
        return ConcurrencyReport(False, [], [f"the first run never reached 'slow':\n"
                                             f"{first.stderr}"])
    second = scene.start(LP_GATE="1")
    says = f"waiting for task 'slow', held by PID {first.proc.pid}"
    waited = scene.wait_for(lambda: says in second.stderr, child=second)
    if not waited:
        problems.append(f"the second run did not say it waits for PID {first.proc.pid}:\n"
                        f"{second.stderr}")
    if kill_holder:
        first.kill()
    scene.marker("gate").write_text("open")
    try:
        second.wait(60)
    except subprocess.TimeoutExpired:
        problems.append("the second run never finished (waiting on a dead process's lock?)")
        return ConcurrencyReport(waited, [], problems)
    runs = [second] if kill_holder else [first, second]
    if not kill_holder:
        first.wait(60)
    clean = clean_results(clean_root, 1, scene.big)
    for child in runs:
        if child.proc.returncode != 0:
            problems.append(f"a run failed (exit {child.proc.returncode}):\n{child.stderr}")
            continue
        out = child.result()
        if out["results"] != clean:
            problems.append(f"PID {out['pid']}'s results differ from a clean run")
        if "Traceback" in child.stderr:
            problems.append(f"PID {out['pid']} printed a traceback:\n{child.stderr}")
    log = scene.log()
    expected = {n: 1 for n in TASKS}
    if kill_holder:
        expected["slow"] = 2  # started by the killed run, then by the one that took over
    for name, times in expected.items():
        ran = [pid for pid, n in log if n == name]
        if len(ran) != times:
            problems.append(f"{name!r} started {len(ran)} times (by PIDs {ran}), "
                            f"expected {times}")
    if kill_holder:
        took_over = [n for pid, n in log if pid == second.proc.pid]
        if "slow" not in took_over:
            problems.append(f"the second run did not take over 'slow' (it ran {took_over})")
    reused: list[str] = []
    if second.proc.returncode == 0:
        statuses = second.result()["statuses"]
        reused = [n for n in TASKS if statuses.get(n) == "cached"]
        if not kill_holder and statuses.get("slow") != "cached":
            problems.append(f"the second run did not reuse 'slow' after waiting: "
                            f"{statuses.get('slow')!r}")
    return ConcurrencyReport(waited, reused, problems)
