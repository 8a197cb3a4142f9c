"""The store: the only module that touches diskcache.

A task's *record* (fingerprint, result digest, stamps, timing, expiry) and its
*value* (the pickled result) are kept under separate keys, so deciding whether a
task is fresh reads small records only and never unpickles a value. Value and
record are written together in one SQLite transaction, so a crash leaves either
the old pair or the new pair, never a mix; the old pair is only ever replaced,
never deleted first.

Values are pickled once, here in the driver: the same bytes are digested (for
early cutoff) and handed to diskcache, which stores `bytes` as they are (in
SQLite when small, in a file of its own when large) instead of pickling again.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import diskcache
from loguru import logger

from .errors import UnsafeStoreError

# String keys, not tuples: diskcache stores a str key as it is, while a tuple is
# pickled and run through pickletools.optimize on every call (~40 us a key here).
_RECORD = "lp:record:"
_VALUE = "lp:value:"
_HISTORY = "lp:history"
_TEXT = "lp:text:"
_HISTORY_KEPT = 500

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


def secure_dir(path: Path) -> Path:
    """Create `path` (and parents) readable and writable by its owner only, or check it.

    Loading a stored value unpickles it, which runs code: a folder that someone
    else owns or could write to is refused rather than trusted.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise UnsafeStoreError(
            f"Refusing to use {str(path)!r}: it is owned by user id {st.st_uid}, not by you "
            f"({os.getuid()}), and loading its results would run code they wrote. Use a folder "
            f"of your own (cache_dir= or LITTLE_PIPELINES_HOME)."
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStoreError(
            f"Refusing to use {str(path)!r}: it is writable by group or others "
            f"(mode {stat.filemode(st.st_mode)}), so anyone could plant results that run code "
            f"when loaded. Fix it with: chmod go-w {str(path)!r}"
        )
    return path


class Store:
    """Task records, pickled values and run history in one diskcache.Cache."""

    def __init__(self, directory: Path) -> None:
        self.directory = secure_dir(Path(directory))
        self.damaged: Path | None = None
        try:
            self.cache = self._open()
        except sqlite3.DatabaseError as e:
            # Damaged (truncated, overwritten): keep the files for inspection, start
            # afresh, and go on as if nothing were cached.
            self.damaged = self._move_aside()
            logger.bind(lp_scope="little_pipelines").warning(
                "The store in {} was damaged ({}); it was moved to {} and this run starts "
                "without cached results.", self.directory, e, self.damaged,
            )
            self.cache = self._open()

    def _open(self) -> diskcache.Cache:
        # eviction_policy="none": a cache that silently culls results would
        # rerun work the user thinks is stored; the size is the user's to manage.
        cache = diskcache.Cache(
            str(self.directory / "cache"), eviction_policy="none", size_limit=2**62
        )
        try:
            # Touch every page of the key index: a truncated or overwritten
            # database fails here, at open, not in the middle of a run.
            cache._sql("SELECT count(key) FROM Cache").fetchone()
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
        """The stored record of a task, or None."""
        rec: Record | None = self.cache.get(_RECORD + name)
        return rec

    def records(self, names: Iterable[str]) -> dict[str, Record]:
        """Records of many tasks, read in one transaction (one lock, one snapshot)."""
        get = self.cache.get
        out: dict[str, Record] = {}
        with self.cache.transact():
            for name in names:
                rec = get(_RECORD + name)
                if rec is not None:
                    out[name] = rec
        return out

    def names(self) -> Iterator[str]:
        """Names of all tasks that have a record."""
        for key in self.cache.iterkeys():
            if isinstance(key, str) and key.startswith(_RECORD):
                yield key[len(_RECORD):]

    def update_record(self, name: str, **changes: Any) -> None:
        """Change fields of a stored record (e.g. expire it) without touching its value."""
        with self.cache.transact():
            rec = self.record(name)
            if rec is not None:
                rec.update(changes)
                self.cache.set(_RECORD + name, rec)

    # -- values ------------------------------------------------------------
    def load(self, name: str) -> Any:
        """Unpickle the stored value of a task, or return MISSING."""
        blob = self.load_blob(name)
        return MISSING if blob is MISSING else pickle.loads(blob)

    def load_blob(self, name: str) -> Any:
        """The pickled bytes of a task's stored value, or MISSING."""
        return self.cache.get(_VALUE + name, default=MISSING)

    def put(self, name: str, blob: bytes, record: Record) -> None:
        """Store a pickled value and its record together, atomically."""
        with self.cache.transact():
            self.cache.set(_VALUE + name, blob)
            self.cache.set(_RECORD + name, record)

    def forget(self, names: Iterable[str]) -> list[str]:
        """Delete the stored results of these tasks; returns those that had one."""
        gone = []
        with self.cache.transact():
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
        with self.cache.transact():
            for name in names:
                self.cache.delete(_VALUE + name)
                rec = self.record(name)
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

    # -- history -----------------------------------------------------------
    def add_history(self, entry: dict[str, Any]) -> None:
        """Append a run summary to the history (the last few hundred are kept)."""
        with self.cache.transact():
            runs = self.cache.get(_HISTORY, [])
            runs.append(entry)
            self.cache.set(_HISTORY, runs[-_HISTORY_KEPT:])

    def history(self) -> list[dict[str, Any]]:
        """Past run summaries, oldest first."""
        runs: list[dict[str, Any]] = self.cache.get(_HISTORY, [])
        return runs

    def close(self) -> None:
        self.cache.close()
