"""Two processes, one pipeline: no task runs twice, the second waits and reuses.

Real child processes (tests/crash_pipeline.py) share one store. The first holds
the task `slow` (it waits for a gate file) while the second starts; the second
must say it waits for the first's PID, then reuse what the first stored. A lock
held by a process that is then SIGKILLed must be taken over, not waited on.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

import crashes
import little_pipelines as lp
from little_pipelines import engine
from little_pipelines.locks import TaskLocks

ROOT = Path(__file__).resolve().parents[1]

SMALL = 2**20


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clean")


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[crashes.Scene]:
    s = crashes.Scene(tmp_path / "scene", big=SMALL)
    yield s
    s.close()


def test_the_second_run_waits_for_the_first_and_reuses_its_result(
    scene: crashes.Scene, clean_root: Path
) -> None:
    report = crashes.two_at_once(scene, clean_root)
    assert report.problems == []
    assert report.waited
    assert "slow" in report.reused
    assert {"source", "words", "big"} <= set(report.reused)


def test_a_lock_held_by_a_killed_process_is_taken_over(
    scene: crashes.Scene, clean_root: Path
) -> None:
    report = crashes.two_at_once(scene, clean_root, kill_holder=True)
    assert report.problems == []
    assert report.waited
    assert report.reused == ["source", "words", "big"]


def test_a_task_another_run_stored_after_this_run_began_is_reused(tmp_path: Path) -> None:
    # This run read the records before `shared` was stored by another run, and
    # finds its lock free: it must still see the new record and not run it again.
    calls: list[str] = []

    def shared() -> int:
        calls.append("shared")
        return 42

    other = lp.Pipeline("Same", cache_dir=tmp_path / "store")
    other.task(shared)
    this = lp.Pipeline("Same", cache_dir=tmp_path / "store")

    @this.task
    def first() -> None:
        other.execute()  # "another run" stores `shared` while this one is under way

    this.task(shared)
    this.task(name="after")(lambda shared: shared + 1)
    report = this.execute()
    assert calls == ["shared"]
    assert report["shared"].status == "cached"
    assert this.get_result("after") == 43
    other.close()
    this.close()


# -- issue 11: exact locks, runs in threads of one process, the waiting line -------------
_HOLD = """
import sys, time
from pathlib import Path
from little_pipelines.locks import TaskLocks
locks = TaskLocks(Path(sys.argv[1]))
held = locks.try_acquire(sys.argv[2])
print("held" if held else f"busy {locks.holder(sys.argv[2])}", flush=True)
time.sleep(float(sys.argv[3]))
"""


def _hold(folder: Path, task: str, seconds: float) -> tuple[subprocess.Popen[str], str]:
    """A real process that tries to take a task's lock and keeps it for a while."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), task, str(seconds)],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _old_slot(name: str) -> int:
    """The slot the previous scheme gave a name: 24 bits of its digest."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (1 << 24)


def _colliding_pair() -> tuple[str, str]:
    seen: dict[int, str] = {}
    for i in itertools.count():
        name = f"task_{i}"
        slot = _old_slot(name)
        if slot in seen:
            return seen[slot], name
        seen[slot] = name
    raise AssertionError("unreachable")


def test_releasing_one_task_never_releases_another_even_if_their_slots_once_collided(
    tmp_path: Path,
) -> None:
    a, b = _colliding_pair()
    locks = TaskLocks(tmp_path)
    held_a, held_b = locks.try_acquire(a), locks.try_acquire(b)
    assert held_a is not None and held_b is not None
    held_a.release()  # `b` still runs in this process: nobody else may take it
    proc, answer = _hold(tmp_path, b, 0)
    proc.wait()
    assert answer == f"busy {os.getpid()}"
    held_b.release()
    proc, answer = _hold(tmp_path, b, 0)
    proc.wait()
    assert answer == "held"
    locks.close()


@pytest.mark.parametrize("objects", ["two Pipeline objects", "one Pipeline object"])
def test_two_runs_in_threads_of_one_process_in_opposite_orders_both_finish_running_each_once(
    tmp_path: Path, objects: str,
) -> None:
    calls: list[str] = []
    gate = threading.Barrier(2, timeout=30)

    def pipeline(order: list[str]) -> lp.Pipeline:
        p = lp.Pipeline("Twins", cache_dir=tmp_path / "store")
        for name in order:
            def work(name: str = name) -> str:
                calls.append(name)
                time.sleep(0.3)
                return name.upper()
            p.add(lp.Task.from_function(work, name=name))
        return p

    if objects == "one Pipeline object":
        one = pipeline(["a", "b"])
        pipes = [one, one]
    else:
        pipes = [pipeline(["a", "b"]), pipeline(["b", "a"])]
    reports: dict[int, lp.RunReport] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            gate.wait()
            targets = ["a", "b"] if i == 0 else ["b", "a"]
            reports[i] = pipes[i].execute(targets, executor="threads", workers=2)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "the two runs deadlocked"
    assert errors == []
    assert sorted(calls) == ["a", "b"]  # each task ran once between the two runs
    for i in range(2):
        assert reports[i].failed == []
        assert pipes[i].get_result("a") == "A" and pipes[i].get_result("b") == "B"
        pipes[i].close()


def test_the_waiting_line_shows_at_any_level_and_repeats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "_SAY_EVERY", 0.2)
    p = lp.Pipeline("Quiet", cache_dir=tmp_path / "store")
    p.task(name="slow")(lambda: 1)
    p.folder.mkdir(parents=True, exist_ok=True)
    proc, answer = _hold(p.folder, "slow", 1.0)
    assert answer == "held"
    lp.set_log_level("CRITICAL")
    try:
        report = p.execute()
    finally:
        lp.set_log_level("INFO")
        proc.kill()
        proc.wait()
    said = capsys.readouterr().err
    line = f"waiting for task 'slow', held by PID {proc.pid}"
    assert said.count(line) >= 2, said
    assert report["slow"].status == "executed"
    p.close()


def test_a_file_system_without_locks_is_said_once_and_runs_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No file system without record locks can be mounted here (an NFS mount without
    # lockd, some FUSE mounts): the kernel's answer there, ENOLCK, is given instead.
    import fcntl

    def no_locks(*args: object) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    try:
        p = lp.Pipeline("NoLocks", cache_dir=tmp_path / "store")
        for name in ("a", "b", "c"):
            p.task(name=name)(lambda: 1)
        assert p.execute().executed == ["a", "b", "c"]
        p.close()
    finally:
        logger.remove(sink)
    assert sum("does not support file locks" in line for line in said) == 1, said


# -- issue 14: a run alone skips re-reading records; one arriving is let in ---------------
_BEGIN = """
import sys, time
from pathlib import Path
from little_pipelines.locks import TaskLocks
locks = TaskLocks(Path(sys.argv[1]))
locks.begin()
print(f"in {locks.solo}", flush=True)
time.sleep(float(sys.argv[2]))
locks.close()
"""


def test_a_run_alone_is_solo_until_a_run_of_another_process_arrives_and_is_let_in(
    tmp_path: Path,
) -> None:
    locks = TaskLocks(tmp_path)
    locks.begin()
    assert locks.solo
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _BEGIN, str(tmp_path), "0.5"],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "in False"  # let in, and not alone itself
    assert not locks.solo  # from the moment the other run was let in
    assert time.monotonic() - start < 10  # let in by the watcher, not at this run's end
    locks.close()
    proc.wait()
    again = TaskLocks(tmp_path)  # the other process is gone: a new run is alone again
    again.begin()
    assert again.solo
    nested = TaskLocks(tmp_path)  # a second run of this process ends that
    nested.begin()
    assert not again.solo and not nested.solo
    nested.close()
    again.close()


_SOLO_PIPELINE = """
import sys, time
from pathlib import Path
import little_pipelines as lp
root, role = Path(sys.argv[1]), sys.argv[2]
p = lp.Pipeline("Solo", cache_dir=root / "store")

@p.task
def slow() -> int:
    (root / "slow-started").write_text("")
    deadline = time.time() + 30  # until the other run has stored `shared`
    while not (root / "other-done").exists() and time.time() < deadline:
        time.sleep(0.01)
    return 1

@p.task
def shared() -> int:
    with open(root / "shared-runs", "a") as f:
        f.write(role + "\\n")
    return 2

@p.task
def last(slow: int, shared: int) -> int:
    return slow + shared

report = p.execute(targets=["shared"] if role == "other" else None)
if role == "other":
    (root / "other-done").write_text("")
print(" ".join(f"{o.name}={o.status}" for o in report), flush=True)
"""


@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
def test_a_task_stored_by_a_run_arriving_while_this_run_was_alone_is_reused(
    tmp_path: Path, stopped: bool,
) -> None:
    # The first run is alone (it skips re-reading records after taking a task's lock)
    # when a second process starts, stores `shared` and leaves while the first is still
    # inside `slow`: the first must see that record and not run `shared` again.
    # Stopped (Ctrl-Z) inside `slow`, its watcher cannot let anyone in: the second must
    # still go on (it hung, knocking), and the first, continued, is alone no more (its
    # watcher missed its looks), so it still reuses `shared`.
    script = tmp_path / "solo.py"
    script.write_text(_SOLO_PIPELINE)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    first = subprocess.Popen([sys.executable, str(script), str(tmp_path), "first"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "slow-started").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        if stopped:
            os.kill(first.pid, signal.SIGSTOP)
        other = subprocess.run([sys.executable, str(script), str(tmp_path), "other"],
                               capture_output=True, text=True, env=env, timeout=30)
        assert other.stdout.split() == ["shared=executed"], other.stderr
        if stopped:
            os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=60)
        assert out.split() == ["slow=executed", "shared=cached", "last=executed"], err
        assert (tmp_path / "shared-runs").read_text().split() == ["other"]
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            first.wait()


def test_a_task_stored_by_a_run_nested_in_a_task_is_reused_not_run_again(
    tmp_path: Path,
) -> None:
    # The nested run shares the outer run's store and thread, hence its SQLite
    # connection, whose own commits `PRAGMA data_version` does not count: the outer
    # run used to skip re-reading `shared` after taking its lock, and ran it again.
    calls: list[str] = []
    p = lp.Pipeline("Nested", cache_dir=tmp_path / "store")

    @p.task
    def first() -> int:
        assert not p.execute(targets=["shared"]).failed
        return 1

    @p.task
    def shared() -> int:
        calls.append("shared")
        return 2

    @p.task
    def last(first: int, shared: int) -> int:
        return first + shared

    report = p.execute()
    assert calls == ["shared"]
    assert report["shared"].status == "cached"
    assert p.get_result("last") == 3


_FORKED_CHILD = """
import os, sys, time
from pathlib import Path
from little_pipelines.locks import TaskLocks
folder = Path(sys.argv[1])
parent = TaskLocks(folder)
held = parent.try_acquire("shared")
assert held is not None
pid = os.fork()
if pid == 0:  # the child holds none of its parent's locks, and must see that
    child = TaskLocks(folder)
    first = (child.try_acquire("shared"), child.holder("shared"))
    os.write(1, f"child sees {first[0]} held by {first[1]}\\n".encode())
    deadline = time.monotonic() + 20
    got = None
    while got is None and time.monotonic() < deadline:
        got = child.try_acquire("shared")
        time.sleep(0.02)
    os.write(1, f"child took it: {got is not None}\\n".encode())
    os._exit(0)
time.sleep(0.3)
held.release()  # the parent is done: now the child may take it
os.waitpid(pid, 0)
print(f"parent {os.getpid()}")
"""


def test_a_forked_child_waits_for_its_parents_task_lock_not_for_itself(tmp_path: Path) -> None:
    # A child forked while its parent held a task's lock inherited the parent's table of
    # held names: it took the lock for its own process's and waited for itself forever.
    script = tmp_path / "fork.py"
    script.write_text(_FORKED_CHILD)
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    parent = lines[-1].split()[1]
    assert lines[0] == f"child sees None held by {parent}", out.stdout
    assert lines[1] == "child took it: True", out.stdout
