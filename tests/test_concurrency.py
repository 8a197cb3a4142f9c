"""Two processes, one pipeline: no task runs twice, the second waits and reuses.

Real child processes (tests/crash_pipeline.py) share one store. The first holds
the task `slow` (it waits for a gate file) while the second starts; the second
must say it waits for the first's PID, then reuse what the first stored. A lock
held by a process that is then SIGKILLed must be taken over, not waited on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import crashes
import little_pipelines as lp

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
