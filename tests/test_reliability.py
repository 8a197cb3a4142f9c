"""Reliability: damaged stores, unstorable results, bad input, clocks, files, permissions.

Each test exercises the real failure: real store files are overwritten, truncated
or deleted, real OSErrors come out of diskcache's own write path, real files change
while a task runs, real folders get the wrong mode or owner. Where the promise is
"nothing reaches the user but a clear message", the pipeline runs in a child
process and its stderr is read. Kills and concurrent runs live in test_kill.py
and test_concurrency.py.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import diskcache
import pytest
from loguru import logger

import little_pipelines as lp
from little_pipelines import expire
from little_pipelines.errors import (
    MissingInputError,
    PipelineValidationError,
    TaskDefinitionError,
    UnknownTaskError,
    UnsafeStoreError,
)
from little_pipelines.executors import ExecutorError
from little_pipelines.store import Store


@pytest.fixture
def messages() -> Iterator[list[str]]:
    """Every log line the library and its tasks emit, as "scope | message"."""
    seen: list[str] = []
    hid = logger.add(
        lambda m: seen.append(f"{m.record['extra'].get('lp_scope', '')} | {m.record['message']}"),
        level="DEBUG",
    )
    yield seen
    logger.remove(hid)


# -- a pipeline in a child process, for what must not reach the user --------------------

SCRIPT = '''
import sys
import little_pipelines as lp

p = lp.Pipeline("damage", cache_dir=sys.argv[1])

@p.task
def up():
    return b"u" * 100_000  # over 32 KB: diskcache keeps it in a value file of its own

@p.task(input_files=["down.txt"])
def down(up):
    return len(up) + len(open("down.txt").read())

@p.task
def other():
    return list(range(100))

report = p.execute()
print("STATUS", sorted((o.name, o.status) for o in report))
for o in report:
    if o.error:
        print("ERROR", o.name, o.error.strip().splitlines()[-1])
print("RESULT", p.get_result("down"))
'''


class Script:
    """The pipeline above, run in a child process from `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store = folder / "store"
        (folder / "pipe.py").write_text(SCRIPT)
        self.input("1")

    def input(self, text: str) -> None:
        path = self.folder / "down.txt"
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(text)
        os.utime(path, ns=(before + 10**9, before + 10**9))

    def run(self) -> tuple[dict[str, str], str, str]:
        """(statuses, stdout, stderr); fails the test if the process itself failed."""
        proc = subprocess.run(
            [sys.executable, "pipe.py", str(self.store)], cwd=self.folder,
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        line = next(x for x in proc.stdout.splitlines() if x.startswith("STATUS"))
        statuses = dict(eval(line[len("STATUS "):]))
        return statuses, proc.stdout, proc.stderr

    @property
    def db(self) -> Path:
        return self.store / "cache" / "cache.db"

    def value_files(self) -> list[Path]:
        return sorted((self.store / "cache").rglob("*.val"))


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert "sqlite3." not in stderr
    assert "DatabaseError" not in stderr


# -- 3. damaged store ---------------------------------------------------------------------


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def _truncate_half(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2)


def _truncate_empty(db: Path) -> None:
    os.truncate(db, 0)


def _pages_overwritten(db: Path) -> None:
    # The header (first page) stays valid, so SQLite opens the file without a word;
    # only reading the pages shows the damage.
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(size - 4096))


@pytest.mark.parametrize(
    "damage", [_garbage, _truncate_half, _truncate_empty, _pages_overwritten],
    ids=["garbage", "truncated-half", "truncated-empty", "pages-overwritten"],
)
def test_a_damaged_store_is_moved_aside_and_the_run_goes_on_uncached(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    script = Script(tmp_path)
    script.run()
    damage(script.db)
    damaged_bytes = script.db.read_bytes()

    statuses, _, stderr = script.run()

    assert set(statuses.values()) == {"executed"}  # as if nothing were cached
    _no_traceback(stderr)
    assert stderr.count("was damaged") == 1, stderr  # said once
    aside = list(script.store.glob("cache.damaged-*"))
    assert len(aside) == 1  # moved aside, not deleted
    assert (aside[0] / "cache.db").read_bytes() == damaged_bytes
    assert str(aside[0]) in stderr  # the user is told where it went

    statuses, stdout, stderr = script.run()  # the fresh store works
    assert set(statuses.values()) == {"cached"}
    assert "damaged" not in stderr
    assert "RESULT 100001" in stdout


def test_a_damaged_store_is_said_once_per_open_not_per_task(
    tmp_path: Path, messages: list[str]
) -> None:
    (tmp_path / "s" / "cache").mkdir(parents=True, mode=0o700)
    (tmp_path / "s" / "cache" / "cache.db").write_bytes(b"not a database" * 1000)
    p = lp.Pipeline("Damaged", cache_dir=tmp_path / "s")
    for i in range(5):
        p.task(name=f"t{i}")(lambda: 1)
    assert len(p.execute().executed) == 5
    assert sum("was damaged" in m for m in messages) == 1
    p.close()


def test_a_damaged_record_inside_a_sound_database_counts_as_no_result(
    pipelines: Callable[..., lp.Pipeline], messages: list[str]
) -> None:
    p = pipelines("Record")
    p.task(name="t")(lambda: 1)
    p.task(name="u")(lambda: 2)
    p.execute()
    p.close()
    # Garbage in the record's pickle: the pages are sound, so the quick check passes.
    con = sqlite3.connect(p.folder / "cache" / "cache.db")
    with con:
        con.execute("UPDATE lp_records SET record = ? WHERE name = ?", (b"\x80\x05garbage", "t"))
    con.close()
    report = p.execute()
    assert report.executed == ["t"] and report.cached == ["u"]
    assert any("record of task 't' could not be read" in m for m in messages)
    assert p.execute().cached == ["t", "u"]


def _truncate_value(path: Path) -> None:
    os.truncate(path, 1000)


def _overwrite_value(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def _delete_value(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "damage", [_truncate_value, _overwrite_value, _delete_value],
    ids=["truncated", "overwritten", "deleted"],
)
def test_a_damaged_value_file_of_a_cached_upstream_fails_clearly_and_the_next_run_recovers(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    script = Script(tmp_path)
    script.run()
    (value_file,) = script.value_files()  # up's 100 KB result
    damage(value_file)
    script.input("22")  # `down` must run, and needs `up`'s stored value

    statuses, stdout, stderr = script.run()

    assert statuses == {"up": "cached", "down": "failed", "other": "cached"}
    _no_traceback(stderr)
    assert stderr.count("The stored result of task 'up' is damaged") == 1, stderr
    assert "ERROR down The stored result of 'up' could not be read" in stdout
    assert "RESULT 100001" in stdout  # down's previous result is kept, not a wrong new one

    statuses, stdout, stderr = script.run()  # recovers: up recomputed, down runs with it
    assert statuses == {"up": "executed", "down": "executed", "other": "cached"}
    assert "RESULT 100002" in stdout
    _no_traceback(stderr)


def test_get_result_of_a_damaged_value_is_the_default_with_a_warning(
    pipelines: Callable[..., lp.Pipeline], messages: list[str]
) -> None:
    p = pipelines("Values")
    p.task(name="big")(lambda: b"v" * 100_000)
    p.execute()
    (value_file,) = (p.folder / "cache").rglob("*.val")
    os.truncate(value_file, 10)
    assert p.get_result("big", default="gone") == "gone"
    assert any("'big' is damaged" in m for m in messages)
    assert p.execute().executed == ["big"]  # forgotten, so computed again
    assert p.get_result("big") == b"v" * 100_000


# -- 4. results that cannot be stored -------------------------------------------------------


def _lambda() -> Any:
    return lambda x: x


def _lock() -> Any:
    return threading.Lock()


def _socket() -> Any:
    a, b = socket.socketpair()
    _open.extend([a, b])
    return a


def _connection() -> Any:
    con = sqlite3.connect(":memory:")
    _open.append(con)
    return con


_open: list[Any] = []


@pytest.fixture
def close_later() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


@pytest.mark.usefixtures("close_later")
@pytest.mark.parametrize(
    ("make", "kind", "executor"),
    [
        (_lambda, "function", "sequential"),
        (_lock, "lock", "sequential"),
        (_socket, "socket", "sequential"),
        (_connection, "Connection", "sequential"),
        (_lock, "lock", "threads"),
        (_lambda, "function", "processes"),
    ],
    ids=["lambda", "lock", "socket", "connection", "lock-threads", "lambda-processes"],
)
def test_an_unpicklable_result_fails_that_task_only_and_keeps_the_previous_result(
    pipelines: Callable[..., lp.Pipeline], make: Callable[[], Any], kind: str, executor: str
) -> None:
    p = pipelines("Unpicklable")
    bad_now = {"on": False}

    @p.task
    def source() -> int:
        return 1

    @p.task
    def bad(source: int) -> Any:
        return make() if bad_now["on"] else "good old result"

    @p.task
    def below(bad: Any) -> str:
        return "below"

    @p.task
    def sibling(source: int) -> str:
        return "sibling"

    p.execute(executor=executor)
    bad_now["on"] = True
    report = p.execute(force_tasks=["bad", "sibling"], executor=executor)

    assert report["bad"].status == "failed"
    assert kind in report["bad"].error and "cannot be stored" in report["bad"].error
    assert report["sibling"].status == "executed"  # other branches still run
    assert report["below"].status == "failed"  # needs what could not be stored
    with pytest.raises(lp.PipelineFailedError, match=rf"bad: .*{kind}"):
        report.raise_for_failures()
    assert p.get_result("bad") == "good old result"
    assert p.execute().failed == []  # the kept result is still valid: nothing to redo


# -- 4. a full disk ----------------------------------------------------------------------


def _disk_full_for(monkeypatch: pytest.MonkeyPatch, key_part: str, *, midway: bool) -> None:
    """Make diskcache's own write fail with ENOSPC for keys containing `key_part`.

    midway: fail after half the bytes were written (the file exists, half full),
    as a real full disk does; otherwise fail before anything is written.
    """
    original_store = diskcache.core.Disk.store
    original_write = diskcache.core.Disk._write
    state = {"key": ""}

    def store(self: Any, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        state["key"] = str(key)
        if key_part in str(key) and not midway:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original_store(self, value, read, key=key)

    def write(self: Any, full_path: str, iterator: Any, mode: str, encoding: Any = None) -> Any:
        if key_part in state["key"]:
            data = b"".join(iterator)
            os.makedirs(os.path.dirname(full_path), exist_ok=True)
            with open(full_path, mode) as f:
                f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original_write(self, full_path, iterator, mode, encoding)

    monkeypatch.setattr(diskcache.core.Disk, "store", store)
    monkeypatch.setattr(diskcache.core.Disk, "_write", write)


def _row_refused_for(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make SQLite refuse, as a full disk does (SQLITE_FULL), any statement writing the
    store's row of task `name` (its record, with a small value beside it)."""
    plain = diskcache.Cache._sql

    def sql(cache: Any) -> Callable[..., Any]:
        execute = plain.fget(cache)

        def run(statement: str, params: Any = ()) -> Any:
            if (statement.startswith(("INSERT", "UPDATE")) and "lp_records" in statement
                    and name in params):
                e = sqlite3.OperationalError("database or disk is full")
                e.sqlite_errorcode = 13  # type: ignore[attr-defined]
                raise e
            return execute(statement, params)

        return run

    monkeypatch.setattr(diskcache.Cache, "_sql", property(sql))


@pytest.mark.parametrize(
    ("key_part", "midway"),
    [("lp:file:big", False), ("lp:file:big", True), ("record:big", False)],
    ids=["value-refused", "value-half-written", "record-refused"],
)
def test_a_full_disk_fails_that_task_clearly_and_loses_nothing(
    pipelines: Callable[..., lp.Pipeline], monkeypatch: pytest.MonkeyPatch,
    key_part: str, midway: bool,
) -> None:
    p = pipelines("Full")
    size = {"n": 100_000}

    @p.task
    def big() -> bytes:
        return b"b" * size["n"]

    @p.task
    def small() -> int:
        return 7

    p.execute()
    before = sorted((p.folder / "cache").rglob("*.val"))
    size["n"] = 200_000
    if key_part == "record:big":  # the row of record (and small value) is refused
        _row_refused_for(monkeypatch, "big")
    else:
        _disk_full_for(monkeypatch, key_part, midway=midway)

    report = p.execute(force=True)

    assert report["big"].status == "failed"
    full = "the disk is full" if key_part == "record:big" else "No space left on device"
    assert full in report["big"].error
    assert "previous result is kept" in report["big"].error
    assert report["small"].status == "executed"  # nothing else is lost
    monkeypatch.undo()
    assert p.get_result("big") == b"b" * 100_000  # the old value and its record survive
    assert sorted((p.folder / "cache").rglob("*.val")) == before  # no half-written leftovers
    assert p.execute().cached == ["big", "small"]


def test_the_first_write_failing_leaves_no_record(
    pipelines: Callable[..., lp.Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = pipelines("FullFirst")
    p.task(name="big")(lambda: b"x" * 100_000)
    _disk_full_for(monkeypatch, "lp:file:big", midway=True)
    assert p.execute().failed == ["big"]
    monkeypatch.undo()
    assert p.record("big") is None
    assert list((p.folder / "cache").rglob("*.val")) == []
    assert p.execute().executed == ["big"]


# -- 5. bad definitions and arguments: clear errors before anything runs ---------------------


def _pipeline_with(ran: list[str], *tasks: lp.Task) -> lp.Pipeline:
    p = lp.Pipeline("Bad")

    @p.task
    def fine() -> None:
        ran.append("fine")

    p.add(*tasks)
    return p


def _classic(name: str, deps: list[str] | None = None, run: Any = None, **kw: Any) -> lp.Task:
    t = lp.Task(name, dependencies=deps, **kw)
    if run is not None:
        t.process(run)
    return t


def _run(this: Any) -> int:
    return 1


def _run_without_this() -> int:
    return 1


_run_without_this.__name__ = "run"


def _run_with_extra(this: Any, extra: Any) -> int:
    return 1


_run_with_extra.__name__ = "run"
_run.__name__ = "run"

DEFINITION_ERRORS: dict[str, tuple[Callable[[list[str]], lp.Pipeline], type, list[str]]] = {
    "unknown dependency": (
        lambda ran: _pipeline_with(ran, _classic("b", ["fien"], _run)),
        PipelineValidationError, ["'fien'", "Did you mean 'fine'"],
    ),
    "cycle": (
        lambda ran: _pipeline_with(ran, _classic("a", ["b"], _run), _classic("b", ["a"], _run)),
        PipelineValidationError, ["'a' -> 'b' -> 'a'"],
    ),
    "duplicate name": (
        lambda ran: _pipeline_with(ran, _classic("a", None, _run), _classic("a", None, _run)),
        PipelineValidationError, ["'a'", "unique", "rename"],
    ),
    "missing run": (
        lambda ran: _pipeline_with(ran, _classic("a")),
        AttributeError, ["missing 'run' method", "@a.process"],
    ),
    "run without this": (
        lambda ran: _pipeline_with(ran, _classic("a", None, _run_without_this)),
        PipelineValidationError, ["'a'", "def run(this)", "run()"],
    ),
    "run with an extra argument": (
        lambda ran: _pipeline_with(ran, _classic("a", None, _run_with_extra)),
        PipelineValidationError, ["'a'", "def run(this)", "extra"],
    ),
}


@pytest.mark.parametrize("case", list(DEFINITION_ERRORS))
def test_a_bad_definition_is_a_clear_error_before_anything_runs(case: str) -> None:
    build, error, words = DEFINITION_ERRORS[case]
    ran: list[str] = []
    p = build(ran)
    with pytest.raises(error) as info:
        p.execute()
    for word in words:
        assert word in str(info.value)
    assert ran == []
    assert not (p.folder / "cache").exists()  # not even the store was opened
    p.close()


def test_a_function_parameter_naming_no_task_is_a_clear_error() -> None:
    ran: list[str] = []
    p = _pipeline_with(ran)

    @p.task
    def load(fnie: int) -> int:
        return fnie

    with pytest.raises(PipelineValidationError, match=r"'fnie'.*no task.*Did you mean 'fine'"):
        p.execute()
    assert ran == []


@pytest.mark.parametrize("spec", ["missing.csv", "data/*.csv", "no_folder"])
def test_an_input_that_matches_nothing_is_a_clear_error(spec: str) -> None:
    ran: list[str] = []
    p = _pipeline_with(ran)
    p.task(name="reader", input_files=[spec])(lambda: 1)
    with pytest.raises(MissingInputError, match=r"'reader'.*matches no file.*Create the file"):
        p.execute()
    assert ran == []


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: lp.Task("t", expire_results="tomorrow"), TypeError,
         ["'tomorrow'", "lp.expire.at_midnight()"]),
        (lambda: lp.Task("t", expire_results=3600), TypeError, ["3600", "from_now"]),
        (lambda: lp.Task("t", expire_results=lp.expire.at_midnight), TypeError,
         ["call it", "at_midnight()"]),
        (lambda: lp.expire.weekly(days=("funday",)), ValueError, ["Invalid weekday", "monday"]),
        (lambda: lp.expire.weekly(days=()), ValueError, ["Must specify at least one weekday"]),
        (lambda: lp.expire.monthly(days=(32,)), ValueError, ["1..31", "32"]),
        (lambda: lp.expire.from_now(days=-1), ValueError, ["non-negative", "-1"]),
        (lambda: lp.expire.at_datetime("soon"), TypeError, ["'soon'", "datetime"]),
    ],
    ids=["string", "number", "uncalled-factory", "weekday", "no-weekday", "day-32",
         "negative", "not-a-date"],
)
def test_a_bad_expiry_is_a_clear_error_at_definition(
    make: Callable[[], Any], error: type, words: list[str]
) -> None:
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_an_expiry_function_returning_nonsense_is_an_error_before_anything_runs() -> None:
    ran: list[str] = []
    p = _pipeline_with(ran)

    @p.task(expire_results=lambda: "soon")
    def work() -> int:
        ran.append("work")
        return 1

    with pytest.raises(TaskDefinitionError, match=r"'work'.*expire_results.*'soon'.*Fix"):
        p.execute()
    assert ran == []


@pytest.mark.parametrize("option", ["targets", "force_tasks", "skip_tasks"])
def test_an_unknown_task_name_in_an_option_is_a_clear_error(option: str) -> None:
    ran: list[str] = []
    p = _pipeline_with(ran)
    with pytest.raises(UnknownTaskError, match=rf"'fien' in {option}.*Did you mean 'fine'"):
        p.execute(**{option: ["fien"]})
    assert ran == []


def test_an_unknown_executor_is_a_clear_error_before_anything_runs() -> None:
    ran: list[str] = []
    p = _pipeline_with(ran)
    with pytest.raises(ExecutorError, match=r"'thread'.*'threads'"):
        p.execute(executor="thread")
    assert ran == []
    p.close()


@pytest.mark.parametrize("name", ["../x", "", "/", "a/b", "..", "."])
def test_an_unsafe_pipeline_name_is_refused(name: str, isolated_home: Path) -> None:
    with pytest.raises(ValueError, match=r"not a safe folder name.*e\.g\. 'sales_etl'"):
        lp.Pipeline(name)
    assert not isolated_home.exists() or list(isolated_home.iterdir()) == []


# -- 6. time and clocks ---------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the library's clock (naive datetimes are local wall-clock readings)."""

    def set_to(now: datetime) -> None:
        monkeypatch.setattr(expire, "_get_now", lambda: now)

    return set_to


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("policy", [None, lp.expire.from_now(days=30)], ids=["never", "30-days"])
def test_a_result_stored_in_the_future_is_expired_when_the_clock_moves_back(
    pipelines: Callable[..., lp.Pipeline], clock: Callable[[datetime], None], policy: Any
) -> None:
    p = pipelines("Clock")
    p.task(name="t", expire_results=policy)(lambda: 1)
    clock(datetime(2026, 6, 1, 12, 0))
    p.execute()
    clock(datetime(2026, 6, 1, 12, 0, 0, 500_000))  # half a second: ordinary jitter
    assert p.execute().cached == ["t"]

    clock(datetime(2026, 5, 31, 12, 0))  # the clock jumped back a day
    report = p.execute()
    assert report.executed == ["t"]
    assert report["t"].reasons[0].kind == "clock_moved_back"
    assert p.execute().cached == ["t"]  # stored anew at the earlier time, then kept


@pytest.mark.usefixtures("new_york")
def test_at_midnight_expires_at_midnight_across_spring_forward(
    pipelines: Callable[..., lp.Pipeline], clock: Callable[[datetime], None]
) -> None:
    # 2026-03-08 has 23 hours in New York: 02:00 EST jumps to 03:00 EDT.
    p = pipelines("Spring")
    p.task(name="t", expire_results=lp.expire.at_midnight())(lambda: 1)
    clock(datetime(2026, 3, 8, 0, 30))
    p.execute()
    clock(datetime(2026, 3, 8, 23, 59, 59))  # 22.5 elapsed hours, still the same day
    assert p.execute().cached == ["t"]
    clock(datetime(2026, 3, 9, 0, 0, 1))
    assert p.execute().executed == ["t"]


@pytest.mark.usefixtures("new_york")
def test_expiry_in_the_repeated_hour_of_fall_back(
    pipelines: Callable[..., lp.Pipeline], clock: Callable[[datetime], None]
) -> None:
    # 2026-11-01: 01:00-02:00 happens twice. An hour stored at the first 01:10 EDT
    # expires at 01:10 EST, an hour of elapsed time later, not at once and not after two.
    from datetime import UTC

    p = pipelines("Fall")
    p.task(name="t", expire_results=lp.expire.from_now(hours=1))(lambda: 1)
    clock(datetime(2026, 11, 1, 5, 10, tzinfo=UTC))  # 01:10 EDT
    p.execute()
    clock(datetime(2026, 11, 1, 6, 9, tzinfo=UTC))  # 01:09 EST: wall clock went back
    assert p.execute().cached == ["t"]
    clock(datetime(2026, 11, 1, 6, 10, tzinfo=UTC))  # 01:10 EST
    assert p.execute().executed == ["t"]


# -- 7. files changing under a run ------------------------------------------------------------


def test_an_input_changed_while_its_task_runs_is_run_again_next_time(
    pipelines: Callable[..., lp.Pipeline], tmp_path: Path, messages: list[str]
) -> None:
    data = tmp_path / "data.txt"
    data.write_text("old")
    original = data.stat().st_mtime_ns
    p = pipelines("Moving")
    during = {"change": True}

    @p.task(input_files=["data.txt"])
    def read() -> str:
        if during["change"]:
            # Another program rewrites the file after the fingerprint was taken,
            # before the task reads it.
            data.write_text("new")
            os.utime(data, ns=(original + 10**9, original + 10**9))
        return data.read_text()

    assert p.execute().executed == ["read"]
    assert p.get_result("read") == "new"
    assert any("'data.txt' changed while the task ran" in m for m in messages)

    # The file goes back to its old content and mtime, the ones fingerprinted
    # before the run: the stored result ("new") must not pass for them.
    data.write_text("old")
    os.utime(data, ns=(original, original))
    during["change"] = False
    report = p.execute()
    assert report.executed == ["read"]
    assert p.get_result("read") == "old"
    assert p.execute().cached == ["read"]  # and settles once nothing moves


def test_an_input_deleted_while_its_task_runs_is_run_again_next_time(
    pipelines: Callable[..., lp.Pipeline], tmp_path: Path, messages: list[str]
) -> None:
    data = tmp_path / "data.txt"
    data.write_text("x")
    p = pipelines("Vanishing")

    @p.task(input_files=["data.txt"])
    def read() -> str:
        text = data.read_text()
        data.unlink()
        return text

    p.execute()
    assert any("changed while the task ran" in m for m in messages)
    data.write_text("x")
    assert p.execute().executed == ["read"]


def test_inputs_that_stay_put_give_no_warning(
    pipelines: Callable[..., lp.Pipeline], tmp_path: Path, messages: list[str]
) -> None:
    (tmp_path / "data.txt").write_text("x")
    p = pipelines("Still")
    p.task(name="read", input_files=["data.txt"])(lambda: 1)
    p.execute()
    assert not any("changed while" in m for m in messages)
    assert p.execute().cached == ["read"]


# -- 8. nobody else's pickles ------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_and_log_folders_are_private(pipelines: Callable[..., lp.Pipeline]) -> None:
    p = pipelines("Private")
    p.task(name="t")(lambda: 1)
    p.execute()
    for folder in (p.folder, p.folder / "cache", p.log_dir):
        assert _mode(folder) == 0o700, folder


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777], ids=["group", "others", "everyone"])
def test_a_store_writable_by_others_is_refused_with_a_chmod_hint(
    pipelines: Callable[..., lp.Pipeline], mode: int
) -> None:
    p = pipelines("Shared")
    ran: list[int] = []
    p.task(name="t")(lambda: ran.append(1))
    p.execute()
    p.close()
    os.chmod(p.folder, mode)
    with pytest.raises(UnsafeStoreError) as info:
        p.execute()
    text = str(info.value)
    assert str(p.folder) in text and "writable by group or others" in text
    assert f"chmod go-w '{p.folder}'" in text
    assert isinstance(info.value, PermissionError)
    os.chmod(p.folder, 0o700)  # the fix the message gives works
    assert p.execute().cached == ["t"]
    assert ran == [1]


def test_a_writable_cache_folder_inside_a_private_store_is_refused(
    pipelines: Callable[..., lp.Pipeline]
) -> None:
    p = pipelines("Inner")
    p.task(name="t")(lambda: 1)
    p.execute()
    p.close()
    os.chmod(p.folder / "cache", 0o777)
    with pytest.raises(UnsafeStoreError, match="chmod go-w"):
        p.execute()


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
def test_a_store_owned_by_someone_else_is_refused(
    pipelines: Callable[..., lp.Pipeline], tmp_path: Path
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    p = pipelines("Theirs", cache_dir=theirs)
    p.task(name="t")(lambda: 1)
    with pytest.raises(UnsafeStoreError, match=r"owned by user id 12345.*folder of your own"):
        p.execute()
    # A symlink to it is no way around the check.
    (tmp_path / "mine").symlink_to(theirs)
    with pytest.raises(UnsafeStoreError, match="owned by user id 12345"):
        Store(tmp_path / "mine")



# -- issue 11: deep graphs, an unreachable scheduler --------------------------------------
def test_a_chain_of_a_thousand_tasks_is_drawn_and_walked_without_recursion(
    tmp_path: Path,
) -> None:
    import io

    from little_pipelines import graph
    from little_pipelines.cli import main
    from little_pipelines.render import make_console

    script = tmp_path / "chain.py"
    script.write_text(
        "import little_pipelines as lp\n"
        "p = lp.Pipeline('Chain')\n"
        "prev = None\n"
        "for i in range(1200):\n"
        "    p.add(lp.Task.from_function(lambda: 1, name=f't{i}',\n"
        "                                dependencies=[prev] if prev else None))\n"
        "    prev = f't{i}'\n"
    )
    for fmt in ("tree", "mermaid", "dot"):
        out, err = io.StringIO(), io.StringIO()
        code = main(["graph", str(script), "--format", fmt],
                    console=make_console(out, width=100, color_system=None),
                    err_console=make_console(err, width=100, color_system=None))
        assert code == 0, err.getvalue()
        assert "t0" in out.getvalue()
    deps = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(5000)}
    assert graph.order(deps)[-1] == "t4999"
    assert len(graph.upstream(deps, ["t4999"])) == 5000
    assert len(graph.downstream(deps, ["t0"])) == 5000
    assert graph.check(deps) == ([], None)


def test_an_unreachable_scheduler_is_one_line_naming_it_and_how_to_start_one(
    tmp_path: Path,
) -> None:
    pytest.importorskip("dask.distributed")
    script = tmp_path / "one.py"
    script.write_text("import little_pipelines as lp\np = lp.Pipeline('One')\n"
                      "p.task(name='a')(lambda: 1)\n")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "little_pipelines", "run", str(script), "--scheduler",
         f"tcp://127.0.0.1:{port}"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"tcp://127.0.0.1:{port}" in done.stderr and "dask scheduler" in done.stderr
