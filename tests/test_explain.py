"""Explain alone: from a planned run's RunResult and the store, no Pipeline involved."""

from __future__ import annotations

from pathlib import Path

import little_pipelines as lp
from little_pipelines.engine import Run
from little_pipelines.explain import explain
from little_pipelines.spec import RunSpec, Selection, build_spec
from little_pipelines.store import Store


def spec_for(task: lp.Task, store: Store, folder: Path, params: dict, *, planned: bool
             ) -> RunSpec:
    spec = build_spec("bare", {task.name: task}, [task.name], {task.name: []},
                      Selection(planned=planned), store=store, lock_dir=folder)
    return RunSpec(**{**vars(spec), "params": {task.name: params}})


def test_explain_reads_the_evidence_from_a_planned_run_result(tmp_path) -> None:
    def summary(region):
        return region.upper()

    task = lp.Task.from_function(summary)
    store = Store(tmp_path / "store")
    Run(spec_for(task, store, tmp_path, {"region": "north"}, planned=False)).execute()

    same = Run(spec_for(task, store, tmp_path, {"region": "north"}, planned=True)).execute()
    assert explain(same, "summary", store).status == "cached"

    changed = Run(spec_for(task, store, tmp_path, {"region": "south"}, planned=True)).execute()
    found = explain(changed, "summary", store)
    assert found.status == "run"
    assert [f.reason.kind for f in found.findings] == ["param_changed"]
    assert found.findings[0].lines == ["before: 'north'", "now:    'south'"]
    assert store.load("summary") == "NORTH"  # a plan stored nothing
    store.close()
