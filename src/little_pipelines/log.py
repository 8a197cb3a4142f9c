"""Loguru glue: the PERF level, per-task log files, and the console.

* Every record the library or a task emits carries `extra["lp_scope"]` (the task
  or pipeline name), so hosts can filter it.
* The library's sinks (the task files, its console line, a worker's capture)
  live on a loguru core of their own, so the host's handlers are never touched:
  loguru's default handler (id 0) stays where it is and `logger.remove(0)`
  keeps working. Each record goes to that core (the files want everything,
  DEBUG and PERF included) and, when it is at or above the level set by
  `set_log_level`, to the host's handlers too — unless loguru is still as it
  came (its default handler alone): then the library's own console prints it,
  in the library's format, and handler 0 does not (it would print it twice).
  Routing at the source is the only way a level reaches handlers we did not
  add; adding a filter to the host's handlers was rejected (they are not ours).
* Log files go through ONE sink (`logfiles.TaskFiles`). A task's own records (`this.logger`) and its
  failures go to `<log dir>/<task>.log`; the run's story — each task's status
  line, every PERF timing, the summary — goes to `<log dir>/_pipeline.log`.
  A `logger.add` per task was rejected: it costs ~14 ms a call and makes every
  record pass every sink's filter, which turns a 1,000-task run quadratic.
* A log folder that cannot be used (not writable, another user's, a symlinked
  file) costs one warning: the records of that folder then reach the console
  and the host's handlers only, never a traceback per record.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from .errors import InvalidOptionError, OptionTypeError

# RUN_LOG and safe_filename are re-exported: tasks and renderers name files with them.
from .logfiles import RUN_LOG as RUN_LOG
from .logfiles import TaskFiles
from .logfiles import safe_filename as safe_filename

PERF = "PERF"
PERF_NO = 15  # between DEBUG (10) and INFO (20): in the log files, off the console by default

DEFAULT_FORMAT = (
    "<green>{time:HH:mm:ss}</green> | <level>{level: <7}</level> | "
    "<cyan>{extra[lp_scope]}</cyan> | {message}"
)
# No "\n{exception}" here: loguru appends it to every string format itself, and
# writing it twice put a blank line after each record.
_FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[lp_scope]} | {message}"


def _register_perf_level(target: Any) -> None:
    try:
        target.level(PERF)
    except ValueError:
        target.level(PERF, no=PERF_NO, color="<blue>", icon="⏱")


def _new_core() -> Any:
    """A loguru logger with a core (handlers, levels) of its own, as loguru builds its own.

    loguru has no public constructor for one (its documented recipe deep-copies
    the global logger, which fails once the host added a stream handler); if its
    internals ever move, the library falls back to the global logger alone.
    """
    try:
        from loguru._logger import Core, Logger

        return Logger(core=Core(), exception=None, depth=0, record=False, lazy=False,
                      colors=False, raw=False, capture=True, patchers=[], extra={})
    except Exception:  # pragma: no cover - a loguru without these internals
        return logger


_register_perf_level(logger)
_own = _new_core()
_register_perf_level(_own)
_local = threading.local()  # .records: a worker capturing this thread's records

_state: dict[str, Any] = {
    "file_sink": None,
    "console": None,
    "capture": None,
    "level": "INFO",
    "level_no": 20,
    "format": DEFAULT_FORMAT,
    "hide_story": False,
}
_state_lock = threading.Lock()


def _hosts_handlers() -> Any:
    # loguru offers no public way to list handlers; read it, and if it moved,
    # behave as for a host that configured loguru (records go to its handlers).
    return getattr(getattr(logger, "_core", None), "handlers", None)


def library_console() -> bool:
    """True while loguru is untouched (its default handler alone): the library then
    prints its own lines; else they go to the host's handlers."""
    handlers = _hosts_handlers()
    return handlers is not None and len(handlers) == 1 and 0 in handlers and _own is not logger


def _capturing() -> bool:
    return getattr(_local, "records", None) is not None


class LpLogger:
    """loguru's logger API for the library's and tasks' records, routed as the module says.

    `bind`, `patch` and `opt` chain as in loguru; anything else (`level`, `catch`,
    `add`, ...) is the global logger's.
    """

    __slots__ = ("_always", "_file_only", "_opts", "_own", "_world")

    def __init__(self, world: Any, own: Any, opts: dict[str, Any] | None = None,
                 file_only: bool = False, always: bool = False) -> None:
        self._world = world
        self._own = own
        self._opts = opts or {}
        self._file_only = file_only  # bound lp_file_only: the task's file alone
        self._always = always  # bound lp_console: shown whatever the level

    def bind(self, **extra: Any) -> LpLogger:
        return LpLogger(self._world.bind(**extra), self._own.bind(**extra), self._opts,
                        self._file_only or bool(extra.get("lp_file_only")),
                        self._always or bool(extra.get("lp_console")))

    def patch(self, patcher: Callable[[Any], None]) -> LpLogger:
        return LpLogger(self._world.patch(patcher), self._own.patch(patcher), self._opts,
                        self._file_only, self._always)

    def opt(self, **options: Any) -> LpLogger:
        return LpLogger(self._world, self._own, options, self._file_only, self._always)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy/pickle probing a half-built object: no recursion
            raise AttributeError(name)
        return getattr(self._world, name)

    def trace(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("TRACE", 5, message, args, kwargs)

    def debug(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("DEBUG", 10, message, args, kwargs)

    def info(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("INFO", 20, message, args, kwargs)

    def success(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("SUCCESS", 25, message, args, kwargs)

    def warning(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("WARNING", 30, message, args, kwargs)

    def error(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("ERROR", 40, message, args, kwargs)

    def critical(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("CRITICAL", 50, message, args, kwargs)

    def exception(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._emit("ERROR", 40, message, args, kwargs, exception=True)

    def log(self, level: str | int, message: Any, *args: Any, **kwargs: Any) -> None:
        no = level if isinstance(level, int) else self._world.level(level).no
        self._emit(level, no, message, args, kwargs)

    def _emit(self, level: str | int, no: int, message: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any], exception: bool = False) -> None:
        opts = dict(self._opts)
        if exception:
            opts["exception"] = True
        opts["depth"] = opts.get("depth", 0) + 2  # the caller of info(), not this module
        if _own is logger:  # pragma: no cover - no core of our own: as loguru alone does
            self._world.opt(**opts).log(level, message, *args, **kwargs)
            return
        # The library's sinks are added when the first record that may need them comes
        # (each `add` costs ~3 ms, once a process): a quiet run that logs nothing
        # through loguru adds none (see `statuslines.story_line`).
        shown = (no >= _state["level_no"] or self._always) and not self._file_only
        if _state["file_sink"] is None:
            ensure_file_sink()
        if _state["console"] is None and shown:  # the console's filter drops the others
            ensure_console()
        self._own.opt(**opts).log(level, message, *args, **kwargs)
        if shown and not _capturing() and not library_console():
            self._world.opt(**opts).log(level, message, *args, **kwargs)


def _bound(**extra: Any) -> LpLogger:
    return LpLogger(logger.bind(**extra), _own.bind(**extra))


#: The library's own records that belong to no task or run (a damaged store, say).
lib_logger = _bound(lp_scope="little_pipelines")


def task_logger(task: str, log_dir: Path | None) -> LpLogger:
    """A logger bound to a task: its records also go to `<log_dir>/<task>.log`
    (its PERF timings to the run's log, `<log_dir>/_pipeline.log`)."""
    return _bound(lp_scope=task, lp_task=task, lp_log_dir=str(log_dir) if log_dir else None)


def run_logger(scope: str, log_dir: Path | None) -> LpLogger:
    """A logger for the run's story: the console, the host's handlers and `_pipeline.log`."""
    return _bound(lp_scope=scope, lp_task=scope, lp_run_log=True, lp_story=True,
                  lp_log_dir=str(log_dir) if log_dir else None)


#: the one sink behind every task's file and the run log (statuslines writes it directly)
task_files = TaskFiles(lambda folder, problem: lib_logger.warning(
    "Log files in {} cannot be written ({}: {}); this process logs to the console only "
    "from now on. Give the pipeline a log_dir= you own, or fix the folder.",
    folder, type(problem).__name__, problem))


def ensure_file_sink() -> None:
    """Add the per-task file sink once per process (on the library's own core)."""
    if _state["file_sink"] is None:
        with _state_lock:
            if _state["file_sink"] is None:
                _state["file_sink"] = _own.add(
                    task_files,
                    level="DEBUG",
                    format=_FILE_FORMAT,
                    filter=_for_files,
                    catch=True,
                )


def _for_files(record: Any) -> bool:
    return record["extra"].get("lp_log_dir") is not None and not _capturing()


def close_task_files() -> None:
    task_files.close_all()


def story_takers(no: int, *, story: bool = True) -> tuple[bool, bool] | None:
    """Who takes a record of the run's at level `no` now (`story`: a status line, which
    `lpipe run` hides): (the library's console, the host's handlers); None when records
    are captured or loguru's internals moved (then only a real loguru call routes them
    right). A run asks once, not per record."""
    if _own is logger or _capturing():
        return None
    shown = no >= _state["level_no"]
    if library_console():
        return shown and not (story and _state["hide_story"]), False
    return False, shown


# -- the console ---------------------------------------------------------------------------
def _for_console(record: Any) -> bool:
    extra = record["extra"]
    return (
        "lp_scope" in extra
        # lp_console: a line the user must see at any level ("waiting for task X")
        and (record["level"].no >= _state["level_no"] or bool(extra.get("lp_console")))
        and not extra.get("lp_file_only")
        and not (_state["hide_story"] and extra.get("lp_story"))
        and not _capturing()
        and library_console()
    )


def _write_stderr(message: Any) -> None:
    # Looked up at each write, so a replaced sys.stderr (pytest, a host) is honoured.
    sys.stderr.write(message)


def ensure_console() -> None:
    """Add the library's console once (on its own core; it prints only while loguru is
    untouched, see `library_console`). Never removes or adds a handler of the host's."""
    if _state["console"] is None and _own is not logger:
        with _state_lock:
            if _state["console"] is None:
                # Its level and format are read from _state at each record, so
                # set_log_level / set_log_format change them without a new handler
                # (each add costs ~6 ms, most of it loguru working out library paths).
                _state["console"] = _own.add(
                    _write_stderr,
                    level=0,
                    # a callable format: no traceback on the console (it is in the task's file)
                    format=lambda _record: _state["format"] + "\n",
                    filter=_for_console,
                    colorize=_isatty(),
                )


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def set_log_level(level: str | int) -> None:
    """Set the level of the library's and tasks' records on the console and on the host's
    handlers (e.g. "ERROR"); the log files keep every record.

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
    with _state_lock:  # the console reads it at each record (added when one is shown)
        _state["level"] = level
        _state["level_no"] = level if isinstance(level, int) else logger.level(level).no


def set_log_format(fmt: str | None = None) -> None:
    """Set the console's line format (loguru format syntax); None restores the default.

    The format is tried on a record like the library's before it is taken: a
    broken one, or one naming an `{extra[...]}` key the library's records do not
    carry, raises ValueError and leaves the console as it was.
    """
    if fmt is not None and not isinstance(fmt, str):
        raise OptionTypeError(f"Log format must be a loguru format string, got {fmt!r}.")
    fmt = DEFAULT_FORMAT if fmt is None else fmt
    _try_format(fmt)
    with _state_lock:
        _state["format"] = fmt


def _try_format(fmt: str) -> None:
    """Format one record like the library's with `fmt` on a throwaway core, or raise."""
    probe = _new_core()
    if probe is logger:  # pragma: no cover - no core of our own: only loguru's own check
        probe_id = logger.add(lambda _m: None, format=fmt, level="CRITICAL", colorize=True)
        logger.remove(probe_id)
        return
    _register_perf_level(probe)
    try:
        probe.add(lambda _m: None, format=fmt, level="DEBUG", colorize=True, catch=False)
        probe.bind(lp_scope="little_pipelines").info("probe")
    except KeyError as e:
        raise InvalidOptionError(
            f"Invalid log format {fmt!r}: the library's records have no extra key {e}. "
            f"Every one carries extra['lp_scope'] (the task or pipeline name); use "
            f"{{extra[lp_scope]}}, or a key your own code binds with .get in a function format."
        ) from None
    except (ValueError, IndexError, AttributeError) as e:
        raise InvalidOptionError(f"Invalid log format {fmt!r}: {e}") from None
    finally:
        probe.remove()


def hide_story_on_console(hide: bool) -> None:
    """Leave the run's story (each task's status line, the summary) off the console:
    `lpipe run` draws it itself. The files and the host's handlers still get it."""
    _state["hide_story"] = bool(hide)


# -- away from the driver ----------------------------------------------------------------------
@contextmanager
def captured() -> Iterator[list[tuple[float, str, str]]]:
    """On a worker: this thread's library and task records are collected, not printed.

    They are sent back with the task's value, and the driver writes them into the
    files and onto its console. Nothing reaches the worker's own handlers (a Dask
    worker's loguru default handler would print every line again, in its format).
    """
    ensure_capture_sink()
    records: list[tuple[float, str, str]] = []
    _local.records = records
    try:
        yield records
    finally:
        _local.records = None


def ensure_capture_sink() -> None:
    if _state["capture"] is None:
        with _state_lock:
            if _state["capture"] is None:
                _state["capture"] = _own.add(_capture_record, level=0, format="{message}",
                                             filter=lambda _r: _capturing())


def _capture_record(message: Any) -> None:
    import traceback

    records = getattr(_local, "records", None)
    if records is not None:
        r = message.record
        text = r["message"]
        if r["exception"] is not None:
            text += "\n" + "".join(traceback.format_exception(*r["exception"]))
        records.append((r["time"].timestamp(), r["level"].name, text))


def forget_driver_sinks() -> None:
    """In a forked worker: drop the library's sinks inherited from the driver (its console,
    its files); the driver alone writes them. The host's handlers are left alone."""
    if _own is not logger:
        _own.remove()
    for key in ("file_sink", "console", "capture"):
        _state[key] = None


def at_time(when: float) -> Callable[[Any], None]:
    """A loguru patcher giving a replayed record the time it was made on a worker.

    The new time is made by the class of loguru's own (a datetime whose format
    understands `HH:mm:ss`); a plain datetime printed those letters literally.
    """

    def patch(record: Any) -> None:
        made = record["time"]
        record["time"] = type(made).fromtimestamp(when, tz=made.tzinfo)

    return patch


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
