"""What a task's code does never aborts the run or stores a wrong result (issue 11).

A timeout is a timeout whatever the task does with it; `sys.exit()`,
`asyncio.CancelledError` and other BaseExceptions fail that task only; a stored
value whose class is gone is a clear failure; bad timeouts and undecodable names
are refused when the task is defined. Every executor, where the item says so.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import little_pipelines as lp
from little_pipelines.errors import TaskDefinitionError
from little_pipelines.worker import TaskTimeout


# -- task code at module level, so every kind of worker can run it ------------------------
def swallows_its_timeout() -> list[int]:
    try:
        time.sleep(2)
        return [1, 2, 3]
    except Exception:  # the pattern that turned a timeout into a cached []
        return []


def swallows_everything() -> str:
    try:
        time.sleep(2)
        return "done"
    except BaseException:  # what a careless task does
        return "fallback"


def exits() -> None:
    sys.exit(3)


def cancelled() -> None:
    raise asyncio.CancelledError()


class Custom(BaseException):
    pass


def raises_custom() -> None:
    raise Custom("mine")


def fine() -> str:
    return "fine"


def test_a_swallowed_timeout_is_a_timeout_and_nothing_is_stored(executor: Any) -> None:
    p = lp.Pipeline("Swallow")
    p.add(lp.Task.from_function(swallows_its_timeout, timeout=0.3))
    p.add(lp.Task.from_function(fine))
    report = p.execute(executor=executor, workers=2)
    assert report["swallows_its_timeout"].status == "failed"
    assert "TaskTimeout" in report["swallows_its_timeout"].why
    assert report["fine"].status == "executed"
    assert p.record("swallows_its_timeout") is None  # the fallback [] was not stored
    p.close()


def test_a_task_catching_even_base_exceptions_is_timed_out_by_the_clock() -> None:
    p = lp.Pipeline("Greedy")
    p.add(lp.Task.from_function(swallows_everything, timeout=0.3))
    report = p.execute()
    assert report["swallows_everything"].status == "failed"
    assert "TaskTimeout" in report["swallows_everything"].why
    assert p.record("swallows_everything") is None
    p.close()


def test_base_exceptions_fail_their_task_only(executor: Any) -> None:
    p = lp.Pipeline("Base")
    for fn in (exits, cancelled, raises_custom, fine):
        p.add(lp.Task.from_function(fn))
    report = p.execute(executor=executor, workers=2)
    assert {o.name: o.status for o in report} == {
        "exits": "failed", "cancelled": "failed", "raises_custom": "failed", "fine": "executed"}
    assert "SystemExit" in report["exits"].error
    assert "CancelledError" in report["cancelled"].error
    assert "Custom" in report["raises_custom"].error
    assert p.last_report is report
    p.close()


def raises_task_timeout() -> None:
    raise TaskTimeout()  # the task's own, though it has no timeout=


@pytest.mark.parametrize("retries", [0, 1])
def test_failures_are_the_same_with_or_without_retries(retries: int) -> None:
    # One attempt without a timeout takes a shorter path than a retried one: the same
    # outcomes, exceptions caught the same way.
    p = lp.Pipeline(f"Alike{retries}")
    for fn in (exits, raises_custom, raises_task_timeout, fine):
        p.add(lp.Task.from_function(fn, retries=retries))
    report = p.execute()
    assert {o.name: o.status for o in report} == {
        "exits": "failed", "raises_custom": "failed", "raises_task_timeout": "failed",
        "fine": "executed"}
    assert "SystemExit" in report["exits"].error
    assert "Custom" in report["raises_custom"].error
    assert "TaskTimeout" in report["raises_task_timeout"].error
    assert [report[n].attempts for n in ("exits", "fine")] == [retries + 1, 1]
    assert p.get_result("fine") == "fine" and p.record("exits") is None
    p.close()


@pytest.mark.parametrize("kind", ["sequential", "threads", "processes"])
def test_a_stored_value_whose_class_is_gone_fails_clearly(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "shapes_lp11.py"
    module.write_text("class Box:\n    def __init__(self, n):\n        self.n = n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "shapes_lp11", raising=False)
    import shapes_lp11  # type: ignore[import-not-found]

    def pipeline() -> lp.Pipeline:
        p = lp.Pipeline("Gone")

        @p.task(version="1")
        def make() -> Any:
            return shapes_lp11.Box(3)

        @p.task(version="1")
        def use(make: Any) -> int:
            return 1

        return p

    p = pipeline()
    p.execute()
    p.close()
    module.write_text("class Crate:\n    pass\n")  # Box renamed
    sys.modules.pop("shapes_lp11")

    p = pipeline()
    report = p.execute(force_tasks=["use"], executor=kind)
    assert report["make"].status == "cached"
    assert report["use"].status == "failed"
    error = report["use"].error
    assert "'make'" in error and "Box" in error and "lpipe forget" in error, error
    p.close()


@pytest.mark.parametrize("timeout", [float("inf"), 1e12, float("nan"), -1, 0])
def test_a_timeout_that_cannot_be_enforced_is_refused_at_definition(timeout: float) -> None:
    with pytest.raises(TaskDefinitionError, match="timeout=None for no limit"):
        lp.Task("t", timeout=timeout)


def test_no_timeout_is_none() -> None:
    assert lp.Task("t", timeout=None).timeout is None


def test_a_task_name_that_is_not_valid_unicode_is_refused_at_definition() -> None:
    name = os.fsdecode(b"report_\xff.csv")
    with pytest.raises(TaskDefinitionError, match="valid Unicode"):
        lp.Task(name)
    p = lp.Pipeline("Names")
    with pytest.raises(TaskDefinitionError, match="valid Unicode"):
        p.task(name=name)(lambda: 1)
    p.close()
