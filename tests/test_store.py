"""The store alone: records and values together, metadata without values, history."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from little_pipelines import history
from little_pipelines.fingerprint import digest_bytes
from little_pipelines.store import MISSING, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


def put(store: Store, name: str, value: object) -> str:
    blob = pickle.dumps(value)
    digest = digest_bytes(blob)
    store.put(name, blob, {"digest": digest, "type": type(value).__name__})
    return digest


def test_a_value_and_its_record_are_stored_together(store) -> None:
    digest = put(store, "a", [1, 2])
    assert store.record("a") == {"digest": digest, "type": "list"}
    assert store.load("a") == [1, 2]
    assert store.load_blob("a", digest) == pickle.dumps([1, 2])
    assert store.records(["a", "nope"]) == {"a": store.record("a")}
    assert list(store.names()) == ["a"]


def test_unknown_names_are_missing_not_none(store) -> None:
    assert store.record("nope") is None
    assert store.load("nope") is MISSING
    put(store, "none", None)
    assert store.load("none") is None  # a stored None is a real result


def test_a_value_that_does_not_match_the_digest_is_not_handed_out(store) -> None:
    put(store, "a", 1)
    assert store.load_blob("a", digest_bytes(b"something else")) is MISSING


def test_dropping_values_keeps_records_and_forget_removes_both(store) -> None:
    put(store, "a", 1)
    put(store, "b", 2)
    store.drop_values(["a"])
    assert store.record("a") is not None and store.load("a") is MISSING
    assert store.forget(["b", "c"]) == ["b"]
    assert store.record("b") is None


def test_history_and_texts_survive_reopening(tmp_path) -> None:
    s = Store(tmp_path / "store")
    history.add(s, {"run_id": "r1"})
    s.save_texts({"d1": "def f(): pass"})
    s.close()
    again = Store(tmp_path / "store")
    assert [run["run_id"] for run in history.runs(again)] == ["r1"]
    assert again.text("d1") == "def f(): pass" and again.text("d2") is None
    again.close()


def test_records_reads_many_names_in_chunks_and_skips_missing_ones(tmp_path) -> None:
    from little_pipelines.store import Store

    store = Store(tmp_path / "s")
    names = [f"t{i}" for i in range(1203)]
    for name in names[::2]:
        store.put(name, b"x", {"digest": name})
    got = store.records(["nope", *names])
    assert list(got) == names[::2]
    assert all(got[n]["digest"] == n for n in got)
    store.close()
