"""Grouped commits (issue 14, goal 2): results that finish together share one
transaction, and grouping never weakens what a single commit promised."""

from __future__ import annotations

import os
import threading
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


def test_a_group_that_cannot_be_committed_fails_only_the_value_that_does_not_fit(
        tiny_disk: Path, pipelines: Callable[..., lp.Pipeline]) -> None:
    p = pipelines("Full", cache_dir=tiny_disk / "store")
    gate = threading.Barrier(4, timeout=10)

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

    report = p.execute(executor="threads", workers=4)
    assert report.failed == ["big"], report.failed
    assert "could not be written" in report.outcomes["big"].error
    assert sorted(report.executed) == ["small0", "small1", "small2"]
    (tiny_disk / "filler").unlink()
    assert [p.get_result(f"small{i}") for i in range(3)] == [0, 1, 2]


def test_run_one_after_another_a_result_is_committed_before_the_next_task_starts(
        pipelines: Callable[..., lp.Pipeline]) -> None:
    # Even a next task that does not depend on it: that task may hold the GIL in one C
    # call for seconds (`sum(range(...))`, a regex, a big sort), which no background
    # thread could interrupt to commit, so a result waiting behind it would break the
    # 50 ms bound and be lost to a kill meanwhile. (Grouping such results behind a
    # flusher thread was tried and reverted: a review measured 0.9-2 s.)
    p = pipelines("NextTask")
    seen: list[bool] = []

    @p.task
    def first() -> int:
        return 1

    @p.task
    def unrelated() -> int:
        seen.append(_committed(p.folder, "first"))
        return 2

    assert p.execute().ok
    assert seen == [True]


def test_a_run_nested_in_the_next_task_reuses_the_result_just_stored(
        pipelines: Callable[..., lp.Pipeline]) -> None:
    # The nested run wants `first`, which the outer run has just finished: it must find
    # it stored and its lock free (a result held back for a later commit kept the lock
    # and hung the nested run, waiting for its own process).
    p = pipelines("NestedNext")
    calls: list[str] = []

    @p.task
    def first() -> int:
        calls.append("first")
        return 1

    @p.task
    def outer() -> int:
        inner = p.execute(targets=["first"])
        assert inner["first"].status == "cached", inner["first"].status
        return 2

    assert p.execute().ok
    assert calls == ["first"]
