"""Properties over random DAGs: order, warm reruns, and exactly-what-changed reruns.

Each task reads its own input file and returns a digest of that file's stripped
content and of its upstream results. So changing a file's content changes the
results of its task and of every task below it (they all must rerun), while
adding whitespace changes the file but not the result (only its task reruns:
early cutoff).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import little_pipelines as lp
from little_pipelines.log import close_task_files

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    # The autouse fixture (isolated home, cwd) is fine to share between examples:
    # every example uses its own fresh folder for the store and the input files.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass
class Dag:
    """Task i depends on the tasks in deps[i] (all with smaller numbers); added in `order`."""

    deps: list[list[int]]
    order: list[int]
    changed: int  # the task whose input file a test changes

    @property
    def names(self) -> list[str]:
        return [f"T{i}" for i in range(len(self.deps))]

    def below(self, i: int) -> set[int]:
        """i and every task that depends on it, directly or not (computed independently)."""
        found, frontier = {i}, [i]
        while frontier:
            current = frontier.pop()
            for j, needs in enumerate(self.deps):
                if current in needs and j not in found:
                    found.add(j)
                    frontier.append(j)
        return found


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    n = draw(st.integers(min_value=1, max_value=8))
    deps = [
        sorted(draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3))) if i else []
        for i in range(n)
    ]
    order = draw(st.permutations(range(n)))
    changed = draw(st.integers(min_value=0, max_value=n - 1))
    return Dag(deps, list(order), changed)


@dataclass
class World:
    """One example's pipeline, its input files and the order its tasks actually ran in."""

    dag: Dag
    folder: Path
    ran: list[str] = field(default_factory=list)
    pipelines: list[lp.Pipeline] = field(default_factory=list)

    def input_file(self, i: int) -> Path:
        return self.folder / "inputs" / f"T{i}.txt"

    def pipeline(self) -> lp.Pipeline:
        p = lp.Pipeline("Prop", cache_dir=self.folder / "store")
        tasks = [self._task(i) for i in range(len(self.dag.deps))]
        p.add(*(tasks[i] for i in self.dag.order))
        self.pipelines.append(p)
        return p

    def _task(self, i: int) -> lp.Task:
        path = self.input_file(i)
        deps = [f"T{d}" for d in self.dag.deps[i]]
        t = lp.Task(f"T{i}", dependencies=deps, input_files=[str(path)])
        ran = self.ran

        @t.process
        def run(this):
            ran.append(this.name)
            upstream = [this.pipeline.get_result(d) for d in deps]
            payload = repr((this.name, path.read_text().strip(), upstream))
            return hashlib.sha256(payload.encode()).hexdigest()

        return t

    def close(self) -> None:
        for p in self.pipelines:
            p.close()
        close_task_files()
        shutil.rmtree(self.folder, ignore_errors=True)


def world(dag: Dag) -> World:
    w = World(dag, Path(tempfile.mkdtemp(prefix="lp-prop-")))
    (w.folder / "inputs").mkdir()
    for i in range(len(dag.deps)):
        w.input_file(i).write_text(f"content of T{i}\n")
    return w


def rewrite(path: Path, text: str) -> None:
    """Change a file and make sure its stat changes too (size differs, mtime moves)."""
    before = path.stat()
    path.write_text(text)
    later = max(path.stat().st_mtime_ns, before.st_mtime_ns + 1_000_000_000)
    os.utime(path, ns=(later, later))


@SETTINGS
@given(dag=dags())
def test_order_respects_dependencies_and_a_warm_rerun_runs_nothing(dag: Dag) -> None:
    w = world(dag)
    try:
        cold = w.pipeline().execute()
        assert sorted(w.ran) == sorted(dag.names)
        position = {name: k for k, name in enumerate(w.ran)}
        for i, needs in enumerate(dag.deps):
            for d in needs:
                assert position[f"T{d}"] < position[f"T{i}"]
        assert cold.executed == w.ran  # the report lists tasks in the order they ran

        w.ran.clear()
        warm = w.pipeline().execute()  # a new pipeline object, as in a new session
        assert w.ran == []
        assert sorted(warm.cached) == sorted(dag.names)
    finally:
        w.close()


@SETTINGS
@given(dag=dags())
def test_changing_one_input_reruns_exactly_that_task_and_all_below(dag: Dag) -> None:
    w = world(dag)
    try:
        p = w.pipeline()
        p.execute()
        w.ran.clear()
        k = dag.changed
        rewrite(w.input_file(k), f"new content of T{k}\n")
        report = p.execute()
        expected = {f"T{i}" for i in dag.below(k)}
        assert set(w.ran) == expected
        assert set(report.executed) == expected
        assert set(report.cached) == set(dag.names) - expected
        w.ran.clear()
        assert p.execute().executed == [] and w.ran == []
    finally:
        w.close()


@SETTINGS
@given(dag=dags())
def test_an_unchanged_result_stops_the_rerun_at_its_task(dag: Dag) -> None:
    w = world(dag)
    try:
        p = w.pipeline()
        p.execute()
        w.ran.clear()
        k = dag.changed
        rewrite(w.input_file(k), f"content of T{k}\n\n   \n")  # same stripped content
        report = p.execute()
        assert w.ran == [f"T{k}"]
        assert report.executed == [f"T{k}"]
        assert set(report.cached) == set(dag.names) - {f"T{k}"}
    finally:
        w.close()
