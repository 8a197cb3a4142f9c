"""Freshness alone: a task's state against its record gives reuse, or reasons to run."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import little_pipelines as lp
from little_pipelines.fingerprint import CodeStamp, FileStamp
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


def _combined_from_tuples(state) -> str:
    """A state's fingerprint as every stored record's was taken: `combine` of tuples."""
    from little_pipelines.fingerprint import combine
    from little_pipelines.freshness import SCHEMA

    code, inputs = state.code, state.inputs
    parts = [("schema", SCHEMA),
             ("code", tuple([(key, str(code[key][-1])) for key in sorted(code)])),
             ("inputs", tuple([(path, inputs[path][2]) for path in sorted(inputs)])),
             ("upstream", tuple(sorted(state.upstream.items())))]
    if state.params:
        parts.append(("params", tuple(sorted(state.params.items()))))
    if state.sources:
        parts.append(("sources", tuple(sorted(state.sources.items()))))
    return combine(*parts)


def test_fingerprints_stay_the_ones_stored_records_hold() -> None:
    """Every stored record's fingerprint keeps matching: digests taken before the
    fingerprint's text was built by hand (a changed one would rerun every task)."""
    from little_pipelines.freshness import State

    state = State(code={"/a/b.py": FileStamp(10, 20, "d1"), "f'n": CodeStamp("function", "d2"),
                        "version": (0, 0, "d3")},
                  inputs={"data.csv": FileStamp(1, 2, "d4"), "é\\x": FileStamp(3, 4, "d5")},
                  upstream={"up": "d6"}, params={"region": "d7"}, sources={"db": "d8"})
    assert state.fingerprint == "eee2d2a33c0c8a473218ec9155eee6bc"
    assert State().fingerprint == "8e301983b2a1d812e7e6918ac3edbd3f"
    assert State(upstream={"b": "2", "a": "1"}).fingerprint == "4ad5202f81788d609edd536a8f94f251"


_texts = st.text(max_size=12)
_digests = st.text(alphabet="0123456789abcdef<> ", max_size=32)


@given(
    code=st.dictionaries(_texts, st.one_of(
        st.builds(FileStamp, st.integers(), st.integers(), _digests),
        st.builds(CodeStamp, _texts, _digests),
        st.tuples(st.integers(0, 3), st.integers(0, 3), _digests)), max_size=3),
    inputs=st.dictionaries(_texts, st.builds(FileStamp, st.integers(), st.integers(), _digests),
                           max_size=3),
    upstream=st.dictionaries(_texts, _digests, max_size=3),
    params=st.dictionaries(_texts, _digests, max_size=3),
    sources=st.dictionaries(_texts, _digests, max_size=3),
)
@settings(max_examples=300, deadline=None)
def test_a_fingerprint_is_combine_of_its_parts_as_tuples(code, inputs, upstream, params,
                                                         sources) -> None:
    from little_pipelines.freshness import State

    state = State(code=code, inputs=inputs, upstream=upstream, params=params, sources=sources)
    assert state.fingerprint == _combined_from_tuples(state)
