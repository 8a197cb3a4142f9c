"""The store: the only module that touches diskcache.

A task's *record* (fingerprint, result digest, stamps, timing, expiry) and its
*value* (the pickled result) are kept under separate keys, so deciding whether a
task is fresh reads small records only and never unpickles a value. Value and
record are written together in one SQLite transaction, so a crash leaves either
the old pair or the new pair, never a mix; the old pair is only ever replaced,
never deleted first.

Values are pickled once, here in the driver, and digested as they are written
(`valuefiles`): a small pickle goes to SQLite as bytes, a large one is written
straight into its value file in diskcache's folder, which diskcache is then
handed by name, so a 400 MB array is never also a 400 MB bytes object. Loading
streams the file into the unpickler and checks the digest on the way.

Damage is caught where it shows: a database that fails SQLite's quick check is
moved aside on open; a value whose bytes no longer match its record's digest (a
truncated or deleted value file) is never handed on, while a value that merely
could not be read (too many open files, permissions) is kept; SQLite errors in the middle
of a run become `StoreError`, an OSError, so a task fails instead of the run.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import diskcache

from . import valuefiles
from .cachedisk import HoldingDisk, Prewritten, exclusive
from .errors import StoreError, UnsafeStoreError
from .folders import secure_dir
from .log import lib_logger
from .sqlitefaults import Corrupt, is_corruption, lock_wait, store_error, wait_for_writer
from .valuefiles import DamagedValue, Pickled, ValueFile

# String keys, not tuples: diskcache stores a str key as it is, while a tuple is
# pickled and run through pickletools.optimize on every call (~40 us a key here).
_RECORD = "lp:record:"
_VALUE = "lp:value:"
_TEXT = "lp:text:"

#: A record is a plain dict, so stores stay readable across library versions.
Record = dict[str, Any]


class _Missing:
    """The sentinel for "no stored value": a cached `None` is a real result."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Store:
    """Task records, pickled values and run history in one diskcache.Cache."""

    def __init__(self, directory: Path) -> None:
        self.directory = secure_dir(Path(directory))
        self.damaged: Path | None = None
        # data_version is a counter of each connection, and diskcache opens one per
        # thread: each thread compares against what its own connection saw (two runs
        # of one Pipeline on two threads compared each other's counters).
        self._seen_version: dict[int, int] = {}
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
        folder = secure_dir(self.directory / "cache")
        db = folder / "cache.db"
        if db.exists() and db.stat().st_size == 0:
            # SQLite would take an emptied file for a new database and say nothing.
            raise Corrupt("cache.db was truncated to nothing")
        # eviction_policy="none": a cache that silently culls results would
        # rerun work the user thinks is stored; the size is the user's to manage.
        # cull_limit=0: no culling query on every set (nothing here expires by
        # diskcache's clock; measured ~10 us a task on a cold run).
        # timeout: SQLite's own wait for its write lock, the backstop behind
        # _wait_for_writer (which only sees a lock taken before it looked).
        cache = diskcache.Cache(
            str(folder), eviction_policy="none", size_limit=2**62, cull_limit=0, disk=HoldingDisk,
            timeout=self.wait,
        )
        try:
            # Walk every page: a truncated or overwritten database fails here, at
            # open, not in the middle of a run. A cheap "SELECT count(key)" was
            # rejected: it reads the key index only and misses damaged data pages.
            # (Measured: ~5 ms for a 40 MB database.)
            (verdict,) = cache._sql("PRAGMA quick_check(1)").fetchone()
            if verdict != "ok":
                raise Corrupt(" ".join(str(verdict).split()))
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
        try:
            rec: Record | None = self.cache.get(_RECORD + name)
        except (sqlite3.Error, diskcache.Timeout):
            raise
        except Exception as e:  # a damaged pickle: as if there were no record (the task reruns)
            lib_logger.warning(
                "The stored record of task {!r} could not be read ({}: {}); it will run again.",
                name, type(e).__name__, e,
            )
            return None
        return rec

    def records(self, names: Iterable[str]) -> dict[str, Record]:
        """Records of many tasks, read in one transaction (one lock, one snapshot)."""
        out: dict[str, Record] = {}
        with self.errors("read", wait=True), self.cache.transact():
            for name in names:
                rec = self._record(name)
                if rec is not None:
                    out[name] = rec
            self._seen_version[threading.get_ident()] = self._data_version()
        return out

    def untouched_by_others(self) -> bool:
        """True if no other connection has committed since `records()` was last called.

        SQLite's `data_version` changes only when another connection commits, so
        this one query (~2 us) can stand in for re-reading a record.
        """
        with self.errors("read"):
            seen = self._seen_version.get(threading.get_ident())
            return seen is not None and self._data_version() == seen

    def _data_version(self) -> int:
        (version,) = self.cache._sql("PRAGMA data_version").fetchone()
        return int(version)

    def names(self) -> Iterator[str]:
        """Names of all tasks that have a record."""
        for key in self.cache.iterkeys():
            if isinstance(key, str) and key.startswith(_RECORD):
                yield key[len(_RECORD):]

    def update_record(self, name: str, **changes: Any) -> None:
        """Change fields of a stored record (e.g. expire it) without touching its value."""
        with self.errors("write"), self.cache.transact():
            rec = self._record(name)
            if rec is not None:
                rec.update(changes)
                self.cache.set(_RECORD + name, rec)

    # -- values ------------------------------------------------------------
    def pickle(self, name: str, value: Any) -> Pickled:
        """Pickle and digest task `name`'s value once, a large one straight into a new
        value file.

        The file is not referenced by anything until `put` commits; `Pickled.discard`
        removes it if the value is not stored after all. Raises `UnpicklableValue`
        or OSError (a full disk).
        """
        disk = self.cache._disk

        def open_file() -> tuple[str, IO[bytes]]:
            _filename, full_path = disk.filename()
            os.makedirs(os.path.dirname(full_path), exist_ok=True)
            return full_path, open(full_path, "xb")

        return valuefiles.dump(value, open_file)

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
        stored: Any = value.blob if value.path is None else Prewritten(value, self.cache)
        try:
            with self.errors("write"), self.cache._disk.staged():
                try:
                    with self.cache.transact():
                        self.cache.set(_VALUE + name, stored, read=value.path is not None)
                        self.cache.set(_RECORD + name, record)
                except BaseException:
                    # A COMMIT that failed (disk full) leaves SQLite's transaction open.
                    with contextlib.suppress(sqlite3.Error):
                        if self.cache._con.in_transaction:
                            self.cache._sql("ROLLBACK")
                    raise
        except BaseException:
            value.discard()
            raise
        value.path = None  # the store owns the file now

    def load(self, name: str) -> Any:
        """Unpickle the stored value of a task (checked against its record), or MISSING."""
        return self.load_value(name)

    def load_value(self, name: str, digest: str | None = None) -> Any:
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
        """(bytes, None) for a value kept in the database, (None, path) for one in a file.

        Read from diskcache's table directly: its `get` turns every OSError of a
        value file into "not found", which made a descriptor shortage look like a
        deleted file (and the good value was dropped as damaged).
        """
        row = self.cache._sql(
            "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1", (_VALUE + name,)
        ).fetchone()
        if row is None:
            return None
        mode, filename, db_value = row
        if mode == diskcache.core.MODE_RAW:
            return bytes(db_value), None
        if mode == diskcache.core.MODE_BINARY and filename:
            return None, os.path.join(self.cache.directory, filename)
        raise DamagedValue(f"unexpected storage mode {mode!r} for the value of {name!r}")

    def forget(self, names: Iterable[str]) -> list[str]:
        """Delete the stored results of these tasks; returns those that had one."""
        gone = []
        with self.errors("write"), self.cache.transact():
            for name in names:
                had = self.cache.delete(_RECORD + name)
                self.cache.delete(_VALUE + name)
                if had:
                    gone.append(name)
        return gone

    def drop_values(self, names: Iterable[str]) -> None:
        """Delete the values of these tasks but keep their records (expired results).

        The records lose their result digest with the value: a digest promises a
        value that tasks below can be fed, and a skipped or unselected task is only
        looked up by its digest.
        """
        with self.errors("write"), self.cache.transact():
            for name in names:
                self.cache.delete(_VALUE + name)
                rec = self._record(name)
                if rec is not None:
                    rec["digest"] = None
                    self.cache.set(_RECORD + name, rec)

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
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self.cache._sql(
            "SELECT key FROM Cache WHERE key >= ? AND key < ? AND raw = 1 ORDER BY key",
            (prefix, end),
        ).fetchall()
        return [key for (key,) in rows]

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
