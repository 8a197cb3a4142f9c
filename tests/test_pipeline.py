"""§2 The pipeline: registry, ordering, lookups, validation and where data lives."""

from __future__ import annotations

import graphlib
import os
from pathlib import Path

import pytest

import little_pipelines as lp
from little_pipelines.log import close_task_files


def task(name: str, deps=(), value=None, log: list[str] | None = None, **options) -> lp.Task:
    """A classic task returning `value` (default: its name) and noting that it ran."""
    t = lp.Task(name, dependencies=list(deps), **options)

    @t.process
    def run(this):
        if log is not None:
            log.append(this.name)
        return name if value is None else value

    return t


# -- add and ordering ------------------------------------------------------------------


def test_order_of_adding_does_not_matter(pipelines) -> None:
    ran_fwd: list[str] = []
    ran_rev: list[str] = []
    fwd = pipelines("Fwd")
    fwd.add(task("A", log=ran_fwd), task("B", ["A"], log=ran_fwd), task("C", ["B"], log=ran_fwd))
    rev = pipelines("Rev")
    rev.add(task("C", ["B"], log=ran_rev), task("B", ["A"], log=ran_rev), task("A", log=ran_rev))
    fwd.execute()
    rev.execute()
    assert ran_fwd == ran_rev == ["A", "B", "C"]


def test_tasks_are_topological_with_ties_in_order_added(pipelines) -> None:
    p = pipelines()
    p.add(task("D", ["B", "C"]), task("C"), task("B", ["A"]), task("A"))
    assert [t.name for t in p.tasks] == ["C", "A", "B", "D"]


def test_ties_follow_add_order_not_names(pipelines) -> None:
    p = pipelines()
    p.add(task("zeta"), task("alpha"), task("mid", ["zeta"]), task("beta"))
    assert [t.name for t in p.tasks] == ["zeta", "alpha", "mid", "beta"]


def test_execution_follows_tasks_order(pipelines) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(task("D", ["B", "C"], log=ran), task("C", log=ran), task("B", ["A"], log=ran),
          task("A", log=ran))
    p.execute()
    assert ran == [t.name for t in p.tasks]


def test_add_flattens_iterables_returns_the_pipeline_and_ignores_repeats(pipelines) -> None:
    a, b, c = task("A"), task("B"), task("C")
    p = pipelines()
    assert p.add([a, b], (c,)) is p
    p.add(a)  # the same object again is not a duplicate
    assert p.ntasks == 3
    p.validate()


def test_add_rejects_what_is_not_a_task(pipelines) -> None:
    p = pipelines()
    with pytest.raises(lp.TaskDefinitionError, match="takes Task objects"):
        p.add("A")


def test_ntasks_and_repr(pipelines) -> None:
    p = pipelines("Sales")
    assert repr(p) == "<Pipeline: Sales (0 tasks)>"
    p.add(task("A"), task("B"))
    assert p.ntasks == 2
    assert repr(p) == "<Pipeline: Sales (2 tasks)>"


# -- lookups ----------------------------------------------------------------------------


def test_get_task(pipelines) -> None:
    a = task("Extract")
    p = pipelines()
    p.add(a, task("Transform"))
    assert p.get_task("Extract") is a
    assert p.get_task(a) is a


def test_get_task_unknown_is_a_key_error_with_did_you_mean(pipelines) -> None:
    p = pipelines()
    p.add(task("Extract"), task("Transform"))
    with pytest.raises(lp.UnknownTaskError, match="'Extrat'.*Did you mean 'Extract'") as info:
        p.get_task("Extrat")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, lp.LittlePipelinesError)
    with pytest.raises(KeyError):
        p.get_task("Load")


def test_get_result_default_and_value(pipelines) -> None:
    p = pipelines()
    p.add(task("A", value=[1, 2]))
    assert p.get_result("A") is None
    assert p.get_result("A", default="nothing yet") == "nothing yet"
    p.execute()
    assert p.get_result("A", default="nothing yet") == [1, 2]
    with pytest.raises(lp.UnknownTaskError):
        p.get_result("B")


def test_get_result_reads_the_store_from_a_new_pipeline_object(pipelines) -> None:
    first = pipelines("Shared")
    first.add(task("A", value={"k": 1}))
    first.execute()
    first.close()
    second = pipelines("Shared")
    second.add(task("A", value={"k": 1}))
    assert second.get_result("A") == {"k": 1}


def test_is_complete_and_failures(pipelines) -> None:
    ok = task("Ok")
    bad = lp.Task("Bad")

    @bad.process
    def run(this):
        raise RuntimeError("boom")

    p = pipelines()
    p.add(ok, bad)
    assert p.is_complete is False
    p.execute()
    assert p.is_complete is False
    assert p.failures == ["Bad"]

    good = pipelines("Good")
    good.add(task("Ok"))
    good.execute()
    assert good.is_complete is True
    assert good.failures == []
    good.execute()  # reused results count as complete
    assert good.is_complete is True


def test_cache_clear_forgets_every_result(pipelines) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(task("A", log=ran), task("B", ["A"], log=ran))
    p.execute()
    p.execute()
    assert ran == ["A", "B"]
    p.cache.clear()
    assert p.get_result("A") is None
    p.execute()
    assert ran == ["A", "B", "A", "B"]


def test_clear_some_tasks(pipelines) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(task("A", log=ran), task("B", log=ran))
    p.execute()
    assert p.clear(["B"]) == ["B"]
    p.execute()
    assert ran == ["A", "B", "B"]


# -- validation -------------------------------------------------------------------------


def test_validate_passes_a_good_pipeline(pipelines) -> None:
    p = pipelines()
    p.add(task("A"), task("B", ["A"]))
    p.validate()
    p.validate_tasks()


def test_unknown_dependency_with_did_you_mean(pipelines) -> None:
    p = pipelines()
    p.add(task("Extract"), task("Load", ["Extrct"]))
    with pytest.raises(lp.PipelineValidationError, match="'Extrct'.*Did you mean 'Extract'"):
        p.validate()


def test_missing_run_is_also_an_attribute_error(pipelines) -> None:
    p = pipelines()
    p.add(lp.Task("NoRun"))
    with pytest.raises(AttributeError, match="missing 'run' method") as info:
        p.validate_tasks()
    assert isinstance(info.value, lp.PipelineValidationError)
    assert "'NoRun'" in str(info.value)


def test_cycle_is_a_cycle_error_printed_as_a_path(pipelines) -> None:
    p = pipelines()
    # Each arrow reads "depends on": A needs B, B needs C, C needs A.
    p.add(task("A", ["B"]), task("B", ["C"]), task("C", ["A"]))
    with pytest.raises(graphlib.CycleError) as info:
        p.validate()
    assert isinstance(info.value, lp.PipelineValidationError)
    message = str(info.value)
    paths = ["'A' -> 'B' -> 'C' -> 'A'", "'B' -> 'C' -> 'A' -> 'B'", "'C' -> 'A' -> 'B' -> 'C'"]
    assert any(path in message for path in paths), message


def test_two_task_cycle(pipelines) -> None:
    p = pipelines()
    p.add(task("A", ["B"]), task("B", ["A"]))
    with pytest.raises(graphlib.CycleError) as info:
        p.validate()
    message = str(info.value)
    assert "'A' -> 'B' -> 'A'" in message or "'B' -> 'A' -> 'B'" in message


def test_duplicate_task_names(pipelines) -> None:
    p = pipelines()
    p.add(task("A", value=1), task("A", value=2))
    with pytest.raises(lp.PipelineValidationError, match="named 'A'.*unique"):
        p.validate()


def test_duplicate_function_form_names(pipelines) -> None:
    p = pipelines()

    @p.task
    def load():
        return 1

    @p.task(name="load")
    def load_again():
        return 2

    with pytest.raises(lp.PipelineValidationError, match="named 'load'"):
        p.execute()


def test_every_problem_is_reported_at_once(pipelines) -> None:
    p = pipelines("Broken")
    p.add(
        task("Extract"),
        task("Extract"),  # duplicate
        task("Load", ["Extrct"]),  # unknown dependency
        task("A", ["B"]),
        task("B", ["A"]),  # cycle
        lp.Task("NoRun"),  # missing run
    )
    with pytest.raises(lp.PipelineValidationError) as info:
        p.validate()
    err = info.value
    assert isinstance(err, AttributeError)
    assert isinstance(err, graphlib.CycleError)
    assert isinstance(err, ValueError)
    message = str(err)
    assert "named 'Extract'" in message
    assert "'Extrct'" in message and "Did you mean 'Extract'" in message
    assert "'A' -> 'B' -> 'A'" in message or "'B' -> 'A' -> 'B'" in message
    assert "'NoRun' is missing 'run' method" in message
    assert len(err.problems) == 4
    assert "4 problems" in message


def test_nothing_runs_when_validation_fails(pipelines) -> None:
    ran: list[str] = []
    p = pipelines()
    p.add(task("Fine", log=ran), task("Load", ["Nope"], log=ran))
    with pytest.raises(lp.PipelineValidationError):
        p.execute()
    with pytest.raises(lp.PipelineValidationError):
        p.plan()
    assert ran == []
    assert p.get_result("Fine") is None


# -- where data and logs live -----------------------------------------------------------


def test_storage_defaults_to_home_dot_little_pipelines(pipelines, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LITTLE_PIPELINES_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    p = pipelines("Sales")
    p.add(task("A"))
    p.execute()
    folder = tmp_path / "me" / ".little_pipelines" / "Sales"
    assert folder.is_dir()
    assert Path(p.cache.directory).resolve().is_relative_to(folder.resolve())
    assert p.log_dir == folder / "logs"


def test_little_pipelines_home_is_the_parent_of_pipeline_folders(pipelines, isolated_home) -> None:
    p = pipelines("Sales")
    p.add(task("A"))
    p.execute()
    assert (isolated_home / "Sales").is_dir()
    assert Path(p.cache.directory).resolve().is_relative_to((isolated_home / "Sales").resolve())
    assert p.log_dir == isolated_home / "Sales" / "logs"


def test_cache_dir_overrides_the_home(pipelines, tmp_path, isolated_home) -> None:
    p = pipelines("Sales", cache_dir=tmp_path / "elsewhere" / "deep")
    p.add(task("A", value=7))
    p.execute()
    assert Path(p.cache.directory).resolve().is_relative_to((tmp_path / "elsewhere").resolve())
    assert not (isolated_home / "Sales").exists()
    p.close()
    again = pipelines("Sales", cache_dir=tmp_path / "elsewhere" / "deep")
    again.add(task("A", value=7))
    assert again.get_result("A") == 7


def test_logs_go_to_the_log_folder(pipelines, isolated_home) -> None:
    p = pipelines("Sales")
    p.add(task("A"))
    p.execute()
    close_task_files()
    assert "A | ✓ ran in" in (isolated_home / "Sales" / "logs" / "_pipeline.log").read_text()


def test_log_dir_argument_and_log_dir_environment(pipelines, tmp_path, monkeypatch) -> None:
    assert pipelines("X", log_dir=tmp_path / "mine").log_dir == tmp_path / "mine"
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "envlogs"))
    p = pipelines("X")
    assert Path(p.log_dir).resolve().is_relative_to((tmp_path / "envlogs").resolve())
    p.add(task("A"))
    p.execute()
    close_task_files()
    assert list(Path(p.log_dir).glob("_pipeline.log"))


@pytest.mark.parametrize("name", ["../x", "", "/", "a/b", "..", None])
def test_unsafe_pipeline_names_are_rejected(name, isolated_home) -> None:
    with pytest.raises(ValueError, match="not a safe folder name"):
        lp.Pipeline(name)
    assert not (isolated_home.parent / "x").exists()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_store_others_can_write_is_refused(pipelines, tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    p = pipelines("Shared", cache_dir=shared)
    p.add(task("A"))
    with pytest.raises(lp.UnsafeStoreError, match="chmod go-w"):
        p.execute()


def test_two_files_sharing_a_store_by_name_are_warned_once(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    for project in ("alpha", "beta"):
        folder = tmp_path / project
        folder.mkdir()
        (folder / "etl.py").write_text(textwrap.dedent(f"""
            import little_pipelines as lp
            p = lp.Pipeline("sales")

            @p.task
            def numbers():
                return "{project}"

            p.execute()
            p.execute()
            print(p.get_result("numbers"))
        """))
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}

    def run(project: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(tmp_path / project / "etl.py")],
                              capture_output=True, text=True, env=env, timeout=60)

    first = run("alpha")
    assert first.returncode == 0 and "belongs to" not in first.stderr, first.stderr
    assert "belongs to" not in run("alpha").stderr  # the same file again: no warning
    second = run("beta")
    assert second.returncode == 0, second.stderr
    warnings = [line for line in second.stderr.splitlines() if "belongs to" in line]
    assert len(warnings) == 1, second.stderr  # once, though it ran twice
    assert str(tmp_path / "alpha" / "etl.py") in warnings[0]
    assert str(tmp_path / "beta" / "etl.py") in warnings[0]
    assert "cache_dir=" in warnings[0] and "another name" in warnings[0]


# -- the public read API and the exception tree (issue 13) ------------------------------


def test_the_read_api_gives_names_and_dependencies_in_execution_order(pipelines) -> None:
    p = pipelines("Read")
    p.add(task("C", ["B"]), task("B", ["A"]), task("A"))
    assert p.task_names() == ["A", "B", "C"]
    assert p.dependency_map() == {"A": [], "B": ["A"], "C": ["B"]}
    assert list(p.tasks_by_name()) == ["C", "B", "A"]  # as added
    with pytest.raises(TypeError):
        p.tasks_by_name()["D"] = task("D")  # type: ignore[index]


def test_invoke_takes_the_params_the_run_fixed() -> None:
    def scaled(factor):
        return 2 * factor

    t = lp.Task.from_function(scaled, params={"factor": 1})
    assert t.invoke({}, {"factor": 5}) == 10
    assert t.invoke({}) == 2  # default: the task's own params


def test_a_missing_run_is_a_fact_on_the_error_not_only_words(pipelines) -> None:
    p = pipelines("NoRun")
    p.add(lp.Task("Empty"), task("Fine"))
    with pytest.raises(lp.PipelineValidationError) as caught:
        p.validate()
    assert caught.value.missing_run == ["Empty"]
    assert isinstance(caught.value, AttributeError)


def test_errors_callers_catch_are_tree_members_keeping_their_builtin_base(pipelines) -> None:
    with pytest.raises(lp.InvalidOptionError) as bad_name:
        lp.Pipeline("../escape")
    assert isinstance(bad_name.value, ValueError)
    with pytest.raises(lp.InvalidOptionError):
        lp.Pipeline("ok", code="everything")
    p = pipelines("Accept")
    p.add(task("Never"))
    with pytest.raises(lp.NoResultError, match="has no stored result to accept") as none:
        p.accept(["Never"])
    assert none.value.task == "Never" and isinstance(none.value, lp.LittlePipelinesError)
    assert issubclass(lp.ExecutorError, ValueError) and issubclass(lp.TaskNotSendable, TypeError)
    assert issubclass(lp.LoadError, ImportError) and issubclass(lp.StoreError, OSError)
    with pytest.raises(lp.InvalidOptionError, match="at least one weekday"):
        lp.expire.weekly(days=())
    with pytest.raises(lp.OptionTypeError, match="expected days to be"):
        lp.expire.from_now(days="1")
    with pytest.raises(lp.OptionTypeError, match="Log format must be"):
        lp.set_log_format(3)  # type: ignore[arg-type]
