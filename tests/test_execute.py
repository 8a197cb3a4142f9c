"""§5 Execution control and the report: targets, force, skip, failures, plans."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

import little_pipelines as lp
from demo import diamond_tasks, task, write


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def diamond(pipelines, ran):
    """A reads a.txt; B and C need A; D needs B and C; Side stands alone."""
    p = pipelines("Diamond")
    p.add(diamond_tasks(ran))
    return p


def kinds(report: lp.RunReport, name: str) -> list[str]:
    return [r.kind for r in report[name].reasons]


# -- selecting -----------------------------------------------------------------------------


def test_targets_run_only_what_they_need_upstream(diamond, ran) -> None:
    report = diamond.execute(targets=["B"])
    assert ran == ["A", "B"]
    assert list(report.outcomes) == ["A", "B"]
    assert diamond.get_result("C") is None


def test_targets_accept_a_name_or_a_task(diamond, ran) -> None:
    diamond.execute(targets="C")
    diamond.execute(targets=[diamond.get_task("Side")])
    assert ran == ["A", "C", "Side"]


def test_targets_reuse_what_is_cached_upstream(diamond, ran) -> None:
    diamond.execute(targets=["B"])
    report = diamond.execute(targets=["D"])
    assert report.cached == ["A", "B"]
    assert report.executed == ["C", "D"]


def test_force_reruns_every_selected_task(diamond, ran) -> None:
    diamond.execute()
    ran.clear()
    report = diamond.execute(force=True)
    assert ran == ["A", "B", "C", "D", "Side"]
    assert all(kinds(report, n) == ["forced"] for n in ran)
    ran.clear()
    diamond.execute(targets=["B"], force=True)
    assert ran == ["A", "B"]


def test_force_tasks_below_rerun_only_if_the_result_changed(diamond, ran) -> None:
    diamond.execute()
    ran.clear()
    report = diamond.execute(force_tasks=["A"])
    assert ran == ["A"]  # same result: B, C and D stay cached
    assert kinds(report, "A") == ["forced"]
    assert report.cached == ["B", "C", "D", "Side"]


def test_force_tasks_with_a_changing_result_reruns_below(pipelines, ran) -> None:
    counter = iter(range(100))
    p = pipelines()
    p.add(task("Tick", ran=ran, value=lambda: next(counter)), task("Below", ["Tick"], ran),
          task("Other", ran=ran))
    p.execute()
    ran.clear()
    report = p.execute(force_tasks=[p.get_task("Tick")])
    assert ran == ["Tick", "Below"]
    assert kinds(report, "Below") == ["upstream_changed"]
    assert report.cached == ["Other"]
    assert p.get_result("Below") == ["Below", 1]


def test_skip_tasks_with_a_stored_result(diamond, ran) -> None:
    diamond.execute()
    ran.clear()
    write("a.txt", "2")  # A would rerun, but it is skipped: its stored result is used
    report = diamond.execute(skip_tasks=["A"])
    assert ran == []
    assert report.skipped == ["A"]
    assert kinds(report, "A") == ["skip_requested"]
    assert report.cached == ["B", "C", "D", "Side"]
    assert diamond.get_task("A").is_skipped is True


def test_skip_tasks_feed_their_stored_result_to_tasks_that_run(pipelines, ran) -> None:
    write("a.txt", "1")
    write("b.txt", "b1")
    p = pipelines()
    p.add(task("A", ran=ran, reads="a.txt"), task("B", ["A"], ran, reads="b.txt"))
    p.execute()
    ran.clear()
    write("b.txt", "b2")

    t = lp.Task("UsesA", dependencies=["A"])

    @t.process
    def run(this):
        ran.append("UsesA")
        return this.pipeline.get_result("A")

    p.add(t)
    report = p.execute(skip_tasks="A")
    assert report.skipped == ["A"]
    assert ran == ["B", "UsesA"]
    assert p.get_result("UsesA") == "1"


def test_skip_tasks_without_a_stored_result_skip_the_tasks_below(diamond, ran) -> None:
    report = diamond.execute(skip_tasks=["A"])
    assert ran == ["Side"]
    assert report.skipped == ["A", "B", "C", "D"]
    assert [(r.kind, r.subject) for r in report["B"].reasons] == [("upstream_skipped", "A")]
    assert "did not run and has no stored result" in report["B"].why
    assert report.executed == ["Side"]
    assert report.failed == []


def test_skipping_a_task_whose_result_expired_skips_the_tasks_below(pipelines, ran) -> None:
    write("b.txt", "1")
    p = pipelines()

    @p.task(expire_results=lp.expire.on_complete())
    def per_run():
        return 5

    @p.task(input_files=["b.txt"])
    def below(per_run):
        ran.append("below")
        return ("got", per_run)

    p.execute()
    write("b.txt", "22")
    report = p.execute(skip_tasks=["per_run"])
    assert ran == ["below"]  # not run again with a missing value
    assert report.skipped == ["per_run", "below"]
    assert [(r.kind, r.subject) for r in report["below"].reasons] == [
        ("upstream_skipped", "per_run")
    ]
    assert p.get_result("below") == ("got", 5)
    report = p.execute(single_task="below")
    assert report.skipped == ["below"] and ran == ["below"]


@pytest.mark.parametrize("option", ["targets", "force_tasks", "skip_tasks", "single_task"])
def test_unknown_names_are_an_error_before_anything_runs(diamond, ran, option) -> None:
    with pytest.raises(lp.UnknownTaskError, match="'Sid'.*Did you mean 'Side'") as info:
        diamond.execute(**{option: "Sid"})
    assert isinstance(info.value, KeyError)
    assert ran == []
    with pytest.raises(lp.UnknownTaskError):
        diamond.plan(**{option: ["A", "Nope"]})


def test_single_task_runs_that_task_without_its_upstream(diamond, ran) -> None:
    diamond.execute()
    ran.clear()
    write("a.txt", "changed")  # A is stale, but single_task does not look upstream
    report = diamond.execute(single_task="D")
    assert ran == ["D"]
    assert list(report.outcomes) == ["D"]
    assert report.executed == ["D"]


# -- failures ------------------------------------------------------------------------------


def test_a_failing_task_is_recorded_and_independent_tasks_still_run(pipelines, ran) -> None:
    p = pipelines("Failing")
    p.add(
        task("Bad", ran=ran, fail=True),
        task("Strict", ["Bad"], ran),  # if_upstream_errors="FAIL" is the default
        task("Lenient", ["Bad"], ran, if_upstream_errors="SKIP"),
        task("BelowStrict", ["Strict"], ran, if_upstream_errors="SKIP"),
        task("Independent", ran=ran),
    )
    report = p.execute()  # does not raise
    assert ran == ["Bad", "Independent"]
    assert report.failed == ["Bad", "Strict"]
    assert report.skipped == ["Lenient", "BelowStrict"]
    assert report.executed == ["Independent"]
    assert p.failures == ["Bad", "Strict"]
    assert kinds(report, "Bad") == ["no_result", "error"]
    assert "ZeroDivisionError: Bad divided by zero" in report["Bad"].error
    assert [(r.kind, r.subject) for r in report["Strict"].reasons] == [("upstream_failed", "Bad")]
    assert [(r.kind, r.subject) for r in report["Lenient"].reasons] == [("upstream_failed", "Bad")]
    assert [(r.kind, r.subject) for r in report["BelowStrict"].reasons] == [
        ("upstream_failed", "Strict")
    ]
    assert report.ok is False
    assert p.get_result("Bad", default="none") == "none"


def test_the_traceback_goes_to_the_task_log_file(pipelines, ran) -> None:
    p = pipelines("Failing")
    p.add(task("Bad", ran=ran, fail=True))
    p.execute()
    log = (Path(p.log_dir) / "Bad.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert "ZeroDivisionError: Bad divided by zero" in log


def test_raise_for_failures(pipelines, ran) -> None:
    p = pipelines("Failing")
    p.add(task("Bad", ran=ran, fail=True), task("Fine", ran=ran))
    report = p.execute()
    with pytest.raises(lp.PipelineFailedError, match="Bad: ZeroDivisionError") as info:
        report.raise_for_failures()
    assert isinstance(info.value, RuntimeError)
    assert "Fine" not in str(info.value)

    ok = pipelines("Fine")
    ok.add(task("Fine", ran=ran))
    good = ok.execute()
    assert good.raise_for_failures() is good


def test_per_run_state_starts_fresh(pipelines, ran) -> None:
    write("n.txt", "x")
    bad = lp.Task("Parse", input_files=["n.txt"])

    @bad.process
    def run(this):
        with open("n.txt") as f:
            return int(f.read())

    p = pipelines()
    once = task("Once", ran=ran)
    p.add(bad, once)
    p.execute()
    assert p.failures == ["Parse"]
    assert once.is_executed is True and once.is_skipped is False
    assert bad.is_executed is False

    write("n.txt", "7")
    p.execute()
    assert p.failures == []
    assert bad.is_executed is True and bad.is_skipped is False
    assert once.is_executed is False and once.is_skipped is True

    once.is_skipped = False  # set by hand; the next execute decides afresh
    p.execute(force_tasks=["Once"])
    assert once.is_executed is True and once.is_skipped is False
    assert bad.is_executed is False and bad.is_skipped is True


def test_an_unstorable_result_fails_clearly_and_keeps_the_old_one(pipelines, ran) -> None:
    make = {"value": lambda: 1}
    t = lp.Task("Handle")

    @t.process
    def run(this):
        return make["value"]()

    p = pipelines()
    p.add(t, task("Below", ["Handle"], ran))
    p.execute()
    make["value"] = lambda: (lambda: "a function cannot be pickled")
    report = p.execute(force_tasks=["Handle"])
    assert report.failed == ["Handle", "Below"]
    assert "cannot be stored" in report["Handle"].error
    assert p.get_result("Handle") == 1


# -- the report ----------------------------------------------------------------------------


def test_report_statuses_reasons_and_lists(diamond, ran) -> None:
    first = diamond.execute()
    assert first.executed == ["A", "B", "C", "D", "Side"]
    assert all(kinds(first, n) == ["no_result"] for n in first.executed)
    assert first.cached == first.skipped == first.failed == []
    assert first.counts() == {"executed": 5}
    assert "5 executed" in first.summary()

    write("a.txt", "2")
    second = diamond.execute(skip_tasks=["Side"])
    assert second["A"].status == "executed"
    assert [(r.kind, r.subject) for r in second["A"].reasons] == [("input_changed", "a.txt")]
    assert [(r.kind, r.subject) for r in second["D"].reasons] == [
        ("upstream_changed", "B"), ("upstream_changed", "C")
    ]
    assert second.skipped == ["Side"]
    assert len(second) == 5 and {o.name for o in second} == {"A", "B", "C", "D", "Side"}

    third = diamond.execute()
    assert third["A"].status == "cached"
    assert kinds(third, "A") == ["unchanged"]
    assert "unchanged since" in third["A"].why


def test_durations_and_time_saved(diamond, ran) -> None:
    first = diamond.execute()
    assert all(o.duration >= 0.0 for o in first)
    assert first.saved == 0.0
    assert first.duration >= 0.0

    second = diamond.execute()
    for name in second.cached:
        stored = diamond.record(name)["duration"]
        assert stored == first[name].duration  # what the run that stored it took
        assert second[name].stored_duration == stored
    assert second.saved == pytest.approx(sum(first[n].duration for n in second.cached))
    assert "cache saved" in second.summary()


def test_report_renders_with_rich(diamond, ran) -> None:
    diamond.get_task("Side")
    report = diamond.execute()
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(report)
    text = out.getvalue()
    assert "✓ executed" in text and "no stored result" in text
    for name in ("A", "B", "C", "D", "Side"):
        assert name in text


# -- plans -----------------------------------------------------------------------------------


def test_plan_runs_nothing_and_marks_tasks_below_as_waiting(diamond, ran) -> None:
    diamond.execute()
    ran.clear()
    write("a.txt", "2")
    before = diamond.record("A")
    for plan in (diamond.plan(), diamond.execute(dry_run=True)):
        assert plan.planned is True
        assert plan["A"].status == "run"
        assert kinds(plan, "A") == ["input_changed"]
        assert plan["B"].status == plan["C"].status == plan["D"].status == "waiting"
        assert [r.subject for r in plan["B"].reasons] == ["A"]
        assert sorted(r.subject for r in plan["D"].reasons) == ["B", "C"]
        assert plan["Side"].status == "cached"
    assert ran == []
    assert diamond.record("A") == before
    # ... and the real run then does what was planned.
    assert diamond.execute().executed == ["A", "B", "C", "D"]


def test_a_task_with_reasons_of_its_own_is_planned_to_run(pipelines, ran) -> None:
    write("a.txt", "1")
    write("b.txt", "1")
    p = pipelines()
    p.add(task("A", ran=ran, reads="a.txt"), task("B", ["A"], ran, reads="b.txt"))
    p.execute()
    write("a.txt", "2")
    write("b.txt", "2")
    plan = p.plan()
    assert plan["A"].status == plan["B"].status == "run"
    assert [(r.kind, r.subject) for r in plan["B"].reasons] == [("input_changed", "b.txt")]


def test_plan_on_a_new_pipeline_stores_nothing(diamond, ran) -> None:
    plan = diamond.plan()
    assert [o.status for o in plan] == ["run"] * 5
    assert ran == []
    assert diamond.record("A") is None
    assert diamond.history() == []
    assert diamond.last_report is None


def test_plan_takes_the_execute_options(diamond, ran) -> None:
    diamond.execute()
    ran.clear()
    plan = diamond.plan(targets=["C"], force_tasks=["A"])
    assert list(plan.outcomes) == ["A", "C"]
    assert kinds(plan, "A") == ["forced"]
    assert plan["C"].status == "waiting"
    skip = diamond.plan(skip_tasks=["A"], force=False)
    assert skip["A"].status == "skipped"
    assert skip.cached == ["B", "C", "D", "Side"]
    assert ran == []
