"""The store alone: records and values together, metadata without values, history."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import diskcache
import pytest

import little_pipelines as lp
from little_pipelines import history, recordtable
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


# -- the previous version's layout: a record and a value per task as diskcache keys ---------


def _as_previous_version_kept_it(folder: Path) -> None:
    """Rewrite a store the way the previous version kept it, with diskcache itself: each
    task's record under `lp:record:<name>` and its value under `lp:value:<name>` (bytes
    as `Cache.set` stores them, a large value's file row kept), and no table of records."""
    cache = diskcache.Cache(str(folder / "cache"))
    con = cache._con
    for name, record, value in con.execute("SELECT name, record, value FROM lp_records"):
        cache.set(f"lp:record:{name}", pickle.loads(record))
        if value is not None:
            cache.set(f"lp:value:{name}", bytes(value))
        else:  # a large value: its file stays, under the old key
            con.execute("UPDATE Cache SET key = ? WHERE key = ? AND raw = 1",
                        (f"lp:value:{name}", f"lp:file:{name}"))
    con.execute("DROP TABLE lp_records")
    cache.close()


def _old_keys(folder: Path) -> list[str]:
    with diskcache.Cache(str(folder / "cache")) as cache:
        return sorted(k for k in cache.iterkeys() if k.startswith(("lp:record:", "lp:value:")))


def _build(p: lp.Pipeline) -> None:
    @p.task(input_files=["knob.txt"])
    def a() -> str:
        return Path("knob.txt").read_text()

    @p.task
    def big() -> bytes:
        return b"b" * 100_000  # over diskcache's 32 KB: kept in a file

    @p.task
    def c(a: str, big: bytes) -> int:
        return len(a) + len(big)


def test_a_store_of_the_previous_version_is_reused_then_rewritten_task_by_task(
        pipelines, tmp_path) -> None:
    Path("knob.txt").write_text("1")
    first = pipelines("Old")
    _build(first)
    first.execute()
    first.close()
    _as_previous_version_kept_it(first.folder)
    assert _old_keys(first.folder) == [f"lp:{kind}:{name}" for kind in ("record", "value")
                                       for name in ("a", "big", "c")]

    p = pipelines("Old")
    _build(p)
    assert p.execute().cached == ["a", "big", "c"]  # nothing reruns after an upgrade
    assert p.get_result("big") == b"b" * 100_000 and p.get_result("c") == 100_001
    assert p.stored_names() == ["a", "big", "c"]

    Path("knob.txt").write_text("22")
    assert sorted(p.execute().executed) == ["a", "c"]
    # A rewritten task left the old layout in the same transaction: no old key of it
    # is left to contradict its new row.
    assert _old_keys(p.folder) == ["lp:record:big", "lp:value:big"]
    p.close()

    again = pipelines("Old")
    _build(again)
    assert again.execute().cached == ["a", "big", "c"]
    assert again.get_result("c") == 100_002
    assert again.clear(["big", "c"]) == ["big", "c"]
    assert _old_keys(again.folder) == []
    assert list((again.folder / "cache").rglob("*.val")) == []  # its value file went too
    assert again.execute().executed == ["big", "c"]


def test_a_result_of_the_previous_version_is_expired_dropped_and_forgotten_in_place(
        tmp_path) -> None:
    Store(tmp_path / "s").close()
    with diskcache.Cache(str(tmp_path / "s" / "cache")) as cache:
        for name, value in (("a", [1]), ("b", [2])):
            blob = pickle.dumps(value)
            cache.set(f"lp:value:{name}", blob)
            cache.set(f"lp:record:{name}", {"digest": digest_bytes(blob)})
    store = Store(tmp_path / "s")
    store.update_record("a", expired=True)
    assert store.record("a") == {"digest": digest_bytes(pickle.dumps([1])), "expired": True}
    assert store.load("a") == [1]
    store.drop_values(["a"])
    assert store.record("a") == {"digest": None, "expired": True}
    assert store.load("a") is MISSING
    digest = put(store, "b", [3])
    assert store.records(["a", "b"]) == {"a": {"digest": None, "expired": True},
                                         "b": {"digest": digest, "type": "list"}}
    assert store.load("b") == [3]
    assert list(store.names()) == ["a", "b"]
    assert _old_keys(tmp_path / "s") == ["lp:record:a"]  # b's row replaced its old keys
    assert store.forget(["a", "b", "c"]) == ["a", "b"]
    assert list(store.names()) == [] and _old_keys(tmp_path / "s") == []
    store.close()


def test_a_warm_run_reads_no_value_bytes(pipelines) -> None:
    """A small value sits in its task's row beside the record: deciding freshness must
    select the record column only. SQLite's authorizer is told every column a
    statement reads."""
    first = pipelines("Lean")
    first.task(name="a")(lambda: b"v" * 1000)
    first.execute()
    first.close()
    p = pipelines("Lean")
    p.task(name="a")(lambda: b"v" * 1000)
    reads: set[tuple[str, str]] = set()

    def authorize(action: int, table: str, column: str, *_: object) -> int:
        if action == sqlite3.SQLITE_READ:
            reads.add((table, column))
        return sqlite3.SQLITE_OK

    p.cache._con.set_authorizer(authorize)  # this thread's connection: the run's reads
    assert p.execute().cached == ["a"]
    assert ("lp_records", "record") in reads  # the records were read from the table...
    assert ("lp_records", "value") not in reads  # ...and not one value byte with them
    assert p.get_result("a") == b"v" * 1000
    assert ("lp_records", "value") in reads  # (a value read is seen)


@pytest.mark.parametrize("statement", ["_UPSERT", "_REPLACE"])
def test_a_row_is_replaced_whole_by_either_statement(
        tmp_path, monkeypatch: pytest.MonkeyPatch, statement: str) -> None:
    """The upsert, or INSERT OR REPLACE where SQLite is older than 3.24."""
    monkeypatch.setattr(recordtable, "_WRITE", getattr(recordtable, statement))
    store = Store(tmp_path / "s")
    put(store, "a", [1])
    put(store, "a", "x" * 50_000)  # now large: its file's row, no bytes in the row
    assert store.load("a") == "x" * 50_000
    digest = put(store, "a", [2])  # small again: the file's row goes
    assert store.load("a") == [2] and store.record("a") == {"digest": digest, "type": "list"}
    assert store.keys_with("lp:file:") == [] and list(store.names()) == ["a"]
    assert list((tmp_path / "s" / "cache").rglob("*.val")) == []  # and its file
    store.close()


def test_dropping_a_large_value_removes_its_file_and_keeps_the_record(store, tmp_path) -> None:
    put(store, "a", "x" * 50_000)
    assert list((tmp_path / "store" / "cache").rglob("*.val")) != []
    store.drop_values(["a"])
    assert store.load("a") is MISSING and store.record("a") == {"digest": None, "type": "str"}
    assert list((tmp_path / "store" / "cache").rglob("*.val")) == []


_PUT_LARGE = """
import pickle, sys
from little_pipelines.fingerprint import digest_bytes
from little_pipelines.store import Store
store = Store(sys.argv[1])
blob = pickle.dumps("x" * 50_000)
store.put("a", blob, {"digest": digest_bytes(blob), "type": "str"})
store.close()
"""


def test_a_large_value_another_process_stored_is_replaced_whole_by_a_small_one(
        tmp_path: Path) -> None:
    """A small value is written by one statement that checks, row by row, that its
    task has no large value's row: a large value another process stored after this
    store's last write must still lose its row and its file when a small one replaces
    it (an earlier layout stopped looking until another connection committed)."""
    store = Store(tmp_path / "s")
    put(store, "a", [1])
    put(store, "b", [1])  # no large value anywhere when these were written
    subprocess.run([sys.executable, "-c", _PUT_LARGE, str(tmp_path / "s")], check=True)
    assert store.load("a") == "x" * 50_000 and store.keys_with("lp:file:") == ["lp:file:a"]
    digest = put(store, "a", [2])
    assert store.load("a") == [2] and store.record("a") == {"digest": digest, "type": "list"}
    assert store.keys_with("lp:file:") == []  # the large value's row went with it...
    assert list((tmp_path / "s" / "cache").rglob("*.val")) == []  # ...and its file
    store.close()


def test_a_group_of_small_values_replaces_a_large_value_whole(store, tmp_path) -> None:
    """A group's rows go in one statement that leaves out a row whose task has a large
    value's row: that row and its file must still go, in the group's one transaction,
    and every value of the group be stored (a lone write, and one in a transaction)."""
    put(store, "a", "x" * 50_000)
    put(store, "c", "y" * 50_000)
    pickled = {name: store.pickle(name, value) for name, value in [("a", [1]), ("b", [2])]}
    store.put_many([(name, v, {"digest": v.digest}) for name, v in pickled.items()])
    assert store.load("a") == [1] and store.load("b") == [2] and store.load("c") == "y" * 50_000
    assert store.keys_with("lp:file:") == ["lp:file:c"]
    assert len(list((tmp_path / "store" / "cache").rglob("*.val"))) == 1  # c's file only
    with store.cache.transact():  # a write that joins a transaction already open
        put(store, "c", [3])
    assert store.load("c") == [3] and store.keys_with("lp:file:") == []
    assert list((tmp_path / "store" / "cache").rglob("*.val")) == []


def test_the_pipelines_cache_survives_pickling_as_a_diskcache_cache_does(tmp_path: Path) -> None:
    # diskcache.Cache pickles as (directory, timeout, disk type) and calls __init__ with
    # them positionally on load; the store's Cache took keyword arguments only.
    p = lp.Pipeline("Pickled", cache_dir=tmp_path)

    @p.task
    def one() -> int:
        return 1

    p.execute()
    copy = pickle.loads(pickle.dumps(p.cache))
    try:
        assert copy.directory == p.cache.directory
        assert sorted(copy.iterkeys()) == sorted(p.cache.iterkeys())
    finally:
        copy.close()
    assert p.get_result("one") == 1
