"""Properties over random DAGs with random failures, skips, forces and edits.

Each example builds a random DAG of classic tasks, each reading its own input
file and its dependencies' results, then plays a random sequence of steps:
edit an input file, or run with some tasks failing, some skipped and some
forced, sequentially or on threads. It checks that

* every task starts after each dependency that ran in the same run has finished,
  and no task starts twice in one run;
* after a run without skips, every executed or reused result equals what a fresh
  computation from the current files gives (a skip legitimately feeds tasks below
  an old result);
* at the end, a plain run leaves every stored result equal to a fresh computation,
  and a second plain run runs nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import little_pipelines as lp

_ids = itertools.count()


@st.composite
def dags(draw: st.DrawFn) -> list[list[int]]:
    """deps[i] ⊆ {0..i-1}: a DAG in topological order."""
    n = draw(st.integers(2, 7))
    return [sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
            for i in range(n)]


step = st.one_of(
    st.tuples(st.just("edit"), st.integers(0, 6), st.integers(0, 3)),
    st.tuples(
        st.just("run"),
        st.sets(st.integers(0, 6), max_size=2),  # fail
        st.sets(st.integers(0, 6), max_size=2),  # skip
        st.sets(st.integers(0, 6), max_size=2),  # force
        st.sampled_from(["sequential", "threads"]),
    ),
)


def _value(name: str, content: str, upstream: list[str]) -> str:
    return hashlib.sha256(f"{name}|{content}|{'|'.join(upstream)}".encode()).hexdigest()[:12]


class World:
    """The pipeline, its input files, and what its tasks did."""

    def __init__(self, deps: list[list[int]], folder: Path) -> None:
        self.deps = deps
        self.folder = folder
        self.names = [f"t{i}" for i in range(len(deps))]
        self.events: list[tuple[str, str]] = []
        self.failing: set[str] = set()
        self._lock = threading.Lock()
        self._mtime = 1_700_000_000 * 10**9
        self.p = lp.Pipeline(f"Prop{next(_ids)}", cache_dir=folder / "store")
        for i, name in enumerate(self.names):
            self.edit(i, 0)
            task = lp.Task(name, dependencies=[self.names[d] for d in deps[i]],
                           input_files=[str(self.path(i))])
            task.process(self._make_run(i))
            self.p.add(task)

    def path(self, i: int) -> Path:
        return self.folder / f"in_{i}.txt"

    def edit(self, i: int, version: int) -> None:
        self.path(i).write_text(f"content {version}")
        self._mtime += 10**9  # every edit is seen, however coarse the file system's clock
        os.utime(self.path(i), ns=(self._mtime, self._mtime))

    def _make_run(self, i: int) -> Any:
        world = self

        def run(this: lp.Task) -> str:
            with world._lock:
                world.events.append(("start", this.name))
            try:
                if this.name in world.failing:
                    raise RuntimeError(f"{this.name} fails on purpose")
                upstream = [world.p.get_result(world.names[d]) for d in world.deps[i]]
                return _value(this.name, world.path(i).read_text(), upstream)
            finally:
                with world._lock:
                    world.events.append(("end", this.name))

        return run

    def fresh(self) -> dict[str, str]:
        """What every task computes from the files as they are now."""
        out: dict[str, str] = {}
        for i, name in enumerate(self.names):
            upstream = [out[self.names[d]] for d in self.deps[i]]
            out[name] = _value(name, self.path(i).read_text(), upstream)
        return out

    def run(self, fail: set[int], skip: set[int], force: set[int], executor: str) -> Any:
        n = len(self.names)
        self.failing = {self.names[i] for i in fail if i < n}
        self.events = []
        report = self.p.execute(
            skip_tasks=[self.names[i] for i in skip if i < n],
            force_tasks=[self.names[i] for i in force if i < n],
            executor=executor, workers=3,
        )
        self.check_order()
        return report

    def check_order(self) -> None:
        starts = [name for kind, name in self.events if kind == "start"]
        assert len(starts) == len(set(starts)), f"a task ran twice in one run: {starts}"
        at = {(kind, name): k for k, (kind, name) in enumerate(self.events)}
        for i, name in enumerate(self.names):
            if ("start", name) not in at:
                continue
            for d in self.deps[i]:
                dep = self.names[d]
                if ("start", dep) in at:
                    assert at[("end", dep)] < at[("start", name)], (
                        f"{name} started before its dependency {dep} finished")
                    assert dep not in self.failing, f"{name} ran although {dep} failed"

    def check_results(self, report: Any) -> None:
        fresh = self.fresh()
        for name in self.names:
            if report[name].status in ("executed", "cached"):
                assert self.p.get_result(name) == fresh[name], (
                    f"{name} ({report[name].status}) holds a result a fresh run would not give")


@settings(max_examples=20, deadline=None)
@given(deps=dags(), steps=st.lists(step, min_size=1, max_size=5))
def test_random_runs_and_edits_never_leave_a_wrong_result(
    deps: list[list[int]], steps: list[tuple[Any, ...]]
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lp-prop-"))
    world = World(deps, folder)
    try:
        for s in steps:
            if s[0] == "edit":
                _, i, version = s
                if i < len(deps):
                    world.edit(i, version)
                continue
            _, fail, skip, force, executor = s
            report = world.run(fail, skip, force, executor)
            for i in fail:
                if i < len(deps) and world.names[i] in [n for k, n in world.events]:
                    assert report[world.names[i]].status == "failed"
            if not skip:
                world.check_results(report)

        final = world.run(set(), set(), set(), "sequential")
        assert final.failed == [] and final.skipped == []
        world.check_results(final)
        again = world.run(set(), set(), set(), "threads")
        assert again.executed == [], "a second plain run found something to do"
        world.check_results(again)
    finally:
        world.p.close()
        shutil.rmtree(folder, ignore_errors=True)
