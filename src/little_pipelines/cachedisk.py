"""diskcache plumbing for the store: a Disk that holds back file removals until commit,
value files written before their row, a Cache whose `clear` also empties the store's
own table (with a lean write transaction), its opening with every page checked, and
the folder lock held while a store opens.

Like `store`, a room that touches diskcache (the store's only helper that does).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import diskcache

from .valuefiles import DamagedValue, Pickled

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class Corrupt(sqlite3.DatabaseError):
    """Damage proven by our own checks (quick_check failed, the file was emptied)."""


class HoldingDisk(diskcache.Disk):
    """diskcache's Disk, with the removal of replaced value files held back until commit.

    diskcache deletes the file of a value it replaces as soon as its own `set`
    returns, even inside an enclosing transaction: a failure or a kill between
    that `set` and our commit left the old record pointing at a deleted file, and
    the previous result was lost. During `Store.put` removals are collected and
    done after the commit; if the put fails, the files it wrote are removed
    instead. A kill in between leaves at worst an unreferenced file, never a
    record without its value.
    """

    def __init__(self, directory: str, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self._put = threading.local()

    def filename(self, key: Any = diskcache.UNKNOWN, value: Any = diskcache.UNKNOWN) -> Any:
        name, full_path = super().filename(key, value)
        staged = getattr(self._put, "staged", None)
        if staged is not None:
            staged[0].append(name)
        return name, full_path

    def new_file(self) -> tuple[str, IO[bytes]]:
        """A new value file, opened for writing (`valuefiles.dump` spills a large pickle
        into it); its path."""
        _filename, full_path = self.filename()
        os.makedirs(os.path.dirname(full_path), exist_ok=True)
        return full_path, open(full_path, "xb")

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: str | None = None) -> Any:
        # diskcache iterates an io.BytesIO of the value, i.e. line by line: a 100 MB
        # pickle with ~400,000 newline bytes took ~110 ms in tiny writes against
        # ~24 ms in one. Hand the bytes over whole (getvalue() does not copy them).
        if isinstance(iterator, io.BytesIO):
            iterator = iter([iterator.getvalue()])
        return super()._write(full_path, iterator, mode, encoding)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if isinstance(value, Prewritten):  # a value file `Store.pickle` already wrote
            return value.pickled.size, diskcache.core.MODE_BINARY, value.filename, None
        return super().store(value, read, key)

    def remove(self, file_path: str) -> None:
        staged = getattr(self._put, "staged", None)
        if staged is not None:
            staged[1].append(file_path)
        else:
            super().remove(file_path)

    @contextlib.contextmanager
    def staged(self) -> Iterator[None]:
        """Hold back removals until the block succeeds; undo its new files if it fails."""
        written: list[str] = []
        replaced: list[str] = []
        self._put.staged = (written, replaced)
        try:
            yield
        except BaseException:
            self._put.staged = None
            for name in written:
                super().remove(name)
            raise
        self._put.staged = None
        for name in replaced:
            super().remove(name)


#: The store's own table of records (`recordtable`), named here so `StoreCache` can empty it.
RECORDS_TABLE = "lp_records"


class StoreCache(diskcache.Cache):
    """diskcache's Cache, whose `clear()` also empties the store's table of records
    (`recordtable`): `pipeline.cache.clear()` forgets every stored result, as it did
    when records were diskcache keys; and a write transaction without `transact()`'s
    machinery, for the store's hot path (`begin`, `commit`, `rollback`)."""

    _txn_id: int | None  # diskcache's: the thread whose transaction is open
    _opening = False  # while diskcache's __init__ runs (see `close`)

    def __init__(self, directory: str, timeout: float = 60, disk: type = HoldingDisk,
                 **settings: Any) -> None:
        # diskcache's __setstate__ calls __init__(directory, timeout, disk): positional.
        self._opening = True
        try:
            super().__init__(directory, timeout=timeout, disk=disk, **settings)
        finally:
            self._opening = False
        # The connection kept has the timeout diskcache opens with (0: it retries by hand).
        self._con.execute(f"PRAGMA busy_timeout = {min(int(timeout * 1000), 2**31 - 1)}")

    def close(self) -> None:
        # diskcache's __init__ ends by closing its connection to open another with the
        # caller's timeout: on the store's only connection, that close checkpoints and
        # deletes the WAL, and the reopen makes it again and sets every pragma again
        # (~1 ms a run). The connection is kept instead, and given the timeout.
        if not self._opening:
            super().close()

    def clear(self, retry: bool = False) -> int:
        # The records first, in one transaction: a crash before diskcache's own
        # (batched) clear ends leaves value rows no record points to, never a
        # record whose value is gone.
        with self.transact(retry):
            count = self._sql(f"DELETE FROM {RECORDS_TABLE}").rowcount
        return int(count) + int(super().clear(retry))

    def quick_check(self) -> str:
        """SQLite's verdict on every page of the database: "ok", or what is wrong."""
        (verdict,) = self._sql("PRAGMA quick_check(1)").fetchone()
        return str(verdict)

    def begin(self) -> Callable[..., Any] | None:
        """BEGIN IMMEDIATE through this thread's `_sql` (returned: the caller's statements
        go through it, one look-up of diskcache's per-thread connection for the whole
        write), marked as diskcache's own transaction so its calls inside join it; None
        (nothing begun) if this thread is in one.

        What `transact()` does without its two generator context managers (~3 us a
        write): the same wait for the lock (the connection's timeout), after which
        "database is locked" is raised as it is (`transact()` raises Timeout).
        """
        tid = threading.get_ident()
        if self._txn_id == tid:
            return None
        sql: Callable[..., Any] = self._sql
        sql("BEGIN IMMEDIATE")
        self._txn_id = tid
        return sql

    def alone(self) -> Callable[..., Any] | None:
        """This thread's `_sql` if it is in no transaction: a statement run through it is
        its own transaction (SQLite's autocommit: the write lock taken, with the same
        wait, for the statement, committed or rolled back whole when it ends), with no
        BEGIN and COMMIT of its own (~3 us a write). None inside a transaction."""
        if self._txn_id is not None and self._txn_id == threading.get_ident():
            return None
        sql: Callable[..., Any] = self._sql
        return sql

    def commit(self, sql: Callable[..., Any]) -> None:
        """Commit what `begin` began (`sql`: what it returned); if COMMIT fails, call
        `rollback`."""
        self._txn_id = None
        sql("COMMIT")

    def rollback(self) -> None:
        """End what `begin` began without a trace (also after a failed COMMIT, which
        leaves SQLite's transaction open)."""
        self._txn_id = None
        con = self._con
        with contextlib.suppress(sqlite3.Error):
            if con.in_transaction:
                con.execute("ROLLBACK")


def open_checked(folder: Path, timeout: float) -> StoreCache:
    """The store's diskcache in `folder`, every page of its database checked first:
    raises `Corrupt` (or SQLite's own error) for a damaged one, at open, not in the
    middle of a run. `timeout`: SQLite's own wait for its write lock, the backstop
    behind `wait_for_writer` (which only sees a lock taken before it looked)."""
    db = folder / "cache.db"
    if not db.exists():
        _create(db)
    elif db.stat().st_size == 0:
        # SQLite would take an emptied file for a new database and say nothing.
        raise Corrupt("cache.db was truncated to nothing")
    # eviction_policy="none": a cache that silently culls results would rerun work
    # the user thinks is stored; the size is the user's to manage. cull_limit=0: no
    # culling query on every set (nothing here expires by diskcache's clock;
    # measured ~10 us a task on a cold run).
    cache = StoreCache(str(folder), eviction_policy="none", size_limit=2**62, cull_limit=0,
                       disk=HoldingDisk, timeout=timeout)
    try:
        # Walk every page: a truncated or overwritten database fails here. A cheap
        # "SELECT count(key)" was rejected: it reads the key index only and misses
        # damaged data pages. (Measured: ~5 ms for a 40 MB database, 0.1 ms for a
        # store of 1,000 small results.)
        verdict = cache.quick_check()
        if verdict != "ok":
            raise Corrupt(" ".join(verdict.split()))
    except sqlite3.DatabaseError:
        cache.close()
        raise
    return cache


def _create(db: Path) -> None:
    """A new, empty database, already in diskcache's WAL mode and auto-vacuum, made
    without fsyncs (~1.2 ms less a new store): diskcache switches a new file to WAL
    through a rollback journal synced at every step. Nothing can be lost: a crash
    leaves an empty or damaged new file, which `open_checked` moves aside."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous = 0")
        con.execute("PRAGMA auto_vacuum = 1")  # before the first page, as diskcache does
        con.execute("PRAGMA journal_mode = wal").fetchall()
    finally:
        con.close()


class Prewritten:
    """A value file already written into the cache folder, handed to diskcache by name."""

    def __init__(self, pickled: Pickled, cache: diskcache.Cache) -> None:
        assert pickled.path is not None
        self.pickled = pickled
        self.filename = os.path.relpath(pickled.path, cache.directory)


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a folder while the block runs (a no-op without fcntl)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        # A file system without flock (some network or FUSE mounts) only loses
        # this guard against a rare race, not the use of the store.
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


_SELECT_CHUNK = 500  # keys per SELECT (SQLite allows 999 variables in old builds)


def get_many(sql: Callable[..., Any], fetch: Callable[..., Any], keys: list[str]
             ) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(key, a function decoding its value as `Cache.get` would) for each of `keys`
    present: one SELECT per 500 keys instead of a `get` each (~5 µs a key). `sql` and
    `fetch` are the cache's `_sql` and its Disk's `fetch` (the store hands them over:
    it is the room that reaches into diskcache). Call it inside a transaction."""
    for i in range(0, len(keys), _SELECT_CHUNK):
        chunk = keys[i:i + _SELECT_CHUNK]
        rows = sql(
            "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 AND key IN "
            f"({','.join('?' * len(chunk))}) AND (expire_time IS NULL OR expire_time > ?)",
            (*chunk, time.time()),
        ).fetchall()
        for key, mode, filename, value in rows:
            yield key, functools.partial(fetch, mode, filename, value, False)


def present(sql: Callable[..., Any], keys: list[str]) -> list[str]:
    """Which of `keys` (str keys) have a row: one SELECT per 500, no value read."""
    found: list[str] = []
    for i in range(0, len(keys), _SELECT_CHUNK):
        chunk = keys[i:i + _SELECT_CHUNK]
        found += [key for (key,) in sql(
            f"SELECT key FROM Cache WHERE raw = 1 AND key IN ({','.join('?' * len(chunk))})",
            chunk).fetchall()]
    return found


def keys_with(sql: Callable[..., Any], prefix: str, limit: int = -1) -> list[str]:
    """The str keys that start with `prefix`, in order (one range scan of the key index)."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    rows = sql("SELECT key FROM Cache WHERE key >= ? AND key < ? AND raw = 1 ORDER BY key "
               "LIMIT ?", (prefix, end, limit)).fetchall()
    return [key for (key,) in rows]


def delete_present(sql: Callable[..., Any], cache: diskcache.Cache, keys: list[str]) -> set[str]:
    """Delete those of `keys` that exist; the keys deleted. One SELECT finds them, so a
    write that replaces nothing pays no `delete`; inside `HoldingDisk.staged()` their
    files are removed after the commit. `sql` is the cache's `_sql`."""
    found = present(sql, keys) if keys else []
    for key in found:
        cache.delete(key)
    return set(found)


def value_row(sql: Callable[..., Any], directory: str, key: str
              ) -> tuple[bytes, None] | tuple[None, str] | None:
    """(bytes, None) for a value kept in the database, (None, path) for one in a file
    (`sql`: the cache's `_sql`; `directory`: its folder).

    Read from diskcache's table directly: its `get` turns every OSError of a value
    file into "not found", which made a descriptor shortage look like a deleted
    file (and the good value was dropped as damaged).
    """
    row = sql("SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1",
              (key,)).fetchone()
    if row is None:
        return None
    mode, filename, db_value = row
    if mode == diskcache.core.MODE_RAW:
        return bytes(db_value), None
    if mode == diskcache.core.MODE_BINARY and filename:
        return None, os.path.join(directory, filename)
    raise DamagedValue(f"unexpected storage mode {mode!r} for the value under {key!r}")
