"""The store: the only module that touches diskcache (with its plumbing, `cachedisk`).

A task's *record* (fingerprint, result digest, stamps, timing, expiry) and its
*value* (the pickled result) are one row of our own table (`recordtable`) in
diskcache's SQLite database: a small value's bytes beside its record, so storing
a result is one statement; a large value in its file, held by a diskcache row
(`lp:file:<name>`) written in the same transaction. Deciding whether a task is
fresh selects the record column only and never reads a value. A crash leaves
either the old pair or the new pair, never a mix; the old pair is only ever
replaced, never deleted first.

A store written by the previous version keeps its records and values under
diskcache keys (`lp:record:<name>`, `lp:value:<name>`): they are read for a task
the table does not hold (looked for only if any existed at open), and deleted in
the transaction that gives the task its row, so they never contradict it.

Values are pickled once, here in the driver, and digested as they are written
(`valuefiles`), a large one straight into its value file (which diskcache is then
handed by name); loading streams the file into the unpickler, checking the digest.

Damage is caught where it shows: a database that fails SQLite's quick check is
moved aside on open; a value whose bytes no longer match its record's digest (a
truncated or deleted value file) is never handed on, while a value that merely
could not be read (too many open files, permissions) is kept; SQLite errors in the
middle of a run become `StoreError`, an OSError, so a task fails instead of the run.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import diskcache

from . import cachedisk, recordtable, valuefiles
from .cachedisk import Prewritten, exclusive
from .errors import StoreError, UnsafeStoreError
from .folders import secure_dir
from .log import lib_logger
from .sqlitefaults import is_corruption, lock_wait, store_error, wait_for_writer
from .valuefiles import MISSING as MISSING  # "no stored value", imported from here by callers
from .valuefiles import DamagedValue, Pickled, ValueFile

# String keys, not tuples: diskcache stores a str key as it is, while a tuple is
# pickled and run through pickletools.optimize on every call (~40 us a key here).
_FILE = recordtable.FILE_KEY  # the diskcache row holding a large value's file
_TEXT = "lp:text:"
# The previous version's layout: a record and a value per task as diskcache keys.
_OLD = _OLD_RECORD, _OLD_VALUE = "lp:record:", "lp:value:"

#: A record is a plain dict, so stores stay readable across library versions.
Record = dict[str, Any]


class Store:
    """Task records, pickled values and run history in one diskcache.Cache."""

    def __init__(self, directory: Path) -> None:
        self.directory = secure_dir(Path(directory))
        self.damaged: Path | None = None
        # data_version is a counter of each connection, and diskcache opens one per
        # thread: each thread compares against what its own connection saw (two runs
        # of one Pipeline on two threads compared each other's counters).
        self._seen_version: dict[int, int] = {}
        # Whether the previous version's keys were here at open: if not, a task the
        # table lacks has no result, and nothing of the old layout is looked up.
        self._legacy = False
        self.wait = lock_wait()
        # diskcache writes its settings on open, retrying a busy database for a
        # fixed 60 s without a word: wait here instead, naming the holder (and
        # before the guard below, so runs behind this one are not kept silent).
        self._wait_for_writer()
        # One process at a time checks (and perhaps moves aside) the database:
        # otherwise a second process that saw the damage too could move aside
        # the fresh store the first one just made.
        with exclusive(self.directory):
            try:
                self.cache = self._open()
            except (UnsafeStoreError, StoreError):
                raise  # already says what is wrong and how to fix it
            except (sqlite3.Error, diskcache.Timeout, OSError) as e:
                if not is_corruption(e):
                    # A full disk, a read-only file, a lock held by another run: the
                    # store is sound, and moving it aside would throw every result away.
                    raise self._error("opened", e) from None
                # Proven damage (truncated, overwritten): keep the files for
                # inspection, start afresh, and go on as if nothing were cached.
                self.damaged = self._move_aside()
                lib_logger.warning(
                    "The store in {} was damaged ({}); it was moved to {} and this run "
                    "starts without cached results.", self.directory, e, self.damaged,
                )
                self.cache = self._open()

    def _open(self) -> diskcache.Cache:
        cache = cachedisk.open_checked(secure_dir(self.directory / "cache"), self.wait)
        try:
            recordtable.create(cache._sql)
            self._legacy = any(cachedisk.keys_with(cache._sql, old, limit=1) for old in _OLD)
        except sqlite3.DatabaseError:
            cache.close()
            raise
        return cache

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.directory / f"cache.damaged-{stamp}-{os.getpid()}"
        os.replace(self.directory / "cache", target)
        return target

    # -- records -----------------------------------------------------------
    def record(self, name: str) -> Record | None:
        """The stored record of a task, or None (also when it cannot be read)."""
        with self.errors("read"):
            return self._record(name)

    def _record(self, name: str) -> Record | None:
        blob = recordtable.record(self.cache._sql, name)
        if blob is not None:
            return _decoded(name, blob)
        if not self._legacy:
            return None
        return _decoded(name, lambda: self.cache.get(_OLD_RECORD + name))

    def records(self, names: Iterable[str]) -> dict[str, Record]:
        """Records of many tasks, read in one transaction (one lock, one snapshot) with
        one SELECT of the record column per 500 names, not a read each."""
        wanted = list(names)
        found: dict[str, Record | None] = {}
        with self.errors("read", wait=True), self.cache.transact():
            for name, blob in recordtable.records(self.cache._sql, wanted):
                found[name] = _decoded(name, blob)
            if self._legacy:
                keys = [_OLD_RECORD + name for name in wanted if name not in found]
                for key, fetch in cachedisk.get_many(self.cache._sql, self.cache._disk.fetch, keys):
                    found[key[len(_OLD_RECORD):]] = _decoded(key[len(_OLD_RECORD):], fetch)
            self._seen_version[threading.get_ident()] = self._data_version()
        return {name: rec for name in wanted if (rec := found.get(name)) is not None}

    def untouched_by_others(self) -> bool:
        """True if no other connection has committed since `records()` was last called.

        SQLite's `data_version` changes only when another connection commits, so
        this one query (~2 us) can stand in for re-reading a record.
        """
        seen = self._seen_version.get(threading.get_ident())
        if seen is None:
            return False
        try:  # not through errors(): this runs once a task, and the context manager cost ~3 µs
            return self._data_version() == seen
        except (sqlite3.Error, diskcache.Timeout) as e:
            raise self._error("read", e) from None

    def _data_version(self) -> int:
        (version,) = self.cache._sql("PRAGMA data_version").fetchone()
        return int(version)

    def names(self) -> Iterator[str]:
        """Names of all tasks that have a record, in order."""
        with self.errors("read"):
            found = recordtable.names(self.cache._sql)
            old = self.keys_with(_OLD_RECORD) if self._legacy else []
        return iter(sorted({*found, *(key[len(_OLD_RECORD):] for key in old)}))

    def update_record(self, name: str, **changes: Any) -> None:
        """Change fields of a stored record (e.g. expire it) without touching its value."""
        with self.errors("write"), self.cache.transact():
            rec = self._record(name)
            if rec is not None:
                rec.update(changes)
                self._set_record(name, rec)

    def _set_record(self, name: str, rec: Record | None, *, drop_value: bool = False) -> None:
        """Rewrite a record where it is kept: its row, or else the previous version's key."""
        blob = None if rec is None else recordtable.encode(rec)
        if (not recordtable.set_record(self.cache._sql, name, blob, drop_value=drop_value)
                and self._legacy and rec is not None):
            self.cache.set(_OLD_RECORD + name, rec)

    # -- values ------------------------------------------------------------
    def pickle(self, name: str, value: Any) -> Pickled:
        """Pickle and digest task `name`'s value once, a large one straight into a new
        value file, referenced by nothing until `put` commits (`Pickled.discard` removes
        it if the value is not stored). Raises `UnpicklableValue` or OSError (disk full)."""
        return valuefiles.dump(value, self.cache._disk.new_file)

    def put(self, name: str, value: Pickled | bytes, record: Record) -> None:
        """Store a pickled value and its record together, atomically.

        A large value's file was written by `pickle` before this transaction; the
        row that points at it is committed with the record, so a crash leaves the
        old pair or the new pair (at worst an unreferenced file), never a record
        without its value. Raises OSError (a full disk) or StoreError; either way
        the previously stored value and record of the task are kept.
        """
        if isinstance(value, bytes):
            value = valuefiles.from_bytes(value, record.get("digest") or "")
        cache = self.cache
        if not self._legacy and self._small(value) and (alone := cache.alone()):
            # A small value, no transaction open (a sequential run's every result): ONE
            # statement, its own transaction, if no large value's row is to be replaced.
            try:
                row = (name, recordtable.encode(record), value.blob)
                return recordtable.write(alone, [row])
            except recordtable.Filed:
                pass  # nothing was written: its large value's row goes with put_many
            except sqlite3.Error as e:
                cache.rollback()  # should SQLite have left its transaction open
                raise self._error("write", e) from None
        try:
            self.put_many([(name, value, record)])
        except BaseException:
            value.discard()
            raise

    def put_many(self, items: list[tuple[str, Pickled, Record]]) -> None:
        """Store several values with their records in ONE transaction (a grouped commit).

        All or nothing: if it fails (a full disk), nothing of the group is stored and
        every value's file is kept, so the caller can store them one by one with
        `put` (one bad value then fails only its own task).
        """
        rows: list[recordtable.Row] = []
        filed: list[tuple[str, Any, bool]] = []  # a diskcache row each: name, value, from a file
        for name, value, record in items:
            small = self._small(value)
            rows.append((name, recordtable.encode(record), value.blob if small else None))
            if not small:
                stored = value.blob if value.path is None else Prewritten(value, self.cache)
                filed.append((name, stored, value.path is not None))
        try:
            self._commit(rows, filed)
        except (sqlite3.Error, diskcache.Timeout) as e:
            raise self._error("write", e) from None
        for _name, value, _record in items:
            value.path = None  # the store owns the files now

    def _small(self, value: Pickled) -> bool:
        """Whether its bytes stay in its row: under diskcache's threshold for a file."""
        blob = value.blob
        return value.path is None and blob is not None and len(blob) < self.cache.disk.min_file_size

    def _commit(self, rows: list[recordtable.Row], filed: list[tuple[str, Any, bool]]) -> None:
        """Write the rows, and the large values' rows, in one transaction. All small and
        no large value's row to replace (the rows' statement checks: `recordtable.Filed`)
        is kept lean: no file staging, no diskcache call. Otherwise, replaced files are
        removed after the commit, and files written here if it fails."""
        cache = self.cache
        sql = cache.begin()
        began = sql is not None  # else this thread's transaction is open: join it
        sql = sql or cache._sql
        try:
            try:
                if not (filed or self._legacy):
                    recordtable.write(sql, rows)
                    if began:
                        cache.commit(sql)
                    return
            except recordtable.Filed:
                pass  # those rows' large values' rows go below, the rows written again
            with cache._disk.staged():
                for name, stored, read in filed:
                    cache.set(_FILE + name, stored, read=read)
                # Replaced (removed after the commit): large values' files, old keys.
                now_filed = {name for name, _stored, _read in filed}
                names = [name for name, _r, _v in rows]
                self._delete_keys([_FILE + n for n in names if n not in now_filed], names)
                recordtable.write(sql, rows)
                if began:
                    cache.commit(sql)
        except BaseException:
            if began:
                cache.rollback()  # also after a failed COMMIT (a full disk), which stays open
            raise

    def load(self, name: str, digest: str | None = None) -> Any:
        """The stored value of a task, unpickled while it is checked, or MISSING.

        The bytes are checked against `digest` (default: the digest in the task's
        record) as they stream into the unpickler, so the value is never held
        twice. See `_read` for what counts as damage.
        """
        return self._read(name, digest, valuefiles.load_bytes, valuefiles.load_file)

    def load_blob(self, name: str, digest: str | None = None) -> Any:
        """The pickled bytes of a task's stored value (checked), or MISSING."""
        return self._read(name, digest, valuefiles.check_bytes,
                          lambda path, digest: ValueFile(path, digest).read_bytes())

    def value_file(self, name: str, digest: str | None = None) -> Any:
        """A `ValueFile` for a large value (whoever loads it checks it), the small
        value's pickled bytes (checked), or MISSING."""
        return self._read(name, digest, valuefiles.check_bytes, ValueFile)

    def _read(self, name: str, digest: str | None, from_bytes: Callable[[bytes, str | None], Any],
              from_file: Callable[[str, str | None], Any]) -> Any:
        """Read a stored value through `from_bytes` or `from_file`, which check it.

        Only proven damage drops a value: bytes that do not match the digest the
        record still promises, or a value file that is gone while its row is there.
        A value another run replaced or forgot meanwhile is MISSING, and kept. Any
        other error (too many open files, permissions, an I/O error) is a
        StoreError naming the cause: the value and its record are kept.
        """
        with self.errors("read"):
            if digest is None:
                record = self._record(name)
                digest = record.get("digest") if record else None
        for _attempt in (1, 2):
            try:
                with self.errors("read"):
                    row = self._value_row(name)
            except DamagedValue:
                how = "changed or truncated"
                break
            if row is None:
                how = "deleted"
                break
            blob, path = row
            try:
                if path is None:
                    assert blob is not None
                    return from_bytes(blob, digest)
                return from_file(path, digest)
            except DamagedValue:
                how = "changed or truncated"
                break
            except FileNotFoundError:
                how = "deleted"  # or replaced by another run between the row and the open
                continue
            except OSError as e:
                raise StoreError(
                    f"The stored result of task {name!r} could not be read ({e}); it is kept. "
                    f"Fix the cause (too many open files, permissions, a failing disk) and "
                    f"run again."
                ) from e
        if digest is None:
            return MISSING  # nothing was promised (no record, or an expired value)
        # Checked and forgotten in one transaction: another run committing a new pair
        # in between must not lose it.
        with self.errors("write"), self.cache.transact():
            record = self._record(name)
            if (record.get("digest") if record else None) != digest:
                return MISSING  # replaced or forgotten by another run meanwhile: not damage
            self.forget([name])
        lib_logger.warning(
            "The stored result of task {!r} is damaged (its value file was {}); it was "
            "discarded and the task will run again.", name, how,
        )
        return MISSING

    def _value_row(self, name: str) -> tuple[bytes, None] | tuple[None, str] | None:
        """(bytes, None) for a value kept in the database, (None, path) for one in a file
        (a large one's row read as `cachedisk.value_row` says why)."""
        has_row, small = recordtable.value(self.cache._sql, name)
        if small is not None:
            return small, None
        if not (has_row or self._legacy):
            return None
        key = (_FILE if has_row else _OLD_VALUE) + name
        return cachedisk.value_row(self.cache._sql, self.cache.directory, key)

    def forget(self, names: Iterable[str]) -> list[str]:
        """Delete the stored results of these tasks; returns those that had one."""
        wanted = list(names)
        with self.errors("write"), self.cache._disk.staged(), self.cache.transact():
            gone = [name for name in wanted if recordtable.delete(self.cache._sql, name)]
            old = self._delete_keys([_FILE + name for name in wanted], wanted)
        return [name for name in wanted if name in gone or _OLD_RECORD + name in old]

    def drop_values(self, names: Iterable[str]) -> None:
        """Delete the values of these tasks but keep their records (expired results).

        The records lose their result digest with the value: a digest promises a
        value that tasks below can be fed, and a skipped or unselected task is only
        looked up by its digest.
        """
        wanted = list(names)
        with self.errors("write"), self.cache._disk.staged(), self.cache.transact():
            for name in wanted:
                rec = self._record(name)
                if rec is not None:
                    rec["digest"] = None
                self._set_record(name, rec, drop_value=True)
            old = [_OLD_VALUE + name for name in wanted] if self._legacy else []
            self._delete_keys([*old, *(_FILE + name for name in wanted)], [])

    # -- code texts (for explain) -----------------------------------------------------
    def save_texts(self, texts: dict[str, str]) -> None:
        """Keep source texts by their digest (written once; many records share them)."""
        with self.cache.transact():
            for digest, text in texts.items():
                self.cache.add(_TEXT + digest, text)

    def text(self, digest: str) -> str | None:
        """The source text stored for a code digest, if any."""
        text: str | None = self.cache.get(_TEXT + digest)
        return text

    def keys_with(self, prefix: str) -> list[str]:
        """The keys that start with `prefix`, in order (one index range scan)."""
        return cachedisk.keys_with(self.cache._sql, prefix)

    def _delete_keys(self, keys: list[str], old_names: list[str]) -> set[str]:
        """Delete those of `keys` that exist and the previous version's keys of
        `old_names` (if any were there at open); the keys deleted."""
        if self._legacy:
            keys = [*keys, *(prefix + name for name in old_names for prefix in _OLD)]
        return cachedisk.delete_present(self.cache._sql, self.cache, keys)

    def close(self) -> None:
        self.cache.close()

    @contextlib.contextmanager
    def errors(self, doing: str, *, wait: bool = False) -> Iterator[None]:
        """SQLite's errors (and diskcache's lock timeout) as StoreError, an OSError.

        Callers then treat a store that fails mid-run like a full disk: the task
        at hand fails with a message, not the whole run with a traceback. With
        `wait` (a run's first transaction) another run's write is first waited for
        with a message naming it; later writes leave the wait to SQLite (same
        limit, silent, ~30 us a check saved per task) and a lock held past it
        fails the task with the holder's PID.
        """
        try:
            if wait:
                self._wait_for_writer()
            yield
        except (sqlite3.Error, diskcache.Timeout) as e:
            raise self._error(doing, e) from None

    def _error(self, doing: str, e: BaseException) -> StoreError:
        return store_error(self.directory, doing, e, self.wait)

    def _wait_for_writer(self) -> None:
        wait_for_writer(self.directory, self.wait)


def _decoded(name: str, stored: bytes | Callable[[], Any]) -> Record | None:
    """A record from its row's bytes, or a read of the previous version's key."""
    return recordtable.decoded(name, stored, errors=(sqlite3.Error, diskcache.Timeout))

