"""Loguru glue: the PERF level, per-task log files, and the console.

* Every record the library or a task emits carries `extra["lp_scope"]` (the task
  or pipeline name), so hosts can filter it, and `logger.disable("little_pipelines")`
  silences the library's own records as loguru documents.
* Log files go through ONE sink. A task's own records (`this.logger`) and its
  failures go to `<log dir>/<task>.log`; the run's story — each task's status
  line, every PERF timing, the summary — goes to `<log dir>/_pipeline.log`.
  A `logger.add` per task was rejected: it costs ~14 ms a call and makes every
  record pass every sink's filter, which turns a 1,000-task run quadratic.
  Timings in each task's file were rejected too: creating a file per task on a
  first run cost 70-240 us a task here, more than everything else a task costs.
* The console: a script that configured no logging still has loguru's default
  stderr handler (id 0). It would print our lines a second time, so we replace
  it once with two handlers: ours for the library's records (level and format
  set by `set_log_level` / `set_log_format`) and a stand-in with loguru's
  defaults for everything else. A handler the host added is never removed; if
  the host removed handler 0 itself, we add no console until asked to.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from loguru import logger

from .errors import InvalidOptionError, OptionTypeError

PERF = "PERF"
_PERF_NO = 15  # between DEBUG (10) and INFO (20): in the log files, off the console by default

DEFAULT_FORMAT = (
    "<green>{time:HH:mm:ss}</green> | <level>{level: <7}</level> | "
    "<cyan>{extra[lp_scope]}</cyan> | {message}"
)
_FILE_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[lp_scope]} | {message}\n{exception}"
)
RUN_LOG = "_pipeline.log"  # the run's log, beside the tasks' own files
_ROTATE_BYTES = 10 * 2**20  # rotate a task's log past 10 MiB ...
_KEEP_ROTATED = 3  # ... and keep three old ones (<task>.log.1 .. .3)


def _register_perf_level() -> None:
    try:
        logger.level(PERF)
    except ValueError:
        logger.level(PERF, no=_PERF_NO, color="<blue>", icon="⏱")


_register_perf_level()

#: The library's own records that belong to no task or run (a damaged store, say).
lib_logger = logger.bind(lp_scope="little_pipelines")


def task_logger(task: str, log_dir: Path | None) -> Any:
    """A loguru logger bound to a task: its records also go to `<log_dir>/<task>.log`
    (its PERF timings to the run's log, `<log_dir>/_pipeline.log`)."""
    ensure_file_sink()
    return logger.bind(lp_scope=task, lp_task=task, lp_log_dir=str(log_dir) if log_dir else None)


class _TaskFiles:
    """One loguru sink that appends each task record to that task's own file.

    Each record is one `os.write` on a descriptor opened with O_APPEND and closed
    at once: ~2.5 us here, no buffer to lose in a crash, no limit on open files,
    and writes from forked workers or a second run never interleave mid-line. An
    LRU of open Python file objects was rejected: with more tasks than slots it
    reopened a file per record anyway, and each open of a buffered file cost ~10x more.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: set[str] = set()

    def __call__(self, message: Any) -> None:
        extra = message.record["extra"]
        folder = extra.get("lp_log_dir")
        if not folder:
            return
        if extra.get("lp_run_log") or message.record["level"].no == _PERF_NO:
            path = os.path.join(folder, RUN_LOG)
        else:
            path = os.path.join(folder, safe_filename(extra["lp_task"]) + ".log")
        data = str(message).encode("utf-8", "replace")
        with self._lock:
            if folder not in self._made:
                os.makedirs(folder, mode=0o700, exist_ok=True)
                self._made.add(folder)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            try:
                fd = os.open(path, flags, 0o600)
            except FileNotFoundError:  # the folder was removed while we ran: make it again
                os.makedirs(folder, mode=0o700, exist_ok=True)
                fd = os.open(path, flags, 0o600)
            try:
                os.write(fd, data)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > _ROTATE_BYTES:
                _rotate(path)

    def close_all(self) -> None:
        """Forget which folders exist (files are never held open between records)."""
        with self._lock:
            self._made.clear()


def _rotate(path: str) -> None:
    for i in range(_KEEP_ROTATED, 0, -1):
        src = path if i == 1 else f"{path}.{i - 1}"
        if os.path.exists(src):
            os.replace(src, f"{path}.{i}")


@functools.lru_cache(maxsize=4096)
def safe_filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in name) or "_"


_task_files = _TaskFiles()
_state: dict[str, Any] = {
    "file_sink": None,
    "console": None,
    "level": "INFO",
    "level_no": 20,
    "format": DEFAULT_FORMAT,
    "checked_default": False,
}
_state_lock = threading.Lock()


def ensure_file_sink() -> None:
    """Add the per-task file sink once per process."""
    if _state["file_sink"] is None:
        with _state_lock:
            if _state["file_sink"] is None:
                _state["file_sink"] = logger.add(
                    _task_files,
                    level="DEBUG",
                    format=_FILE_FORMAT,
                    filter=lambda r: r["extra"].get("lp_log_dir") is not None,
                    catch=True,
                )


def run_logger(scope: str, log_dir: Path | None) -> Any:
    """A logger for the run's story: the console, the host's handlers and `_pipeline.log`."""
    ensure_file_sink()
    return logger.bind(lp_scope=scope, lp_task=scope, lp_run_log=True,
                       lp_log_dir=str(log_dir) if log_dir else None)


def close_task_files() -> None:
    _task_files.close_all()


def _is_lp(record: Any) -> bool:
    extra = record["extra"]
    return (
        "lp_scope" in extra
        and not extra.get("lp_file_only")
        # lp_console: a line the user must see at any level ("waiting for task X")
        and (record["level"].no >= _state["level_no"] or bool(extra.get("lp_console")))
    )


def _not_lp(record: Any) -> bool:
    return "lp_scope" not in record["extra"]


def _write_stderr(message: Any) -> None:
    # Looked up at each write, so a replaced sys.stderr (pytest, a host) is honoured.
    sys.stderr.write(message)


def ensure_console() -> None:
    """Install our console once, replacing loguru's untouched default handler if present."""
    if _state["checked_default"]:
        return
    with _state_lock:
        if _state["checked_default"]:
            return
        _state["checked_default"] = True
        try:
            logger.remove(0)  # loguru's own default handler, not one the host added
        except ValueError:
            return  # the host configured logging itself: leave the console to it
        logger.add(_write_stderr, level="DEBUG", filter=_not_lp, colorize=_isatty())
        _install_console()


def _install_console() -> None:
    # Added once; its level and format are read from _state at each record, so
    # set_log_level / set_log_format change them without a new handler (each
    # logger.add costs ~6 ms, most of it loguru working out library paths).
    if _state["console"] is None:
        _state["console"] = logger.add(
            _write_stderr,
            level=0,
            # a callable format: no traceback on the console (it is in the task's file)
            format=lambda _record: _state["format"] + "\n",
            filter=_is_lp,
            colorize=_isatty(),
        )


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def set_log_level(level: str | int) -> None:
    """Set the console's level for the library's and tasks' records (e.g. "ERROR").

    A bad level raises ValueError and leaves logging as it was.
    """
    if isinstance(level, str):
        try:
            logger.level(level.upper())
        except ValueError:
            raise InvalidOptionError(
                f"Unknown log level {level!r}; expected one of TRACE, DEBUG, PERF, INFO, "
                f"SUCCESS, WARNING, ERROR, CRITICAL, or a number."
            ) from None
        level = level.upper()
    elif not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise InvalidOptionError(f"Log level must be a level name or a number >= 0, got {level!r}.")
    ensure_console()
    with _state_lock:
        _state["level"] = level
        _state["level_no"] = level if isinstance(level, int) else logger.level(level).no
        _install_console()


def set_log_format(fmt: str | None = None) -> None:
    """Set the console's line format (loguru format syntax); None restores the default."""
    if fmt is not None and not isinstance(fmt, str):
        raise OptionTypeError(f"Log format must be a loguru format string, got {fmt!r}.")
    fmt = DEFAULT_FORMAT if fmt is None else fmt
    try:  # reject a broken format now, not at the first log call
        probe = logger.add(lambda _m: None, format=fmt, level="CRITICAL", colorize=True)
    except ValueError as e:
        raise InvalidOptionError(f"Invalid log format {fmt!r}: {e}") from None
    logger.remove(probe)
    ensure_console()
    with _state_lock:
        _state["format"] = fmt
        _install_console()


class timed:
    """Time a block and log its duration at PERF: `with timed(log, "process 'x'"):`.

    A class rather than a @contextmanager generator: this wraps every process
    call, and the generator machinery alone cost a few microseconds each time.
    """

    __slots__ = ("log", "start", "what")

    def __init__(self, log: Any, what: str) -> None:
        self.log = log
        self.what = what

    def __enter__(self) -> timed:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.log.log(PERF, "{} took {:.4f}s", self.what, time.perf_counter() - self.start)
