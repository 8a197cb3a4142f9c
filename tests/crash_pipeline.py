"""A pipeline run in a child process by the kill and concurrency tests (and `make stress`).

Run as `python crash_pipeline.py`; everything is set by environment variables so
the parent can start the same pipeline many ways:

    LP_STORE     the pipeline's store folder (cache_dir=)
    LP_WORK      a folder with `data.txt` (the input), where tasks leave markers
                 (`<task>.running`, holding the PID running it) and append
                 "<pid> <task>" to `tasks.log` when they start
    LP_GATE      if set, `slow` waits until `<LP_WORK>/gate` exists (at most 60 s)
    LP_BIG       size in bytes of the value `big` returns (default 50 MB)
    LP_EXECUTOR  sequential (default), threads or processes
    LP_FORCE     comma-separated tasks to rerun even if cached (force_tasks=)
    LP_KILL      where this process SIGKILLs itself:
                   task:<name>    inside the task, once it has started
                   value:<name>   after the value file is written and its row set,
                                  before the commit
                   record:<name>  after the value is set, before the task's row (its
                                  record) is written and before the commit
                   stored:<name>  right after the task's result is stored
    LP_MARK_STORE  if set to a task name, `<task>.storing` is written when its value
                 starts being written (so the parent can kill during the write)

It prints one JSON line: the PID, each task's status, and a digest of each result.
The signals are real; the hooks only choose the moment.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import time
from pathlib import Path
from typing import Any

import diskcache

import little_pipelines as lp
from little_pipelines import cachedisk, recordtable
from little_pipelines import store as lp_store

WORK = Path(os.environ.get("LP_WORK", "."))
BIG = int(os.environ.get("LP_BIG", str(50 * 2**20)))
KILL = os.environ.get("LP_KILL", "")

p = lp.Pipeline("crash", cache_dir=os.environ.get("LP_STORE"))


def _enter(name: str) -> None:
    with open(WORK / "tasks.log", "a") as f:  # O_APPEND: lines of two processes don't mix
        f.write(f"{os.getpid()} {name}\n")
    (WORK / f"{name}.running").write_text(str(os.getpid()))
    if f"task:{name}" == KILL:
        _die()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@p.task(input_files=[str(WORK / "data.txt")])
def source() -> str:
    _enter("source")
    return (WORK / "data.txt").read_text()


@p.task
def words(source: str) -> list[str]:
    _enter("words")
    return source.split()


@p.task
def big(source: str) -> bytes:
    _enter("big")
    block = hashlib.sha256(source.encode()).digest()
    return (block * (BIG // len(block) + 1))[:BIG]


@p.task
def slow(words: list[str]) -> list[str]:
    _enter("slow")
    if os.environ.get("LP_GATE"):
        deadline = time.monotonic() + 60
        while not (WORK / "gate").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return sorted(words)


@p.task
def stats(words: list[str]) -> dict[str, int]:
    _enter("stats")
    return {w: words.count(w) for w in sorted(set(words))}  # sorted: same pickle every run


@p.task
def checksum(big: bytes) -> str:
    _enter("checksum")
    return hashlib.sha256(big).hexdigest()


@p.task
def report(slow: list[str], stats: dict[str, int], checksum: str) -> tuple[int, int, str]:
    _enter("report")
    return len(slow), len(stats), checksum


TASKS = ["source", "words", "big", "slow", "stats", "checksum", "report"]


def _hooks() -> None:
    """Patch the moment of death in; the write itself stays diskcache's own."""
    kind, _, name = KILL.partition(":")
    marked = os.environ.get("LP_MARK_STORE")
    original_store = cachedisk.HoldingDisk.store

    def store(self: Any, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if marked and key == lp_store._FILE + marked:
            (WORK / f"{marked}.storing").write_text(str(os.getpid()))
        out = original_store(self, value, read, key=key)
        if kind == "value" and key == lp_store._FILE + name:
            _die()
        return out

    cachedisk.HoldingDisk.store = store  # type: ignore[method-assign]
    original_write = recordtable.write

    def write(sql: Any, rows: Any) -> None:
        rows = list(rows)
        if kind == "record" and any(row[0] == name for row in rows):
            _die()
        original_write(sql, rows)

    recordtable.write = write
    original_pickle = lp_store.Store.pickle

    def pickle_value(self: Any, task: str, value: Any) -> Any:
        # A large value is written to its file here, before the transaction of `put`.
        if marked and task == marked:
            (WORK / f"{marked}.storing").write_text(str(os.getpid()))
        return original_pickle(self, task, value)

    lp_store.Store.pickle = pickle_value  # type: ignore[method-assign]
    if kind == "stored":
        original_put = lp_store.Store.put

        def put(self: Any, task: str, blob: bytes, record: dict[str, Any]) -> None:
            original_put(self, task, blob, record)
            if task == name:
                _die()

        lp_store.Store.put = put  # type: ignore[method-assign,assignment]


def main() -> None:
    _hooks()
    forced = [n for n in os.environ.get("LP_FORCE", "").split(",") if n]
    report_ = p.execute(executor=os.environ.get("LP_EXECUTOR", "sequential"),
                        force_tasks=forced)
    results = {}
    for name in TASKS:
        value = p.get_result(name)
        results[name] = hashlib.sha256(pickle.dumps(value)).hexdigest()[:16]
    statuses = {o.name: o.status for o in report_}
    print(json.dumps({"pid": os.getpid(), "statuses": statuses, "results": results}))


if __name__ == "__main__":
    main()
