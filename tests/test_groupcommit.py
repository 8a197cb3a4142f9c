"""Grouped commits (issue 14, goal 2): results that finish together share one
transaction, and grouping never weakens what a single commit promised."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import little_pipelines as lp
from little_pipelines.store import Store


def _committed(folder: Path, name: str) -> bool:
    """Whether another connection (another process would see the same) sees the record."""
    store = Store(folder)
    try:
        return store.record(name) is not None
    finally:
        store.close()


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_a_result_is_committed_before_any_task_that_depends_on_it_starts(
        executor: str, pipelines: Callable[..., lp.Pipeline]) -> None:
    p = pipelines("Grouped")
    seen: dict[str, bool] = {}
    gate = threading.Barrier(4, timeout=10) if executor == "threads" else None

    def make(i: int) -> None:
        @p.task(name=f"up{i}")
        def up() -> int:
            if gate is not None:
                gate.wait()  # the four finish together: one group
            return i

    for i in range(4):
        make(i)

    @p.task
    def down(up0: int, up1: int, up2: int, up3: int) -> int:
        for n in range(4):
            seen[f"up{n}"] = _committed(p.folder, f"up{n}")
        return up0 + up1 + up2 + up3

    report = p.execute(executor=executor, workers=4 if executor == "threads" else None)
    assert report.ok, report.failed
    assert seen == {f"up{n}": True for n in range(4)}


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_a_group_that_cannot_be_committed_fails_only_the_value_that_does_not_fit(
        executor: str, tiny_disk: Path, pipelines: Callable[..., lp.Pipeline]) -> None:
    # Sequential, the four share a commit too: nothing depends on the first three, so
    # their results wait for the next task's (flusher.py), and the group ends at `big`.
    p = pipelines("Full", cache_dir=tiny_disk / "store")
    threads = executor == "threads"
    gate = threading.Barrier(4 if threads else 1, timeout=10)

    def make(i: int) -> None:
        @p.task(name=f"small{i}")
        def small() -> int:
            gate.wait()
            return i

    for i in range(3):
        make(i)

    @p.task
    def big() -> bytes:
        st = os.statvfs(tiny_disk)
        room = st.f_bavail * st.f_frsize
        with open(tiny_disk / "filler", "wb") as f:  # leave ~300 KB
            f.write(b"\0" * max(0, room - 300_000))
        gate.wait()
        return os.urandom(900_000)  # under 1 MiB: committed inside the group's transaction

    report = p.execute(executor=executor, workers=4 if threads else None)
    assert report.failed == ["big"], report.failed
    assert "could not be written" in report.outcomes["big"].error
    assert sorted(report.executed) == ["small0", "small1", "small2"]
    (tiny_disk / "filler").unlink()
    assert [p.get_result(f"small{i}") for i in range(3)] == [0, 1, 2]


def test_a_result_waiting_for_its_group_is_committed_while_a_long_next_task_runs(
        pipelines: Callable[..., lp.Pipeline]) -> None:
    # Run one after another, `first`'s result may wait to share a commit with the next
    # independent task's; `spin` runs long in pure Python (holding the GIL but for the
    # interpreter's switches): the flusher must still commit `first` meanwhile, so a
    # crash during `spin` would not lose it. Without the flusher, `spin` never sees it.
    p = pipelines("Waiting")

    @p.task
    def first() -> int:
        return 1

    @p.task
    def spin() -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for _ in range(200_000):  # ~10 ms of pure Python between looks
                pass
            if _committed(p.folder, "first"):
                return True
        return False

    report = p.execute()
    assert report.ok, report.failed
    assert p.get_result("spin") is True
    assert p.get_result("first") == 1
