"""Ordinary faults of the store's disk never throw a sound store away (issue 11).

Real conditions only: an immutable `cache.db` (chattr +i, which stops root too),
a second process holding SQLite's write lock with BEGIN IMMEDIATE, a full disk
(a small tmpfs mounted for the test), `umask 000`. Where a condition cannot be
made here (no root, no chattr, no mount), the test is skipped and says why.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from loguru import logger

import little_pipelines as lp
from little_pipelines import history
from little_pipelines.errors import StoreError
from little_pipelines.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _damaged(folder: Path) -> list[Path]:
    return sorted(folder.glob("cache.damaged-*"))


def _stored(pipelines: Callable[..., lp.Pipeline], name: str = "Sound") -> lp.Pipeline:
    p = pipelines(name)
    p.task(name="t")(lambda: 41)
    assert p.execute().executed == ["t"]
    p.close()
    return p


# -- a read-only cache.db ----------------------------------------------------------------
@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """chattr +i a file (undone after the test); skips where chattr is not possible."""
    made: list[Path] = []

    def freeze(path: Path) -> None:
        if shutil.which("chattr") is None:
            pytest.skip("chattr is not installed")
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")
        made.append(path)

    yield freeze
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_read_only_store_is_a_clear_error_and_is_not_moved_aside(
    pipelines: Callable[..., lp.Pipeline], immutable: Callable[[Path], None]
) -> None:
    p = _stored(pipelines)
    immutable(p.folder / "cache" / "cache.db")  # as root, chmod would not stop writes

    with pytest.raises(StoreError) as info:
        p.execute()

    message = str(info.value)
    assert "read-only" in message or "could not be opened" in message, message
    assert "To fix:" in message and "left as it was" in message
    assert _damaged(p.folder) == []  # the store is where it was
    subprocess.run(["chattr", "-i", str(p.folder / "cache" / "cache.db")], check=True)
    p.close()
    assert p.execute().cached == ["t"]  # and nothing was lost


# -- another process holding the write lock ---------------------------------------------
_HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.execute("COMMIT")
    print("released", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def holder() -> Iterator[Callable[[Path, float], subprocess.Popen[str]]]:
    """Start a real process that holds SQLite's write lock on a database for a while."""
    procs: list[subprocess.Popen[str]] = []

    def start(db: Path, seconds: float) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db), str(seconds)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_store_locked_by_another_process_gives_up_naming_it_and_is_not_moved_aside(
    pipelines: Callable[..., lp.Pipeline], holder: Callable[[Path, float], subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = _stored(pipelines)
    proc = holder(p.folder / "cache" / "cache.db", 120)
    monkeypatch.setenv("LITTLE_PIPELINES_LOCK_WAIT", "0.5")

    with pytest.raises(StoreError) as info:
        p.execute()

    message = str(info.value)
    assert f"PID {proc.pid}" in message and "LITTLE_PIPELINES_LOCK_WAIT" in message
    assert _damaged(p.folder) == []
    proc.kill()
    proc.wait()
    p.close()
    assert p.execute().cached == ["t"]


def test_a_write_blocked_past_the_wait_fails_naming_the_holder_and_keeps_the_old_result(
    tmp_path: Path, holder: Callable[[Path, float], subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lock taken after the store opened: the write (the store's own transaction)
    waits the same limit, then fails with the holder's PID; nothing is lost."""
    import pickle

    from little_pipelines.fingerprint import digest_bytes

    monkeypatch.setenv("LITTLE_PIPELINES_LOCK_WAIT", "0.5")
    store = Store(tmp_path / "s")
    old, new = pickle.dumps("old"), pickle.dumps("new")
    store.put("t", old, {"digest": digest_bytes(old)})
    proc = holder(tmp_path / "s" / "cache" / "cache.db", 120)

    with pytest.raises(StoreError) as info:
        store.put("t", new, {"digest": digest_bytes(new)})

    assert f"PID {proc.pid}" in str(info.value) and "LITTLE_PIPELINES_LOCK_WAIT" in str(info.value)
    proc.kill()
    proc.wait()
    assert store.load("t") == "old"
    store.put("t", new, {"digest": digest_bytes(new)})  # the lock is free: the write goes through
    assert store.load("t") == "new"
    store.close()


def test_a_run_waits_for_another_process_writing_saying_who_then_goes_on(
    pipelines: Callable[..., lp.Pipeline], holder: Callable[[Path, float], subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = _stored(pipelines)
    monkeypatch.setenv("LITTLE_PIPELINES_LOCK_WAIT", "60")
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    try:
        proc = holder(p.folder / "cache" / "cache.db", 1.0)
        report = p.execute()
    finally:
        logger.remove(sink)
    assert report.cached == ["t"]
    assert any(f"PID {proc.pid}" in line and "waiting" in line for line in said), said
    assert _damaged(p.folder) == []


def test_only_proven_corruption_counts_as_damage() -> None:
    """The classification, on the exceptions real SQLite calls raise."""
    from little_pipelines.sqlitefaults import is_corruption

    def error_of(setup: Callable[[Path], sqlite3.Connection], path: Path) -> sqlite3.Error:
        try:
            setup(path).execute("CREATE TABLE t(x)")
        except sqlite3.Error as e:
            return e
        raise AssertionError("no error")

    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    garbage = tmp / f"lp-not-a-db-{os.getpid()}"
    garbage.write_bytes(b"this is not a database at all" * 200)
    try:
        assert is_corruption(error_of(sqlite3.connect, garbage))
    finally:
        garbage.unlink()
    readonly = tmp / f"lp-ro-{os.getpid()}.db"
    sqlite3.connect(readonly).close()
    try:
        e = error_of(lambda q: sqlite3.connect(f"file:{q}?mode=ro", uri=True), readonly)
        assert "readonly" in str(e) and not is_corruption(e)
    finally:
        readonly.unlink()


# -- a full disk ---------------------------------------------------------------------------
def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_at_open_is_a_clear_error_and_the_store_is_kept(
    tiny_disk: Path, pipelines: Callable[..., lp.Pipeline]
) -> None:
    p = pipelines("OnTiny", cache_dir=tiny_disk / "store")
    p.task(name="t")(lambda: 41)
    p.execute()
    p.close()
    filler = _fill(tiny_disk)
    for _ in range(2):  # each run on a full disk used to add another cache.damaged-*
        try:
            Store(p.folder).close()
        except StoreError as e:
            assert "disk is full" in str(e) and "free space" in str(e), e
    assert _damaged(p.folder) == []
    filler.unlink()
    assert p.execute().cached == ["t"]


def test_a_full_disk_at_the_end_of_a_run_still_shows_the_summary(
    tiny_disk: Path, tmp_path: Path
) -> None:
    script = tmp_path / "fill.py"
    # The logs go elsewhere: log folders on a full disk are the issue-15 work (item 14).
    script.write_text(textwrap.dedent(f"""
        import little_pipelines as lp
        p = lp.Pipeline("Fill", cache_dir={str(tiny_disk / "store")!r},
                        log_dir={str(tmp_path / "logs")!r})

        @p.task
        def first():
            return 1

        @p.task
        def filler(first):
            with open({str(tiny_disk / "filler")!r}, "wb") as f:
                try:
                    while True:
                        f.write(b"\\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            return 2
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "little_pipelines", "run", str(script)],
                          capture_output=True, text=True, env=env, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode in (0, 1), out  # as the tasks decided, not 2 ("could not be written")
    assert "first" in done.stdout and "Traceback" not in out, out
    assert "1 failed" in done.stdout or "failed" in done.stdout, out  # the summary is shown
    run_log = (tmp_path / "logs" / "_pipeline.log").read_text()
    assert "not added to the history" in run_log, run_log  # the warning says what was lost
    (tiny_disk / "filler").unlink()
    again = lp.Pipeline("Fill", cache_dir=tiny_disk / "store")
    again.task(name="first")(lambda: 1)
    assert again.record("first") is not None  # what finished before the disk filled is kept
    again.close()


# -- umask 000 -----------------------------------------------------------------------------
def test_every_folder_the_library_makes_is_private_even_under_umask_000(tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "deeper" / ".little_pipelines"
    code = textwrap.dedent(f"""
        import os
        os.umask(0)
        from little_pipelines.store import Store
        Store(__import__("pathlib").Path({str(home / "P")!r})).close()
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    for folder in (tmp_path / "fresh", tmp_path / "fresh" / "deeper", home, home / "P",
                   home / "P" / "cache"):
        mode = stat.S_IMODE(folder.stat().st_mode)
        assert mode & 0o077 == 0, f"{folder} has mode {oct(mode)}"


# -- history at scale ----------------------------------------------------------------------
def test_history_keeps_one_bounded_row_per_run(pipelines: Callable[..., lp.Pipeline]) -> None:
    p = pipelines("Hist")
    store = p._store_or_open()
    many = [f"task_{i}" for i in range(5000)]
    for i in range(3):
        history.add(store, {"run_id": str(i), "started_at": float(i), "duration": 1.0,
                            "saved": 0.0, "counts": {"failed": len(many)}, "failed": many})
    runs = p.history()
    assert [r["run_id"] for r in runs] == ["0", "1", "2"]
    assert all(r["failed_count"] == 5000 and len(r["failed"]) <= 20 for r in runs)
    # each run is its own small row: no blob holding every run's names
    sizes = store.cache._sql("SELECT key, size FROM Cache WHERE key LIKE 'lp:run:%'").fetchall()
    assert len(sizes) == 3 and all(size == 0 for _, size in sizes)  # small: kept in the db row


def test_history_is_capped_and_an_old_list_is_still_read(
    pipelines: Callable[..., lp.Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = pipelines("Old")
    store = p._store_or_open()
    store.cache.set("lp:history", [{"run_id": f"old{i}", "counts": {}} for i in range(3)])
    assert [r["run_id"] for r in p.history()] == ["old0", "old1", "old2"]
    monkeypatch.setattr(history, "KEPT", 4)
    for i in range(3):
        history.add(store, {"run_id": f"new{i}", "counts": {}, "failed": []})
    assert [r["run_id"] for r in p.history()] == ["old2", "new0", "new1", "new2"]
    assert store.cache.get("lp:history") is None  # moved into rows once
