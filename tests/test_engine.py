"""The engine on its own: a RunSpec of plain data in, a RunResult out, no Pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import little_pipelines as lp
from little_pipelines.engine import Run
from little_pipelines.spec import RunSpec, Selection, build_spec
from little_pipelines.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


def tasks(ran: list[str]) -> dict[str, lp.Task]:
    """numbers -> doubled -> total, function form: values come from the engine, not a host."""

    def numbers(scale):
        ran.append("numbers")
        return [scale * i for i in range(4)]

    def doubled(numbers):
        ran.append("doubled")
        return [2 * n for n in numbers]

    def total(numbers, doubled):
        ran.append("total")
        return sum(numbers) + sum(doubled)

    made = [lp.Task.from_function(f, params={"scale": 1} if f is numbers else None)
            for f in (numbers, doubled, total)]
    return {t.name: t for t in made}


def spec_of(by_name: dict[str, lp.Task], store: Store, tmp_path: Path, **selection: Any
            ) -> RunSpec:
    deps = {n: t.dependency_names(by_name) for n, t in by_name.items()}
    return build_spec("bare", by_name, list(by_name), deps, Selection(**selection),
                      store=store, lock_dir=tmp_path / "store")


def test_a_spec_runs_without_a_pipeline_and_the_next_run_reuses(store, tmp_path) -> None:
    ran: list[str] = []
    by_name = tasks(ran)
    result = Run(spec_of(by_name, store, tmp_path)).execute()
    assert result.report.executed == ["numbers", "doubled", "total"]
    assert store.load("total") == 18
    assert set(result.states) == set(result.digests) == {"numbers", "doubled", "total"}
    assert result.records["total"]["digest"] == result.digests["total"]
    assert all(t.pipeline is None for t in by_name.values())  # nothing attached them

    again = Run(spec_of(by_name, store, tmp_path)).execute()
    assert again.report.cached == ["numbers", "doubled", "total"]
    assert ran == ["numbers", "doubled", "total"]


def test_the_params_of_a_spec_are_what_the_task_runs_with(store, tmp_path) -> None:
    by_name = tasks([])
    spec = spec_of(by_name, store, tmp_path)
    assert spec.params["numbers"] == {"scale": 1}
    wider = RunSpec(**{**vars(spec), "params": {**spec.params, "numbers": {"scale": 10}}})
    result = Run(wider).execute()
    assert store.load("numbers") == [0, 10, 20, 30]
    assert result.report["numbers"].status == "executed"
    # the declaration was not changed by the run: its own params are as declared
    assert by_name["numbers"].params == {"scale": 1}


def test_a_planned_spec_stores_nothing_and_says_what_would_run(store, tmp_path) -> None:
    ran: list[str] = []
    result = Run(spec_of(tasks(ran), store, tmp_path, targets=["doubled"], planned=True)
                 ).execute()
    assert [(o.name, o.status) for o in result.report] == [("numbers", "run"), ("doubled", "run")]
    assert ran == [] and list(store.names()) == []


def test_forked_process_workers_get_the_task_map_from_the_spec(store, tmp_path) -> None:
    by_name = tasks([])
    spec = spec_of(by_name, store, tmp_path)
    spec = RunSpec(**{**vars(spec), "executor": "processes", "workers": 2})
    result = Run(spec).execute()
    assert result.report.executed == ["numbers", "doubled", "total"]
    assert store.load("total") == 18


def test_progress_is_told_of_every_start_and_settlement(store, tmp_path) -> None:
    seen: list[tuple[str, str, str | None]] = []
    spec = spec_of(tasks([]), store, tmp_path)
    spec = RunSpec(**{**vars(spec), "progress": lambda event, name, outcome: seen.append(
        (event, name, outcome.status if outcome else None))})
    Run(spec).execute()
    assert seen == [("start", "numbers", None), ("finish", "numbers", "executed"),
                    ("start", "doubled", None), ("finish", "doubled", "executed"),
                    ("start", "total", None), ("finish", "total", "executed")]


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
def test_a_classic_task_reads_the_runs_params_wherever_it_runs(pipelines, executor) -> None:
    p = pipelines("params_travel", params={"region": "north"})
    t = lp.Task("Classic", params={"factor": 2})

    @t.process
    def run(this):
        return this.params["factor"] * len(this.params["region"])

    p.add(t)
    assert p.execute(executor=executor, workers=2).executed == ["Classic"]
    assert p.get_result("Classic") == 10


def test_upstream_flags_are_this_runs_while_tasks_below_run(pipelines) -> None:
    """The original set is_executed/is_skipped as each task settled; tasks read them."""
    seen: list[tuple[bool, bool]] = []
    p = pipelines("flags")
    first = lp.Task("First")

    @first.process
    def run(this):
        return 1

    second = lp.Task("Second", dependencies=["First"])

    @second.process  # type: ignore[no-redef]
    def run(this):  # noqa: F811 (each classic task's process is named run)
        up = this.dependencies["First"]
        seen.append((up.is_executed, up.is_skipped))
        return 2

    p.add(first, second)
    p.execute()
    p.execute(force_tasks=["Second"])
    assert seen == [(True, False), (False, True)]
    assert (first.is_executed, first.is_skipped) == (False, True)


def test_a_run_refused_before_it_starts_leaves_the_last_runs_state(pipelines) -> None:
    p = pipelines("refused")
    bad = lp.Task("Bad")

    @bad.process
    def run(this):
        raise ValueError("no")

    p.add(bad)
    p.execute()
    assert p.failures == ["Bad"]
    with pytest.raises(lp.UnknownTaskError):
        p.execute(targets=["Nope"])
    assert p.failures == ["Bad"]  # nothing ran, nothing was reset
