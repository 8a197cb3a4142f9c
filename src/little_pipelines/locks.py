"""Per-task locks across runs, so two runs of one pipeline never run a task twice.

All tasks share one lock file, `<store folder>/tasks.lock`; each task locks one
byte of it with a POSIX record lock (`lockf`), at an offset made of 62 bits of
its name's digest. The kernel releases record locks when their process dies
(SIGKILL included), so a lock left by a killed run is taken over at once; a lock
kept in the cache itself (diskcache.Lock) was rejected for exactly that reason.
One file for all tasks, rather than a file per task, keeps locking to two
syscalls a task (creating a file per task cost ~70 µs here). The holder's PID is
asked of the kernel (F_GETLK), never written, so it is never stale.

Two things made the old scheme (8-byte slots at 24 bits of the digest) run a
task twice, and both are closed here:

* Record locks belong to the process, and ranges a process locks merge: when a
  run held two names sharing a slot and released one, the other was released
  too while it still ran. Each process now keeps a table of what it holds, by
  exact name, and unlocks a byte only when no name of its own still uses it.
  Two names sharing a byte can then only make another run wait, never run
  twice; with 62 bits that is about one pair in 10^10 for 20,000 names.
* Two runs on threads of one process share the process's record locks: both
  took the same task. The same table now refuses a name another run of this
  process holds, and a waiting run polls instead of blocking in the kernel
  (which, with two runs waiting in opposite orders, raised EDEADLK).

A run also says it is there (`begin`, before it reads the records): a shared
lock on a byte beyond every task's, or an exclusive one while its process is the
only one using the store. A run alone (`solo`) can skip re-reading a task's record
after taking its lock (SQLite's `PRAGMA data_version`, ~4-9 µs a task): no other
run can have stored anything since it read the records, since none can begin
until it lets it in. A run arriving then knocks (a shared lock on a second byte)
and waits; the lone run's watcher thread sees the knock within ~20 ms, turns its
exclusive lock into a shared one and re-reads records as before from then on.
A second run in the same process ends the first one's solitude the same way.
A lone run that cannot answer (stopped with Ctrl-Z, or its watcher kept from the
GIL) must not keep others out: a run arriving waits at most `_PATIENCE` (1 s),
then goes on, knocking until it ends; and a lone run trusts its solitude only
while its watcher looked for knocks less than half that long ago, and gives it
up for good once the watcher was held up that long. A run that went on without
being let in can therefore only store a task once the lone run has stopped
trusting it (see `_watch`).

Forked workers do not inherit record locks, which is why only the driver takes
them. A file system without record locks (some network mounts: ENOLCK) is
detected once, with a warning: runs there are protected from each other only
within one process. Without `fcntl` (Windows) the same holds.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import sys
import threading
import time
from pathlib import Path

from .log import lib_logger

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})

# This process's holdings, shared by every run in it, by lock file: name -> the
# TaskLocks holding it, and offset -> how many held names use that byte.
_table_lock = threading.Lock()
_names: dict[str, dict[str, TaskLocks]] = {}
_bytes: dict[str, dict[int, int]] = {}
_unlockable: set[str] = set()  # lock files on file systems without record locks (warned once)
#: runs of this process between `begin` and `close`, by lock file
_begun: dict[str, int] = {}
#: runs of this process begun so far, by lock file (see `TaskLocks.alone_here`)
_generation: dict[str, int] = {}

_PRESENCE = 1 << 62  # the byte a run locks while it runs: beyond every task's (< 2**62)
_KNOCK = _PRESENCE + 1  # the byte a run arriving locks while it waits for a lone run
_WATCH = 0.02  # seconds between a lone run's looks for a knock
_PATIENCE = 1.0  # seconds a run arriving waits to be let in before it goes on knocking
_TRUST = _PATIENCE / 2  # a lone run whose watcher was held up this long is alone no more


class _Lone:
    """A lone run's watcher: `beat` is when it last found no knock (monotonic)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.beat = time.monotonic()


#: lock files this process alone uses (its exclusive presence lock) -> its watcher
_solo: dict[str, _Lone] = {}


class Held:
    """A held task lock; `release()` it when the task's result is stored."""

    __slots__ = ("_locks", "_name", "_offset")

    def __init__(self, locks: TaskLocks | None, name: str, offset: int) -> None:
        self._locks = locks
        self._name = name
        self._offset = offset  # of its byte: hashed once a task, not at each end

    def release(self) -> None:
        locks = self._locks
        if locks is not None:
            self._locks = None
            with _table_lock:
                if locks._names.get(self._name) is locks:
                    locks._drop(self._name, self._offset)


class TaskLocks:
    """The task locks of one pipeline's store, as one run uses them."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "tasks.lock"
        self._key = os.path.abspath(self.path)
        self._open = False
        self._begun = False
        self._knocking = False  # went on without being let in: knocks until `close`
        self._generation = 0
        # This lock file's tables (kept for the process's life: a dict per lock file).
        self._names = _names.setdefault(self._key, {})
        self._bytes = _bytes.setdefault(self._key, {})
        self._fd = -1  # the lock file's descriptor while `_open`

    @property
    def solo(self) -> bool:
        """Whether this run's process is the only one using the store since the run
        began, with no other run of its own: then no run stored a task's record since
        this one read them (read the flag after taking the task's lock). False once its
        watcher has not looked for knocks for `_TRUST`: a run arriving may have gone on."""
        lone = _solo.get(self._key)
        return lone is not None and time.monotonic() - lone.beat < _TRUST

    def alone_here(self) -> bool:
        """Whether no other run of this process has begun on this store since this one.
        A run nested in a task of this one (on the same thread, hence the same SQLite
        connection, whose own commits `PRAGMA data_version` does not count) may have
        stored a task meanwhile."""
        return _generation.get(self._key, 0) == self._generation

    def begin(self) -> None:
        """Say this run is here, before it reads the records; wait while a lone run of
        another process lets it in. Runs that store results call this; `close` ends it."""
        if self._begun:
            return
        with _table_lock:
            self._generation = _generation[self._key] = _generation.get(self._key, 0) + 1
            if fcntl is None or self._key in _unlockable:
                return
            fd = self._file()
            self._begun = True
            others = _begun.get(self._key, 0)
            _begun[self._key] = others + 1
            if others:  # another run of this process: no run of it is alone any more
                _share(self._key, fd)
            else:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _PRESENCE)
                except OSError as e:
                    if e.errno in _NO_LOCKS:
                        self._no_locks(e)
                        return
                else:
                    lone = _solo[self._key] = _Lone()
                    threading.Thread(target=_watch, args=(self._key, fd, lone), daemon=True,
                                     name="lp-lock-watch").start()
                    return
        self._join(fd)

    def _join(self, fd: int) -> None:
        """Take the shared presence lock, knocking while a lone run holds it exclusively;
        after `_PATIENCE` go on without it, knocking until `close` (see the docstring)."""
        assert fcntl is not None
        knocked, since = False, time.monotonic()
        try:
            while True:
                with _table_lock:
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, _PRESENCE)
                        return
                    except OSError as e:
                        if e.errno in _NO_LOCKS:
                            self._no_locks(e)
                            return
                        if not knocked:
                            _knock(self._key, fd, +1)
                            knocked, since = True, time.monotonic()  # patience from the knock
                if time.monotonic() - since > _PATIENCE:  # a lone run that does not answer
                    lib_logger.debug("the run with PID {} using the store {} did not answer "
                                     "in {} s; this run goes on", _lock_owner(fd, _PRESENCE),
                                     self.path.parent, _PATIENCE)
                    self._knocking, knocked = True, False  # knock on until `close`
                    return
                time.sleep(0.005)
        finally:  # let in, or interrupted while waiting: knock no more
            if knocked:
                with _table_lock:
                    _knock(self._key, fd, -1)

    def try_acquire(self, task: str) -> Held | None:
        """Take the task's lock if it is free; None if another run (here or elsewhere) holds it."""
        offset = _offset(task)
        names, uses_of = self._names, self._bytes
        with _table_lock:
            if task in names:
                return None  # another run of this process holds it
            uses = uses_of.get(offset, 0)
            if uses == 0 and not self._lock(offset):
                return None
            uses_of[offset] = uses + 1
            names[task] = self
        return Held(self, task, offset)

    def wait(self, task: str, poll: float = 0.05) -> Held:
        """Take the task's lock, polling until it is free.

        Polling, not a blocking lockf: a run that blocks in the kernel while it
        holds other tasks' locks deadlocks with a run waiting in the opposite
        order. A run holding locks should poll with `try_acquire` and keep
        finishing what it holds, as the engine does.
        """
        while True:
            held = self.try_acquire(task)
            if held is not None:
                return held
            time.sleep(poll)

    def holder(self, task: str) -> int | None:
        """The PID of the process holding the task's lock, if any (this one's included)."""
        with _table_lock:
            if task in self._names:
                return os.getpid()
            if fcntl is None or self._key in _unlockable:
                return None
            fd = self._file()
        return _lock_owner(fd, _offset(task))

    def close(self) -> None:
        """Release what this run still holds; the last run of this process using the lock
        file closes it (each run opening it anew would leak a descriptor per run)."""
        with _table_lock:
            for task, owner in list(self._names.items()):
                if owner is self:
                    self._drop(task, _offset(task))
            if self._begun:
                self._begun = False
                left = _begun.get(self._key, 1) - 1
                _begun[self._key] = left
                if self._knocking:
                    self._knocking = False
                    _knock(self._key, _files[self._key][0], -1)
                if not left:
                    del _begun[self._key]
                    lone = _solo.pop(self._key, None)
                    if lone is not None:
                        lone.stop.set()
                    if fcntl is not None and self._key not in _unlockable:
                        fcntl.lockf(_files[self._key][0], fcntl.LOCK_UN, 1, _PRESENCE)
            if self._open:
                self._open = False
                entry = _files[self._key]
                entry[1] -= 1
                if entry[1] == 0:
                    # Closing a descriptor drops every record lock of this process on
                    # the file, so only once no run here uses it (and holds nothing).
                    os.close(entry[0])
                    del _files[self._key]

    def _lock(self, offset: int) -> bool:
        """Take the byte's record lock without waiting; caller holds _table_lock."""
        if fcntl is None or self._key in _unlockable:
            return True
        try:
            fcntl.lockf(self._fd if self._open else self._file(),
                        fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError as e:
            if e.errno not in _NO_LOCKS:
                # EAGAIN / EACCES: held by another process, which then runs without saying
                # so (`begin`): a version before it, say. This run is not alone.
                _share(self._key, self._file())
                return False
            self._no_locks(e)
        return True

    def _no_locks(self, e: OSError) -> None:
        """The lock file's file system has no record locks: say so once; caller holds
        _table_lock."""
        if self._key not in _unlockable:
            _unlockable.add(self._key)
            lib_logger.warning(
                "The file system of {} does not support file locks ({}): concurrent runs "
                "of this pipeline from different processes are not kept from running the "
                "same task there. Keep the store on a local disk (cache_dir= or "
                "LITTLE_PIPELINES_HOME) to have them protected.", self.path, e)

    def _drop(self, task: str, offset: int) -> None:
        """Forget a held name; unlock its byte when no held name uses it. Holds _table_lock."""
        del self._names[task]
        uses = self._bytes.pop(offset, 1) - 1
        if uses > 0:
            self._bytes[offset] = uses
        elif fcntl is not None and self._key not in _unlockable and self._key in _files:
            fcntl.lockf(_files[self._key][0], fcntl.LOCK_UN, 1, offset)

    def _file(self) -> int:
        """The process's one descriptor of the lock file; caller holds _table_lock."""
        entry = _files.get(self._key)
        if entry is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            entry = _files[self._key] = [fd, 0]
        if not self._open:
            self._open = True
            self._fd = entry[0]
            entry[1] += 1
        return entry[0]


#: lock file -> [its one descriptor in this process, how many runs use it]
_files: dict[str, list[int]] = {}


#: lock file -> how many runs of this process knock on it (the lock is the process's)
_knocks: dict[str, int] = {}


def _knock(key: str, fd: int, change: int) -> None:
    """Count a run of this process that starts (+1) or stops (-1) knocking; the knock
    byte is locked while any does (a lock is the process's: one run must not lift
    another's knock). Caller holds _table_lock."""
    assert fcntl is not None
    count = _knocks[key] = _knocks.get(key, 0) + change
    if change > 0 and count == 1:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, _KNOCK)
    elif count == 0:
        del _knocks[key]
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _KNOCK)


def _share(key: str, fd: int) -> None:
    """This process's lone run is alone no more: its exclusive presence lock becomes a
    shared one (at once: no one else can hold that byte) and its watcher stops. Caller
    holds _table_lock."""
    lone = _solo.pop(key, None)
    if lone is not None:
        lone.stop.set()
        assert fcntl is not None
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, _PRESENCE)


def _watch(key: str, fd: int, lone: _Lone) -> None:
    """A lone run's watcher: when a run of another process knocks, let it in.

    A run that knocked goes on after `_PATIENCE` without being let in only if no look
    here fell in that time; so a look that comes `_TRUST` or more after the previous
    one gives solitude up for good instead (a run may have gone on and stored tasks,
    and even ended: its knock gone). `solo` reads `beat` the same way."""
    while not lone.stop.wait(_WATCH):
        now = time.monotonic()
        if now - lone.beat >= _TRUST or _lock_owner(fd, _KNOCK) is not None:
            with _table_lock:
                if _solo.get(key) is lone:
                    _share(key, fd)
            return
        lone.beat = now  # no knock as of `now`: measured before the look


def _forget_after_fork() -> None:
    # A forked child holds none of its parent's record locks: it is no lone run, and a
    # run it begins joins as a run of another process. The table's lock is made anew:
    # a watcher thread may have held it at the fork, and it does not exist in the child.
    # Nor does it hold the names its parent's runs held (emptied in place: each
    # TaskLocks keeps its lock file's tables; it waited for itself forever).
    global _table_lock
    _table_lock = threading.Lock()
    for names in _names.values():
        names.clear()
    for uses in _bytes.values():
        uses.clear()
    _solo.clear()
    _begun.clear()
    _knocks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _offset(task: str) -> int:
    digest = hashlib.blake2b(task.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2  # 62 bits: a valid off_t, far from its end


# struct flock: Linux (short type, whence; off_t start, len; pid_t pid), BSD/macOS
# (off_t start, len; pid_t pid; short type, whence).
_FLOCK = "qqihh" if sys.platform == "darwin" or "bsd" in sys.platform else "hhqqi"


def _lock_owner(fd: int, offset: int) -> int | None:
    """The PID of another process holding the byte at `offset`, asked of the kernel."""
    assert fcntl is not None
    if _FLOCK == "hhqqi":
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    else:
        query = struct.pack(_FLOCK, offset, 1, 0, fcntl.F_WRLCK, os.SEEK_SET)
    try:
        answer = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    except OSError:
        return None
    kind, pid = (answer[0], answer[4]) if _FLOCK == "hhqqi" else (answer[3], answer[2])
    return int(pid) if kind != fcntl.F_UNLCK and pid > 0 else None
