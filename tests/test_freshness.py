"""Freshness alone: a task's state against its record gives reuse, or reasons to run."""

from __future__ import annotations

import datetime as dt

import pytest

import little_pipelines as lp
from little_pipelines.freshness import Probe, check_params, current_state, reasons_to_run

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def make_task() -> lp.Task:
    def summary(region):
        return region

    return lp.Task.from_function(summary, input_files=["data.csv"])


def kinds(task: lp.Task, record, state) -> list[str]:
    return [r.kind for r in reasons_to_run(task, record, state, run_id="r", now=NOW)]


def state_of(task: lp.Task, record, params, upstream=None):
    return current_state(task, record, Probe(), ["data.csv"], upstream or {}, params)


def test_a_state_equal_to_its_record_is_reused_and_each_change_has_its_reason(tmp_path,
                                                                              ) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    task = make_task()
    first = state_of(task, None, {"region": "north"}, {"up": "d1"})
    assert kinds(task, None, first) == ["no_result"]
    record = {**first.record_fields()}
    assert kinds(task, record, state_of(task, record, {"region": "north"}, {"up": "d1"})) == []
    assert kinds(task, record, state_of(task, record, {"region": "south"}, {"up": "d1"})) == [
        "param_changed"]
    assert kinds(task, record, state_of(task, record, {"region": "north"}, {"up": "d2"})) == [
        "upstream_changed"]
    (tmp_path / "data.csv").write_text("a,b,c\n")
    assert kinds(task, record, state_of(task, record, {"region": "north"}, {"up": "d1"})) == [
        "input_changed"]


def test_the_params_given_are_the_ones_fingerprinted_not_the_declarations(tmp_path) -> None:
    (tmp_path / "data.csv").write_text("x")
    task = make_task()
    assert task.params == {}
    state = state_of(task, None, {"region": "north"})
    assert set(state.params) == {"region"} and state.params_text == {"region": "'north'"}


def test_a_param_that_cannot_be_fingerprinted_is_a_loud_error() -> None:
    import threading

    with pytest.raises(lp.FingerprintError, match="param 'lock' cannot be fingerprinted"):
        check_params(make_task(), {"lock": threading.Lock()})


def test_a_stored_fingerprint_is_the_hash_of_the_parts_its_record_keeps(
        tmp_path, monkeypatch, pipelines) -> None:
    """A reused task is recognised by comparing its state with its record part by part,
    without hashing: sound only while every writer keeps a record's fingerprint equal to
    the hash of its parts (a run, a touched file's stamps remembered, `accept`)."""
    import os

    from little_pipelines.freshness import State

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("a,b\n")
    p = pipelines("Parts", params={"region": "north"})

    @p.task(input_files=["data.csv"], sources={"db": lambda: 7})
    def first(region):
        return region

    @p.task
    def second(first):
        return first * 2

    def check() -> None:
        for name in ("first", "second"):
            rec = p.record(name)
            parts = State(code=rec["code"], inputs=rec["inputs"], upstream=rec["upstream"],
                          params=rec["params"], sources=rec["sources"])
            assert rec["fingerprint"] == parts.fingerprint, name

    assert p.execute().executed == ["first", "second"]
    check()
    os.utime(tmp_path / "data.csv", ns=(1, 1))  # touched, not changed: stamps remembered
    assert p.execute().executed == []
    assert p.record("first")["inputs"]["data.csv"][1] == 1
    check()
    p.accept(["first"])
    check()
