"""Kill at any moment: a SIGKILLed pipeline process loses at most the work in flight.

Real child processes (tests/crash_pipeline.py), real SIGKILLs, real files. Some
kills come from this process at a marker the child leaves (while a task runs,
while a 50 MB value is being written); others the child sends itself at an exact
moment of the store's write path (after the value file is written but before the
commit, between setting the value and the record). Then the store must open
cleanly, the next run must reuse every task that had finished and rerun the
rest, and every result must equal a clean run's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import crashes

SMALL = 2**20  # `big` when the test is not about the size of the write (still a value file)


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clean")


Scenes = Callable[..., crashes.Scene]


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scenes]:
    """Factory of Scenes (a store, a work folder, child processes), all reaped afterwards."""
    made: list[crashes.Scene] = []

    def make(**kwargs: Any) -> crashes.Scene:
        s = crashes.Scene(tmp_path / f"scene-{len(made)}", **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _check(report: crashes.KillReport, finished: list[str]) -> None:
    assert report.problems == []
    assert report.killed
    assert report.finished == sorted(finished)


@pytest.mark.parametrize(
    ("how", "finished"),
    [
        ({"kill_at_marker": "slow.running"}, ["source", "words", "big"]),
        ({"hook": "task:slow"}, ["source", "words", "big"]),
        ({"hook": "task:source"}, []),
    ],
    ids=["from-outside", "from-inside", "first-task"],
)
def test_kill_while_a_task_runs(
    scene: Scenes, clean_root: Path, how: dict[str, Any], finished: list[str]
) -> None:
    _check(crashes.kill_and_resume(scene(big=SMALL), clean_root, **how), finished)


def test_kill_between_tasks(scene: Scenes, clean_root: Path) -> None:
    report = crashes.kill_and_resume(scene(big=SMALL), clean_root, hook="stored:words")
    _check(report, ["source", "words"])


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02])
def test_kill_while_a_large_value_is_being_written(
    scene: Scenes, clean_root: Path, delay: float
) -> None:
    report = crashes.kill_and_resume(scene(), clean_root, kill_at_marker="big.storing",
                                     delay=delay)
    assert report.problems == []
    assert report.killed
    # Depending on where in the write the signal landed, `big` is stored or not;
    # either way the resume agreed with the store (checked in kill_and_resume).
    assert set(report.finished) >= {"source", "words"}


@pytest.mark.parametrize(
    ("hook", "prior"),
    [
        ("value:big", ""),
        ("record:big", ""),
        ("value:big", "forced"),
        ("record:big", "forced"),
        ("record:big", "changed"),
    ],
    ids=["value-written-uncommitted", "value-set-record-not", "replacing-value-written",
         "replacing-value-set", "among-stale-results"],
)
def test_kill_inside_the_store_write(
    scene: Scenes, clean_root: Path, hook: str, prior: str
) -> None:
    # "replacing-*": a valid stored value is being replaced when the process dies;
    # the old value must survive (diskcache alone deletes it before the commit).
    report = crashes.kill_and_resume(scene(), clean_root, hook=hook, prior=prior)
    _check(report, ["source", "words"])


def test_kill_with_the_processes_executor_leaves_no_lock_behind(
    scene: Scenes, clean_root: Path
) -> None:
    # The task runs in a forked worker, which dies with the killed driver
    # (PR_SET_PDEATHSIG); the lock, taken by the driver alone and never inherited,
    # must not make the next run wait for anyone.
    s = scene(big=SMALL, executor="processes")
    report = crashes.kill_and_resume(s, clean_root, kill_at_marker="slow.running")
    assert report.problems == []
    assert report.killed
    # Tasks run side by side here, so which others finished before the kill varies
    # (workers die with the driver, so a task still running in one is lost too).
    assert {"source", "words"} <= set(report.finished)
    assert "slow" not in report.finished


def test_process_workers_die_with_a_killed_driver(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    script = tmp_path / "orphans.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from pathlib import Path
        import little_pipelines as lp

        p = lp.Pipeline("orphans")

        @p.task
        def sleeper():
            Path("worker.pid").write_text(str(os.getpid()))
            time.sleep(60)

        if __name__ == "__main__":
            p.execute(executor="processes", workers=1)
    """))
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                              stderr=subprocess.DEVNULL)
    pid_file = tmp_path / "worker.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=10)
    deadline = time.monotonic() + 10
    alive = True
    while alive and time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
            with open(f"/proc/{worker}/stat") as f:  # a zombie counts as gone
                alive = f.read().split()[2] != "Z"
        except (ProcessLookupError, FileNotFoundError):
            alive = False
        time.sleep(0.05)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker outlived its killed driver"
