"""The report's vocabulary: one Status enum with its look, reason kinds with their texts."""

from __future__ import annotations

import re
from pathlib import Path

import little_pipelines as lp
from little_pipelines.report import REASON_TEXT, Status, last_line

SRC = Path(lp.__file__).parent


def test_every_status_carries_its_symbol_style_and_words() -> None:
    assert [s.value for s in Status] == ["executed", "cached", "skipped", "failed", "run",
                                         "waiting", "interrupted"]
    for status in Status:
        assert status.symbol and status.style and status.done and status.next_run
        assert Status(status.value) is status and status == status.value
    assert Status.of("cached") is Status.CACHED and Status.of("stale") is None
    assert len({s.symbol for s in Status}) == len(Status)


def test_every_reason_kind_the_code_uses_has_a_text() -> None:
    used = {m for path in SRC.glob("*.py")
            for m in re.findall(r'Reason\(\s*"(\w+)"', path.read_text(encoding="utf-8"))}
    assert used, "the pattern found no Reason(...) at all"
    assert used <= set(REASON_TEXT), used - set(REASON_TEXT)
    for kind in REASON_TEXT:
        str(lp.Reason(kind, "x", "y"))  # every text formats with a subject and a detail


def test_statuses_in_a_report_are_plain_strings(pipelines) -> None:
    p = pipelines("Plain")

    @p.task
    def one():
        return 1

    report = p.execute()
    assert type(report["one"].status) is str
    assert report.counts() == {"executed": 1}


def test_last_line_of_an_error() -> None:
    assert last_line("Traceback ...\n  File x\nValueError: bad\n") == "ValueError: bad"
    assert last_line("  \n") == "failed" and last_line(None, "-") == "-"


def test_a_plan_outcome_names_the_state_of_the_stored_result() -> None:
    from little_pipelines.report import State

    def plan(status: str, *kinds: str) -> lp.TaskOutcome:
        return lp.TaskOutcome("t", status, tuple(lp.Reason(k) for k in kinds))

    assert State.of(plan("run", "no_result")) is State.NOT_CACHED
    assert State.of(plan("run", "forced")) is State.STALE
    assert State.of(plan("cached", "unchanged")) is State.CACHED
    assert State.of(plan("waiting", "waiting")) is State.WAITING
    for state in State:
        assert state.style and state.fill.startswith("#") and state.stroke.startswith("#")
