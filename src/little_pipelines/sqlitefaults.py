"""What a SQLite failure of the store means, and who holds its write lock.

Only proven damage may move a store aside (`is_corruption`): "database or disk
is full", "attempt to write a readonly database" and "database is locked" are
DatabaseErrors of a sound store, and treating them as damage threw intact
stores away. Every other failure becomes a `StoreError` naming its cause and
its fix (`store_error`). A run that finds another process writing waits for it,
saying who, up to $LITTLE_PIPELINES_LOCK_WAIT seconds (`wait_for_writer`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
import time
from pathlib import Path

import diskcache

from .cachedisk import Corrupt as Corrupt  # damage our own checks proved
from .errors import StoreError
from .log import lib_logger

_WAIT_ENV = "LITTLE_PIPELINES_LOCK_WAIT"
_WAIT_DEFAULT = 60.0  # seconds a run waits for another run's write to the store


def lock_wait() -> float:
    """Seconds a run waits for another run's write lock: $LITTLE_PIPELINES_LOCK_WAIT, or 60."""
    text = os.environ.get(_WAIT_ENV, "").strip()
    if not text:
        return _WAIT_DEFAULT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 1e9:
        raise StoreError(
            f"{_WAIT_ENV} must be a number of seconds >= 0 (how long to wait for another "
            f"run's write to the store), got {text!r}; e.g. {_WAIT_ENV}=300."
        )
    return seconds


# SQLite's primary result codes that prove damage: SQLITE_CORRUPT, SQLITE_NOTADB.
_CORRUPT_CODES = frozenset({11, 26})


def is_corruption(e: BaseException) -> bool:
    """Whether an error opening the store proves the database damaged (and only then).

    "database or disk is full", "attempt to write a readonly database" and
    "database is locked" are DatabaseErrors too, of a sound store: treating
    every DatabaseError as damage moved intact stores aside.
    """
    if isinstance(e, Corrupt):
        return True
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _CORRUPT_CODES
    text = str(e).lower()  # pragma: no cover - Python before 3.11 gives no code
    return "file is not a database" in text or "malformed" in text


#: SQLite primary result code -> (cause, fix); {db} is the database's path.
_CAUSES: dict[int, tuple[str, str]] = {
    3: ("permission denied", "make {db} and its folder readable and writable by you"),
    5: ("locked", ""),
    6: ("locked", ""),
    8: ("the database is read-only", "make {db} and its folder writable by you (check "
        "`ls -l`, `lsattr` and the mount's options)"),
    10: ("an I/O error", "check the disk (`dmesg`), then run again"),
    13: ("the disk is full", "free space on the disk holding {db}, then run again"),
    14: ("the database file could not be opened", "check that {db} and its folder exist "
         "and are yours, and that the process may open more files (`ulimit -n`)"),
}
_ERRNO_CAUSES: dict[int, int] = {
    errno.ENOSPC: 13, errno.EDQUOT: 13, errno.EFBIG: 13, errno.EACCES: 3, errno.EPERM: 3,
    errno.EROFS: 8, errno.EIO: 10, errno.EMFILE: 14, errno.ENFILE: 14,
}


def _cause(e: BaseException, db: Path) -> tuple[str, str]:
    if isinstance(e, diskcache.Timeout):
        return "locked", ""
    code = getattr(e, "sqlite_errorcode", None)
    if code is None and isinstance(e, OSError) and e.errno is not None:
        code = _ERRNO_CAUSES.get(e.errno)
    if code is None:
        text = str(e).lower()
        code = next((c for words, c in (("full", 13), ("readonly", 8), ("locked", 5))
                     if words in text), None)
    if (code or 0) & 0xFF in (0, 10) and _no_space(db.parent):
        # SQLite reports a disk that filled up while it grew its shared-memory
        # file as "disk I/O error" (SQLITE_IOERR_SHMSIZE): say what it really is.
        code = 13
    cause, fix = _CAUSES.get((code or 0) & 0xFF, (
        "an unexpected error", "check the disk and the folder's permissions, then run again"))
    return cause, fix.format(db=str(db))


def _no_space(folder: Path) -> bool:
    """Whether the disk holding `folder` has (almost) no room left for us."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


# The byte SQLite locks while a connection writes: WAL_WRITE_LOCK in the -shm file
# (diskcache's WAL mode), or RESERVED_BYTE of the database in rollback mode.
_WRITE_LOCKS = (("-shm", 120), ("", 0x40000001))


def writer_pid(db: Path) -> int | None:
    """The PID of another process holding SQLite's write lock on `db`, if any (Linux).

    Read from the kernel's table of locks (/proc/locks: ~60 us, but 5-20 ms for a
    process's first read, see `write_lock_free`), so it names whoever holds the
    lock, a run of ours or not, and is never stale. Asking with fcntl(F_GETLK) was
    rejected: it needs a descriptor of the file, and closing one drops every POSIX
    lock this process holds on it, SQLite's own included. None where the table
    cannot be read.
    """
    wanted: dict[int, int] = {}  # inode -> the byte locked while writing
    for suffix, offset in _WRITE_LOCKS:
        with contextlib.suppress(OSError):
            wanted[os.stat(f"{db}{suffix}").st_ino] = offset
    if not wanted or not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            table = f.read()
    except OSError:
        return None
    me = os.getpid()
    for line in table.splitlines():
        # "1: POSIX  ADVISORY  WRITE 9418 fe:00:2187715 120 120" ("->" marks a waiter)
        fields = line.split()
        if len(fields) != 8 or fields[1] != "POSIX" or fields[3] != "WRITE":
            continue
        inode, start, end = fields[5].rsplit(":", 1)[-1], fields[6], fields[7]
        if not (inode.isdigit() and fields[4].isdigit() and start.isdigit()):
            continue
        byte = wanted.get(int(inode))
        pid = int(fields[4])
        if byte is not None and pid != me and int(start) <= byte and (
                end == "EOF" or byte <= int(end)):
            return pid
    return None


def store_error(directory: Path, doing: str, e: BaseException, wait: float) -> StoreError:
    """A StoreError saying what failed, why, and how to fix it; the store is untouched."""
    db = directory / "cache" / "cache.db"
    cause, fix = _cause(e, db)
    if cause == "locked":
        pid = writer_pid(db)
        who = f"the run with PID {pid}" if pid else "another process"
        cause = f"{who} held the store's write lock for over {wait:g}s"
        fix = (f"let that run finish, or stop it{f' (kill {pid})' if pid else ''}; if it "
               f"is just slow, wait longer with {_WAIT_ENV}=<seconds>")
    what = str(e) or type(e).__name__
    return StoreError(
        f"The store in {str(directory)!r} could not be "
        f"{ {'write': 'written'}.get(doing, doing)}: {cause} "
        f"({type(e).__name__}: {what}). To fix: {fix}. The store was left as it was."
    )


def write_lock_free(db: Path) -> bool | None:
    """Whether SQLite's write lock on `db` is free: taken and let go at once through a
    connection of our own that never waits (~0.05 ms; ~0.3 ms when it is the only
    connection, as it then tidies the WAL on close). None if that could not be tried
    (no database yet, an unreadable file): the caller looks in /proc/locks as before.

    Tried before /proc/locks is read because that read is dear in time: the kernel
    takes a lock every file lock on the machine waits on, and a process's first read
    measured 5-20 ms on a small VM (12 ms a run, 12 us a task at 1,000 tasks). Through
    SQLite, not a descriptor of our own: closing any descriptor of the file drops
    every POSIX lock this process holds on it, while SQLite keeps a connection's
    descriptor open until no connection of the process holds a lock on the file.
    """
    try:
        con = sqlite3.connect(f"{db.absolute().as_uri()}?mode=rw", uri=True, timeout=0,
                              isolation_level=None)
    except (sqlite3.Error, OSError, ValueError):
        return None
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.Error as e:
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None:
            return False if code & 0xFF in (5, 6) else None  # SQLITE_BUSY, SQLITE_LOCKED
        return False if "locked" in str(e).lower() else None  # pragma: no cover - no code
    finally:
        con.close()


def wait_for_writer(directory: Path, wait: float) -> None:
    """Wait while another process holds SQLite's write lock, saying who, up to `wait`.

    SQLite's own busy wait is silent, and a run stopped with Ctrl-Z while it
    wrote holds the lock until it is resumed: without a word the next run
    looked hung. A free lock costs one try of it (`write_lock_free`), a taken
    one a read of /proc/locks to name its holder; asked at a store's open and a
    run's first read, not per write.
    """
    db = directory / "cache" / "cache.db"
    if write_lock_free(db):
        return
    pid = writer_pid(db)
    if pid is None:
        return
    start = said = time.monotonic()
    lib_logger.bind(lp_console=True).warning(
        "waiting for the store in {}: the run with PID {} is writing to it "
        "(giving up after {:g}s; set {} to wait longer)", directory, pid, wait,
        _WAIT_ENV,
    )
    while pid is not None:
        now = time.monotonic()
        if now - start >= wait:
            raise StoreError(
                f"The store in {str(directory)!r} could not be used: the run with "
                f"PID {pid} held its write lock for over {wait:g}s. To fix: let that "
                f"run finish, or stop it (kill {pid}); to wait longer, set "
                f"{_WAIT_ENV}=<seconds>. The store was left as it was."
            )
        if now - said >= 10:
            said = now
            lib_logger.bind(lp_console=True).warning(
                "still waiting for the store: the run with PID {} is writing to it "
                "({:.0f}s so far)", pid, now - start)
        time.sleep(0.05)
        pid = writer_pid(db)
