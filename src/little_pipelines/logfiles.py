"""Log files: one per task and the run's own, written safely.

`TaskFiles` is the one loguru sink behind every task's file (see `log`): each
record is appended with one `os.write` to `<log dir>/<task>.log`, or to
`<log dir>/_pipeline.log` for the run's story and PERF timings. A log folder
gets the store's checks (owner-only, refused if others own or can write it),
files are opened without following symlinks, and a folder that fails costs one
warning, after which its records go to the console and the host's handlers only.
File names come from `safe_filename`, an escape that never maps two task names
to one file and leaves ordinary names (`clean_data`) as they are.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUN_LOG = "_pipeline.log"  # the run's log, beside the tasks' own files
_ROTATE_BYTES = 10 * 2**20  # rotate a task's log past 10 MiB ...
_KEEP_ROTATED = 3  # ... and keep three old ones (<task>.log.1 .. .3)
_NAME_BYTES = 180  # a file name longer than this is cut and given a hash (limit: 255)


class TaskFiles:
    """One loguru sink that appends each task record to that task's own file.

    Each record is one `os.write` on a descriptor opened with O_APPEND and closed
    at once: ~2.5 us here, no buffer to lose in a crash, no limit on open files,
    and writes from forked workers or a second run never interleave mid-line. An
    LRU of open Python file objects was rejected: with more tasks than slots it
    reopened a file per record anyway, and each open of a buffered file cost ~10x more.
    A file is opened with O_NOFOLLOW: a symlink planted in the folder is refused.
    """

    def __init__(self, warn: Callable[[str, OSError], None]) -> None:
        self._warn = warn  # called once a folder, outside this sink's lock
        self._lock = threading.Lock()
        self._made: set[str] = set()
        self._broken: set[str] = set()
        self._second: tuple[int, str] = (-1, "")
        self._milli: tuple[int, str] = (-1, "")
        #: run logs kept open while runs write a line per task: path -> [fd, runs holding it]
        self._held: dict[str, list[int]] = {}
        self._run_logs: dict[str, str] = {}  # folder -> its run log's path

    def __call__(self, message: Any) -> None:
        extra = message.record["extra"]
        folder = extra.get("lp_log_dir")
        if not folder or folder in self._broken:
            return
        if extra.get("lp_run_log") or message.record["level"].name == "PERF":
            path = os.path.join(folder, RUN_LOG)
        else:
            path = os.path.join(folder, safe_filename(extra["lp_task"]) + ".log")
        self.append(folder, path, str(message))

    def run_log_lines(self, when: float, scope: str, perf: str, info: str) -> str:
        """A task's PERF line and status line made at `when` (epoch time), formatted as
        `log`'s file format does (`{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | ...`)."""
        stamp = self._stamp(when)
        return f"{stamp} | PERF     | {scope} | {perf}\n{stamp} | INFO     | {scope} | {info}\n"

    def run_log_line(self, when: float, level: str, scope: str, message: str) -> str:
        """One record of `scope` at `level` made at `when`, as `log`'s file format has it."""
        return f"{self._stamp(when)} | {level: <8} | {scope} | {message}\n"

    def append_run_log(self, folder: str, text: str) -> None:
        """Append whole lines (see `run_log_lines`) to the run log in `folder`, one write."""
        path = self._run_logs.get(folder)
        if path is None:
            path = self._run_logs[folder] = os.path.join(folder, RUN_LOG)
        self.append(folder, path, text)

    def _stamp(self, when: float) -> str:
        """`when` as the files' `{time:YYYY-MM-DD HH:mm:ss.SSS}` (local time), made once a
        millisecond (a run commits several tasks in one), its second's part once a second."""
        ms, known = int(when * 1000), self._milli  # one tuple read: threads share it
        if ms == known[0]:
            return known[1]
        second, milli = divmod(ms, 1000)
        day = self._second
        if second != day[0]:
            day = self._second = (
                second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
        stamp = f"{day[1]}.{milli:03d}"
        self._milli = (ms, stamp)
        return stamp

    def append(self, folder: str, path: str, text: str) -> None:
        """Append `text` (whole lines) to `path` in `folder` with one write; a folder
        that fails is warned about once and written no more. (Not `write`: loguru
        takes a sink with a `write` method for a stream.)"""
        if folder in self._broken:
            return
        data = text.encode("utf-8", "replace")
        with self._lock:
            try:
                self._write(folder, path, data)
                problem = None
            except OSError as e:
                self._broken.add(folder)
                problem = e
        if problem is not None:
            # After our lock is released; the warning has no folder, so this sink's
            # filter drops it before loguru takes this handler's lock again.
            self._warn(folder, problem)

    def hold_run_log(self, folder: str) -> int | None:
        """Keep the run log of `folder` open until `release_run_log` (a run writes a line
        per task: one write each instead of open, write, fstat, close); its descriptor,
        for `append_held`. None if it cannot be opened; writes then open it each time
        (`append_run_log`), and fail as they would."""
        path = os.path.join(folder, RUN_LOG)
        with self._lock:
            if folder in self._broken:
                return None
            held = self._held.get(path)
            if held is not None:
                held[1] += 1
                return held[0]
            try:
                if folder not in self._made:
                    _secure(folder)
                    self._made.add(folder)
                fd = os.open(path, _FLAGS, 0o600)
            except OSError:
                return None
            self._held[path] = [fd, 1]
            return fd

    def append_held(self, folder: str, fd: int, text: str) -> None:
        """`append_run_log` on the descriptor `hold_run_log` returned, which the caller
        holds till it calls `release_run_log`: no other thread closes it meanwhile, so
        no lock is taken to write (O_APPEND: lines of other writers never interleave)."""
        if folder in self._broken:
            return
        try:
            os.write(fd, text.encode("utf-8", "replace"))
        except OSError as e:
            with self._lock:
                first = folder not in self._broken
                self._broken.add(folder)
            if first:
                self._warn(folder, e)

    def release_run_log(self, folder: str) -> None:
        """The run that held `folder`'s run log is done with it; the last one closes it
        (and rotates it if it grew too large)."""
        path = os.path.join(folder, RUN_LOG)
        with self._lock:
            held = self._held.get(path)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del self._held[path]
            try:
                size = os.fstat(held[0]).st_size
            finally:
                os.close(held[0])
            if size > _ROTATE_BYTES:
                with contextlib.suppress(OSError):
                    _rotate(path)

    def _write(self, folder: str, path: str, data: bytes) -> None:
        held = self._held.get(path)
        if held is not None:  # O_APPEND: lines from other writers still never interleave
            os.write(held[0], data)
            return
        if folder not in self._made:
            _secure(folder)
            self._made.add(folder)
        try:
            fd = os.open(path, _FLAGS, 0o600)
        except FileNotFoundError:  # the folder was removed while we ran: make it again
            _secure(folder)
            fd = os.open(path, _FLAGS, 0o600)
        try:
            os.write(fd, data)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > _ROTATE_BYTES:
            _rotate(path)

    def close_all(self) -> None:
        """Forget which folders exist or failed (files are never held open between records)."""
        with self._lock:
            self._made.clear()
            self._broken.clear()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | _NOFOLLOW


def _secure(folder: str) -> None:
    """The store's checks for a log folder: made owner-only, refused if others own or can
    write it (they could swap a task's file for a link to one of yours)."""
    from .errors import UnsafeStoreError
    from .folders import secure_dir

    try:
        secure_dir(Path(folder))
    except UnsafeStoreError as e:
        raise PermissionError(str(e).replace("loading its results would run code they wrote",
                                             "they could redirect its files")) from None


def _rotate(path: str) -> None:
    for i in range(_KEEP_ROTATED, 0, -1):
        src = path if i == 1 else f"{path}.{i - 1}"
        if os.path.exists(src):
            os.replace(src, f"{path}.{i}")


_KEEP = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. ")


@functools.lru_cache(maxsize=4096)
def safe_filename(name: str) -> str:
    """A task's log file name (without `.log`): one name per task, never the run log's.

    Letters, digits, '-', '_', '.' and spaces stay (`clean_data` keeps `clean_data.log`);
    every other character becomes '%' and its UTF-8 bytes in hex, as in URLs
    ('a/b' -> 'a%2Fb', 'a?b' -> 'a%3Fb', '%' -> '%25'), so two names never share
    a file. A leading '_' or '.' is escaped too: no hidden or '..' names, and no
    task file can be `_pipeline.log`, the run's. A long name is cut and ends in
    '~' and a hash of the whole name ('~' is escaped everywhere else).
    An earlier '_'-based escape was rejected: it renamed every snake_case task's file.
    """
    out = []
    for i, ch in enumerate(name):
        if ch in _KEEP and not (i == 0 and ch in "_."):
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
    escaped = "".join(out) or "%"
    if len(escaped) > _NAME_BYTES:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        escaped = escaped[: _NAME_BYTES - 17] + "~" + digest
    return escaped
