"""Scripts and tests written for the original little_pipelines run unchanged.

The original's README scenarios and the tests of its public test suite that exercise
observable behaviour (github.com/WindfallLabs/little_pipelines: tests/test_expire.py,
test_pipeline.py, test_tasks.py, test_shell.py), rewritten in our style, plus the
behaviours of issue 12. Tests of the original's private helpers (`_to_datetime`,
`_parse_weekday`, `_process_times`, `_inputs_hash`, ...) are not ported; its
`_add_months` and `_get_now` are, because users' own expiry functions call them.
"""

from __future__ import annotations

import io
import os
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

import little_pipelines as lp
from little_pipelines import expire
from little_pipelines.cli import main
from little_pipelines.render import make_console

# The original's fixtures name their pipeline after a hidden folder.
PIPELINE_NAME = ".little-pipelines-tests"


@pytest.fixture(autouse=True, scope="module")
def utc() -> Iterator[None]:
    """The original's expected seconds are naive wall-clock differences: a zone
    without DST makes them the elapsed seconds too."""
    original = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if original is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = original
    time.tzset()


@pytest.fixture
def pipeline() -> Iterator[lp.Pipeline]:
    p = lp.Pipeline(PIPELINE_NAME)
    yield p
    p.close()


def zero_and_one() -> tuple[lp.Task, lp.Task]:
    """The original's README example 2 (and its test fixture)."""
    zero = lp.Task("Zero", expire_results=lp.expire.never())

    @zero.process
    def run(this):  # type: ignore[no-untyped-def]
        return ["Some", "values"]

    one = lp.Task("One", dependencies=["Zero"], expire_results=lp.expire.never())

    @one.process
    def preflight(this):  # type: ignore[no-untyped-def]
        return "OK"

    @one.process
    def run(this):  # type: ignore[no-untyped-def]  # noqa: F811 - the classic form
        data = this.pipeline.get_result("Zero")
        data.extend(["more", "values", this.preflight()])
        return data

    return zero, one


@pytest.fixture
def loaded(pipeline: lp.Pipeline) -> tuple[lp.Pipeline, lp.Task, lp.Task]:
    zero, one = zero_and_one()
    pipeline.add(zero, one)
    return pipeline, zero, one


# -- the README's examples ---------------------------------------------------------------


def test_readme_example_1_sums_and_reruns_the_on_complete_task() -> None:
    calls: list[str] = []
    task1, task2 = lp.Task("TaskOne"), lp.Task("TaskTwo")

    @task1.process
    def run(this):  # type: ignore[no-untyped-def]
        calls.append(this.name)
        return 1

    @task2.process
    def extract(this):  # type: ignore[no-untyped-def]
        return 1

    @task2.process
    def transform(this, ext):  # type: ignore[no-untyped-def]
        return ext + 1

    @task2.process
    def run(this):  # type: ignore[no-untyped-def]  # noqa: F811
        calls.append(this.name)
        return this.transform(this.extract())

    task3 = lp.Task("TaskThree", expire_results=lp.expire.on_complete("TaskThree"))

    @task3.process
    def run(this):  # type: ignore[no-untyped-def]  # noqa: F811
        calls.append(this.name)
        return 3

    total = lp.Task("Sum", dependencies=["TaskOne", "TaskTwo", "TaskThree"])

    @total.process
    def run(this):  # type: ignore[no-untyped-def]  # noqa: F811
        get = this.pipeline.get_result
        return get("TaskOne") + get("TaskTwo") + get("TaskThree")

    for _ in range(2):
        p = lp.Pipeline("Example1")
        p.add(task1, task2, task3, total)
        p.execute()
        assert p.get_result("Sum") == 6
        assert p.get_result("TaskThree") is None  # expired when the run completed
        p.close()
    # "Notice how TaskThree was executed on the second run": and only it.
    assert calls == ["TaskOne", "TaskTwo", "TaskThree", "TaskThree"]


def test_readme_example_2(pipeline: lp.Pipeline) -> None:
    zero, one = zero_and_one()
    pipeline.add(one, zero)  # order does not matter
    pipeline.execute()
    assert pipeline.get_result("One") == ["Some", "values", "more", "values", "OK"]
    for task in pipeline.tasks:  # "as dead-simple as": run them in order by hand
        task.run()


# -- the original's test_pipeline.py -------------------------------------------------------


def test_a_new_pipeline_is_empty_complete_and_has_a_cache(pipeline: lp.Pipeline) -> None:
    assert pipeline.name == PIPELINE_NAME
    assert pipeline.ntasks == 0
    assert pipeline.is_complete is True
    assert pipeline.cache is not None
    assert isinstance(pipeline.log_dir, (str, Path))


def test_add_tasks_one_or_several_or_found(pipeline: lp.Pipeline) -> None:
    zero, one = zero_and_one()
    pipeline.add(zero)
    assert pipeline.ntasks == 1 and zero.pipeline is pipeline
    pipeline.add(*lp.find_tasks(locals()))
    assert pipeline.ntasks == 2 and set(pipeline.tasks) == {zero, one}


def test_get_task_by_name_and_unknown_name(loaded: tuple[lp.Pipeline, lp.Task, lp.Task]) -> None:
    pipeline, zero, one = loaded
    assert pipeline.get_task("Zero") is zero and pipeline.get_task("One") is one
    with pytest.raises(KeyError):
        pipeline.get_task("NonexistentTask")


def test_execution_order(loaded: tuple[lp.Pipeline, lp.Task, lp.Task]) -> None:
    pipeline, zero, one = loaded
    assert list(pipeline.tasks) == [zero, one]
    diamond = lp.Pipeline("diamond")
    tasks = [lp.Task("D", dependencies=["B", "C"]), lp.Task("C", dependencies=["A"]),
             lp.Task("B", dependencies=["A"]), lp.Task("A")]  # fmt: skip
    for task in tasks:

        @task.process
        def run(this):  # type: ignore[no-untyped-def]
            return f"{this.name}_result"

    diamond.add(*tasks)
    names = [t.name for t in diamond.tasks]
    assert names.index("A") < names.index("B") < names.index("D")
    assert names.index("A") < names.index("C") < names.index("D")


def test_execute_sets_flags_results_and_completes(
    loaded: tuple[lp.Pipeline, lp.Task, lp.Task],
) -> None:
    pipeline, zero, one = loaded
    assert (zero.is_executed, one.is_executed, pipeline.is_complete) == (False, False, False)
    assert zero.result is None  # nothing stored yet
    pipeline.execute()
    assert zero.is_executed and one.is_executed and pipeline.is_complete
    assert zero.result == ["Some", "values"]
    assert pipeline.get_result("One") == ["Some", "values", "more", "values", "OK"]


def test_cached_results_are_used_and_force_reruns(
    loaded: tuple[lp.Pipeline, lp.Task, lp.Task],
) -> None:
    pipeline, zero, one = loaded
    pipeline.execute()
    pipeline.execute()
    assert zero.is_skipped and not zero.is_executed  # reused: the original's "skipped"
    assert zero.result == ["Some", "values"]
    pipeline.execute(force=True)
    assert zero.is_executed and one.is_executed
    pipeline.execute(force_tasks=["One"])
    assert one.is_executed and zero.is_skipped
    pipeline.cache.clear()  # how the original's fixtures start afresh
    assert pipeline.execute().executed == ["Zero", "One"]


def test_skipped_task_is_skipped_and_the_run_complete(
    loaded: tuple[lp.Pipeline, lp.Task, lp.Task],
) -> None:
    pipeline, zero, one = loaded
    pipeline.execute(skip_tasks=["One"])
    assert zero.is_executed
    assert one.is_skipped and not one.is_executed
    assert pipeline.is_complete is True  # issue 12, item 2


def test_forced_overrides_skipped(loaded: tuple[lp.Pipeline, lp.Task, lp.Task]) -> None:
    pipeline, _, one = loaded
    pipeline.execute()
    pipeline.execute(force_tasks=["One"], skip_tasks=["One"])  # issue 12, item 3
    assert one.is_executed and not one.is_skipped
    assert pipeline.last_report is not None and pipeline.last_report["One"].status == "executed"


def test_set_and_clear_forced_and_ignored_names(pipeline: lp.Pipeline) -> None:
    """The original's standing lists: names are kept (checked when a run uses them)."""
    pipeline.set_forced("TaskA", "TaskB")
    pipeline.set_ignored("TaskA")
    assert {"TaskA", "TaskB"} <= set(pipeline.forced_tasks)
    assert "TaskA" in pipeline.ignored_tasks
    pipeline.clear_forced()
    pipeline.clear_ignored()
    assert len(pipeline.forced_tasks) == 0 and len(pipeline.ignored_tasks) == 0


def test_set_ignored_skips_and_set_forced_reruns_in_later_runs(
    loaded: tuple[lp.Pipeline, lp.Task, lp.Task],
) -> None:
    pipeline, zero, one = loaded
    pipeline.set_ignored("One")
    pipeline.execute()
    assert zero.is_executed and one.is_skipped and not one.is_executed
    assert pipeline.is_complete is True
    pipeline.clear_ignored()
    pipeline.execute()  # One runs now; Zero is cached
    pipeline.set_forced("One")
    pipeline.execute()
    assert one.is_executed and zero.is_skipped
    pipeline.set_ignored("One")  # forced wins over ignored
    pipeline.execute()
    assert one.is_executed and not one.is_skipped


def test_a_standing_name_that_is_no_task_is_refused_when_a_run_uses_it(
    loaded: tuple[lp.Pipeline, lp.Task, lp.Task],
) -> None:
    pipeline, _, _ = loaded
    pipeline.set_forced("Onee")
    with pytest.raises(lp.UnknownTaskError, match="One"):
        pipeline.execute()


def test_a_failure_leaves_the_pipeline_incomplete(pipeline: lp.Pipeline) -> None:
    bad = lp.Task("Bad")

    @bad.process
    def run(this):  # type: ignore[no-untyped-def]
        raise ValueError("no")

    pipeline.add(bad)
    pipeline.execute()
    assert "Bad" in pipeline.failures
    assert pipeline.is_complete is False


def test_validate_tasks_reports_a_missing_run(pipeline: lp.Pipeline) -> None:
    zero, one = zero_and_one()
    pipeline.add(zero, one)
    pipeline.validate_tasks()  # valid: does not raise
    pipeline.add(lp.Task("NoRunTask"))
    with pytest.raises(AttributeError, match="missing 'run' method"):
        pipeline.validate_tasks()
    with pytest.raises(AttributeError, match="missing 'run' method"):
        pipeline.execute()


def test_reprs(loaded: tuple[lp.Pipeline, lp.Task, lp.Task]) -> None:
    pipeline, zero, _ = loaded
    assert repr(pipeline) == f"<Pipeline: {PIPELINE_NAME} (2 tasks)>"
    assert repr(zero) == "<Task ('Zero')>"


# -- the original's test_tasks.py -------------------------------------------------------------


def test_a_new_task(pipeline: lp.Pipeline) -> None:
    task = lp.Task(name="TestTask", dependencies=["TaskA", "TaskB"])
    assert task.name == "TestTask"
    assert task.is_executed is False and task.is_skipped is False
    assert task.pipeline is None and task.dependencies is None  # no pipeline yet
    assert task.hash_inputs is True and lp.Task("API", hash_inputs=False).hash_inputs is False
    task.is_skipped = True
    assert task.is_skipped is True


def test_input_files_are_what_the_user_gave(tmp_path: Path) -> None:
    given = [Path("file1.txt"), "file2.csv"]
    task = lp.Task(name="FileTask", input_files=given)
    assert task.input_files == given  # a Path stays a Path, order kept (item 4)
    assert [type(f) for f in task.input_files] == [type(Path()), str]
    assert lp.Task("Solo", input_files="data.csv").input_files == "data.csv"


def test_input_files_given_as_paths_still_fingerprint(pipeline: lp.Pipeline) -> None:
    data = Path("data.csv")
    data.write_text("a\n")
    reader = lp.Task("Reader", input_files=[data])

    @reader.process
    def run(this):  # type: ignore[no-untyped-def]
        return data.read_text()

    pipeline.add(reader)
    assert pipeline.execute().executed == ["Reader"]
    assert pipeline.execute().cached == ["Reader"]
    data.write_text("b\n")
    assert pipeline.execute().executed == ["Reader"]
    assert reader.input_files == [data]


def test_adding_a_task_gives_it_a_pipeline_logger_and_dependencies(pipeline: lp.Pipeline) -> None:
    a, b = lp.Task("TaskA"), lp.Task("TaskB", dependencies=["TaskA"])
    pipeline.add(a, b)
    assert a.pipeline is pipeline and a.logger is not None
    assert a.log_dir == Path(pipeline.log_dir) and lp.Task("Alone").log_dir is None
    assert b.dependencies == {"TaskA": a}


def test_processes_run_in_order_with_this(pipeline: lp.Pipeline) -> None:
    task = lp.Task("MultiMethodTask")

    @task.process
    def setup(this):  # type: ignore[no-untyped-def]
        return "setup_complete"

    @task.process
    def run(this):  # type: ignore[no-untyped-def]
        return f"ran_after_{this.setup()}"

    pipeline.add(task)
    pipeline.execute()
    assert task.is_executed and task.result == "ran_after_setup_complete"


# -- the original's test_shell.py ------------------------------------------------------------


class CompatShell(lp.Shell):
    title = "Test Shell"
    header = "Header"


def run_shell(shell: lp.Shell, commands: str) -> str:
    out = io.StringIO()
    shell.console = make_console(out, width=120, color_system=None, force_terminal=False)
    shell.stdin, shell.stdout, shell.use_rawinput = io.StringIO(commands), out, False
    shell.cmdloop()
    return out.getvalue()


def test_a_shell_subclass_keeps_its_title_header_and_exits(
    loaded: tuple[lp.Pipeline, lp.Task, lp.Task],
) -> None:
    pipeline = loaded[0]
    shell = CompatShell()
    assert (shell.title, shell.header) == ("Test Shell", "Header")
    assert all([shell.do_exit(""), shell.do_quit(""), shell.do_q("")])
    shell.set_pipeline(pipeline)
    assert shell.preloop() is None and shell.postloop() is None


def test_the_shell_lists_then_executes(loaded: tuple[lp.Pipeline, lp.Task, lp.Task]) -> None:
    pipeline, zero, one = loaded
    before = run_shell(CompatShell(pipeline), "tasks\nexit\n")
    assert "- Zero (not cached)" in before and "- One (not cached)" in before
    assert "Total: 2" in before
    after = run_shell(CompatShell(pipeline), "execute\nlist_tasks\nlist_cache\nexit\n")
    assert zero.is_executed and one.is_executed
    assert "- Zero (cached)" in after and "- One (cached)" in after


def test_the_shell_keeps_the_originals_command_names(
    loaded: tuple[lp.Pipeline, lp.Task, lp.Task],
) -> None:
    pipeline, _, one = loaded
    text = run_shell(CompatShell(pipeline), "execute --skip=One\nexecuteone One\ncachelist\n"
                     "peek Zero\ninfo Zero\nvalidate\ncacheclear Zero\nlog INFO\nquiet\nq\n")
    assert one.is_executed and "'Some', 'values'" in text
    assert "Cleared 1 stored result: Zero." in text and "error:" not in text
    assert pipeline.stored_names() == ["One"]


# -- the original's test_expire.py ----------------------------------------------------------

FRIDAY = datetime(2025, 10, 31, 10, 0)  # the original's frozen "now"


@pytest.mark.parametrize(
    ("now", "policy", "target"),
    [
        (datetime(2025, 10, 31, 14, 30, 45), lambda: expire.at_midnight(), datetime(2025, 11, 1)),
        (datetime(2025, 10, 31, 8, 15, 30), lambda: expire.at_midnight(), datetime(2025, 11, 1)),
        (datetime(2025, 10, 31, 14, 30), lambda: expire.at_datetime(datetime(2025, 11, 1)),
         datetime(2025, 11, 1)),
        (datetime(2025, 10, 31, 14, 30), lambda: expire.at_datetime(date(2025, 11, 1)),
         datetime(2025, 11, 1)),
        (FRIDAY, lambda: expire.at_datetime(datetime(2025, 10, 30, 10)),
         datetime(2025, 10, 30, 10)),
        (datetime(2025, 10, 15, 10), lambda: expire.monthly(), datetime(2025, 11, 1)),
        (datetime(2025, 10, 15, 10), lambda: expire.monthly(days=(1,)), datetime(2025, 11, 1)),
        (FRIDAY, lambda: expire.monthly(days=(15, 25)), datetime(2025, 11, 15)),
        (datetime(2025, 11, 1), lambda: expire.monthly(days=(1,)), datetime(2025, 12, 1)),
        (datetime(2025, 11, 1, 23), lambda: expire.monthly(days=(1,)), datetime(2025, 12, 1)),
        (datetime(2025, 12, 15), lambda: expire.monthly(days=(1,)), datetime(2026, 1, 1)),
        (FRIDAY, lambda: expire.weekly(), datetime(2025, 11, 3)),
        (FRIDAY, lambda: expire.weekly(days=("Wednesday",)), datetime(2025, 11, 5)),
        (FRIDAY, lambda: expire.weekly(days=("Monday", "Wednesday", "Friday")),
         datetime(2025, 11, 3)),
        (datetime(2025, 11, 3), lambda: expire.weekly(days=("Monday",)), datetime(2025, 11, 10)),
        (datetime(2025, 11, 3, 23), lambda: expire.weekly(days=("Monday",)),
         datetime(2025, 11, 10)),
        (FRIDAY, lambda: expire.weekly(days=("Mon",)), datetime(2025, 11, 3)),
        (FRIDAY, lambda: expire.weekly(days=("Tu",)), datetime(2025, 11, 4)),
        (FRIDAY, lambda: expire.weekly(days=("THURSDAY",)), datetime(2025, 11, 6)),
        (FRIDAY, lambda: expire.weekly(days=("thursday",)), datetime(2025, 11, 6)),
        (FRIDAY, lambda: expire.weekly(days=("  Monday  ",)), datetime(2025, 11, 3)),  # item 8
        (FRIDAY, lambda: expire.weekly(days=("Saturday",)), datetime(2025, 11, 1)),
        (FRIDAY, lambda: expire.weekly(days=("Sunday",)), datetime(2025, 11, 2)),
        (FRIDAY, lambda: expire.weekly(days=("Friday",)), datetime(2025, 11, 7)),
        (FRIDAY, lambda: expire.weekly(days=("Monday", "Sat", "We")), datetime(2025, 11, 1)),
        (FRIDAY, lambda: expire.from_now(seconds=1), FRIDAY + timedelta(seconds=1)),
        (FRIDAY, lambda: expire.from_now(minutes=1), FRIDAY + timedelta(minutes=1)),
        (FRIDAY, lambda: expire.from_now(hours=1), FRIDAY + timedelta(hours=1)),
        (FRIDAY, lambda: expire.from_now(days=1), FRIDAY + timedelta(days=1)),
        (FRIDAY, lambda: expire.from_now(weeks=1), FRIDAY + timedelta(weeks=1)),
        (FRIDAY, lambda: expire.from_now(months=1), datetime(2025, 11, 30, 10)),
        (FRIDAY, lambda: expire.from_now(years=1), datetime(2026, 10, 31, 10)),
        (FRIDAY, lambda: expire.from_now(years=100), datetime(2125, 10, 31, 10)),
        (FRIDAY, lambda: expire.from_now(years=1, months=2, days=3, hours=4),
         datetime(2026, 12, 31, 10) + timedelta(days=3, hours=4)),
        (FRIDAY, lambda: expire.from_now(years=1, months=3), datetime(2027, 1, 31, 10)),
        (FRIDAY, lambda: expire.from_now(), FRIDAY),
        (datetime(2025, 10, 31, 10, 30, 45), lambda: expire.from_today(seconds=1),
         datetime(2025, 10, 31, 0, 0, 1)),
        (datetime(2025, 10, 31, 10, 30, 45), lambda: expire.from_today(hours=1),
         datetime(2025, 10, 31, 1)),
        (datetime(2025, 10, 31, 10, 30, 45), lambda: expire.from_today(weeks=1),
         datetime(2025, 11, 7)),
        (datetime(2025, 10, 31, 10, 30, 45), lambda: expire.from_today(months=1),
         datetime(2025, 11, 30)),
        (datetime(2025, 10, 31, 10, 30, 45), lambda: expire.from_today(years=1),
         datetime(2026, 10, 31)),
        (datetime(2025, 10, 31, 10, 30), lambda: expire.from_today(), datetime(2025, 10, 31)),
    ],
)  # fmt: skip
def test_policies_give_whole_seconds_until_their_moment(
    freeze: Callable[[datetime], None],
    now: datetime,
    policy: Callable[[], expire.Expiry],
    target: datetime,
) -> None:
    freeze(now)
    assert policy()() == int((target - now).total_seconds())


def test_policies_return_int_seconds(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2025, 10, 31, 10, 0, 0, 250000))
    policies = [expire.at_midnight(), expire.from_now(seconds=1.5), expire.weekly(),
                expire.monthly(), expire.at_datetime(date(2025, 10, 1)), expire.from_today()]
    seconds = [policy() for policy in policies]
    assert all(type(s) is int for s in seconds), seconds  # item 7: truncated, as the original
    assert seconds[1] == 1 and seconds[4] == -(30 * 86400 + 36000)


def test_seconds_are_truncated_and_read_at_each_call(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2025, 10, 31, 10, 0, 0, 500000))
    assert expire.at_datetime(datetime(2025, 10, 31, 10, 0, 1))() == 0  # 0.5 s ahead
    in_an_hour = expire.from_now(hours=1)
    assert in_an_hour() == 3600
    freeze(datetime(2025, 10, 31, 11))
    assert in_an_hour() == 3600


def test_policies_without_a_moment_return_none() -> None:
    for policy in (expire.never(), expire.after_session("S"), expire.session(),
                   expire.on_complete("TEST_TASK")):  # fmt: skip
        assert policy() is None


def test_add_months_keeps_the_originals_signature_and_meaning() -> None:
    assert expire._add_months(datetime(2025, 10, 1), 2) == datetime(2025, 12, 1)
    assert expire._add_months(datetime(2025, 10, 1), 13) == datetime(2026, 11, 1)
    assert expire._add_months(datetime(2025, 10, 31), 4) == datetime(2026, 2, 28)
    assert expire._add_months(datetime(2025, 10, 1), 0) == datetime(2025, 10, 1)
    assert expire._add_months(datetime(2024, 1, 31), 1) == datetime(2024, 2, 29)
    assert expire._add_months(datetime(2025, 1, 31), 1) == datetime(2025, 2, 28)
    assert expire._add_months(datetime(2025, 3, 31), -2) == datetime(2025, 1, 31)
    assert expire._add_months(datetime(2025, 2, 15), -3) == datetime(2024, 11, 15)
    assert expire._add_months(datetime(2025, 1, 31, 9, 30), 1) == datetime(2025, 2, 28, 9, 30)
    assert expire._add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)


def test_weekday_and_month_day_errors() -> None:
    with pytest.raises(ValueError, match="Invalid weekday"):
        expire.weekly(days=("Mon", "NotADay"))
    with pytest.raises(ValueError, match="Must specify at least one weekday"):
        expire.weekly(days=())
    with pytest.raises(ValueError, match=r"^No valid dates found for days \(32,\)"):
        expire.monthly(days=(32,))  # item 9
    with pytest.raises(ValueError, match=r"^No valid dates found for days \(32, 33\)"):
        expire.monthly(days=(32, 33))
    with pytest.raises(ValueError, match=r"^No valid dates found for days \(0,\).*1\.\.31"):
        expire.monthly(days=(0,))
    with pytest.raises(ValueError, match="No valid dates found"):
        expire.monthly(days=())


def test_get_now_is_the_one_clock(freeze: Callable[[datetime], None]) -> None:
    freeze(datetime(2025, 10, 31, 10))
    assert expire.now() == datetime(2025, 10, 31, 10).astimezone()
    assert expire.from_now(hours=2).expires_at() == datetime(2025, 10, 31, 12).astimezone()


# -- issue 12: names, expiry of stored results, LOG_DIR --------------------------------------


@pytest.mark.parametrize(
    "name", [".little-pipelines-tests", ".hidden", "a.b", "v1..2", "My ETL (v2)", "données"]
)
def test_dotted_pipeline_names_are_valid(name: str, tmp_path: Path) -> None:
    p = lp.Pipeline(name)
    assert p.name == name and p.folder.name == name
    p.close()


@pytest.mark.parametrize("name", [".", "..", "../up", "a/b", "a\\b", "a/../b", "C:x", "nul\x00",
                                  "line\nbreak", "tab\tname", "", None])  # fmt: skip
def test_unsafe_pipeline_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"is not a safe folder name.*e\.g\. 'sales_etl'"):
        lp.Pipeline(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing made anywhere


def stored(pipeline: lp.Pipeline, name: str, policy: expire.Expiry, value: object) -> lp.Task:
    task = lp.Task(name, expire_results=policy)

    @task.process
    def run(this):  # type: ignore[no-untyped-def]
        return value

    pipeline.add(task)
    return task


def test_get_result_honours_a_time_expiry(
    pipeline: lp.Pipeline, freeze: Callable[[datetime], None]
) -> None:
    freeze(FRIDAY)
    task = stored(pipeline, "Soon", expire.from_now(seconds=1), "fresh")
    pipeline.execute()
    assert pipeline.get_result("Soon") == "fresh"
    freeze(FRIDAY + timedelta(seconds=1))
    assert pipeline.get_result("Soon") is None  # item 5
    assert pipeline.get_result("Soon", default="gone") == "gone"
    assert task.result is None
    assert pipeline.record("Soon") is not None  # the record stays, to say why it reruns


def test_a_past_at_datetime_serves_its_run_then_is_none(pipeline: lp.Pipeline) -> None:
    stored(pipeline, "Old", expire.at_datetime(datetime(2000, 1, 1)), [1, 2])
    seen = lp.Task("Reader", dependencies=["Old"])

    @seen.process
    def run(this):  # type: ignore[no-untyped-def]
        return this.pipeline.get_result("Old")  # in flight: current during the run

    pipeline.add(seen)
    pipeline.execute()
    assert pipeline.get_result("Reader") == [1, 2]
    assert pipeline.get_result("Old") is None
    assert pipeline.get_result("Old", default=0) == 0


EXPIRED = '''
import datetime
import little_pipelines as lp

pipeline = lp.Pipeline("expiring")
old = lp.Task("Old", expire_results=lp.expire.at_datetime(datetime.datetime(2000, 1, 1)))


@old.process
def run(this):
    return "stale value"


pipeline.add(old)
'''


def test_lpipe_show_and_peek_say_the_result_has_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "expiring.py"
    script.write_text(textwrap.dedent(EXPIRED))
    out = io.StringIO()
    console = make_console(out, width=100, color_system=None, force_terminal=False)
    assert main(["run", str(script)], console=console, err_console=console) == 0
    out.truncate(0)
    main(["show", str(script), "Old"], console=console, err_console=console)
    assert "has expired" in out.getvalue() and "stale value" not in out.getvalue()
    from little_pipelines.loading import load_pipeline

    text = run_shell(lp.Shell(load_pipeline(str(script))), "peek Old\nexit\n")
    assert "The stored result of 'Old' has expired" in text
    assert "stale value" not in text


def test_log_dir_is_the_folder_of_the_task_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "logs"
    monkeypatch.setenv("LOG_DIR", str(folder))
    p = lp.Pipeline("Logged")
    assert Path(p.log_dir) == folder  # item 6: not $LOG_DIR/<pipeline>
    task = lp.Task("Chatty")

    @task.process
    def run(this):  # type: ignore[no-untyped-def]
        this.logger.info("hello from Chatty")
        return 1

    p.add(task)
    p.execute()
    assert "hello from Chatty" in (folder / "Chatty.log").read_text()
    assert (folder / "_pipeline.log").exists()
    p.close()
