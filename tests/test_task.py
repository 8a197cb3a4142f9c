"""§1 Declaring tasks: the classic `Task` + `@task.process` form and the function form."""

from __future__ import annotations

import functools
import inspect
import types

import pytest

import little_pipelines as lp
from little_pipelines.log import close_task_files

# -- the classic form ------------------------------------------------------------------


def make_classic() -> tuple[lp.Task, lp.Task]:
    """The ARCHITECTURE.md example, verbatim in spirit."""
    zero = lp.Task("Zero")

    @zero.process
    def run(this):
        return ["Some", "values"]

    one = lp.Task("One", dependencies=["Zero"])

    @one.process
    def preflight(this):
        return "OK"

    @one.process
    def run(this):  # noqa: F811 - each task has its own `run`
        data = this.pipeline.get_result("Zero")
        return data + [this.preflight()]

    return zero, one


def test_classic_script_runs_unchanged(pipelines) -> None:
    zero, one = make_classic()
    p = pipelines("Example")
    p.add(one, zero)  # order of adding does not matter
    report = p.execute()
    assert report.executed == ["Zero", "One"]
    assert p.get_result("One") == ["Some", "values", "OK"]
    assert one.result == ["Some", "values", "OK"]


def test_process_is_callable_as_attribute_with_task_as_this() -> None:
    t = lp.Task("T")
    seen = []

    @t.process
    def helper(this, x, *, y=1):
        seen.append(this)
        return x + y

    assert t.helper(2, y=3) == 5
    assert seen == [t]


def test_process_decorator_returns_the_function() -> None:
    t = lp.Task("T")

    def run(this):
        return 1

    assert t.process(run) is run


def test_extra_processes_are_timed_in_the_run_log(pipelines, tmp_path) -> None:
    _, one = make_classic()
    zero, _ = make_classic()
    p = pipelines("Timed", log_dir=tmp_path / "logs")
    p.add(zero, one)
    p.execute()
    close_task_files()
    log = (tmp_path / "logs" / "_pipeline.log").read_text()
    assert "| One | process 'preflight' took" in log
    assert "| One | process 'run' took" in log


def test_dependencies_accept_task_objects(pipelines) -> None:
    zero, _ = make_classic()
    two = lp.Task("Two", dependencies=zero)

    @two.process
    def run(this):
        return len(this.pipeline.get_result("Zero"))

    p = pipelines()
    p.add(two, zero)
    p.execute()
    assert p.get_result("Two") == 2
    assert two.dependencies == {"Zero": zero}


def test_attributes_before_and_after_adding(pipelines, tmp_path) -> None:
    (tmp_path / "a.csv").write_text("x\n")
    t = lp.Task("A", input_files=["a.csv"], hash_inputs=False)

    @t.process
    def run(this):
        return 42

    assert t.name == "A"
    assert t.pipeline is None
    assert t.dependencies is None
    assert t.result is None
    assert t.is_executed is False and t.is_skipped is False
    assert t.input_files == ["a.csv"]
    assert t.hash_inputs is False
    assert repr(t.expire_results) == "never()"  # the default policy

    p = pipelines()
    p.add(t)
    assert t.pipeline is p
    assert t.dependencies == {}
    p.execute()
    assert t.result == 42
    assert t.is_executed is True and t.is_skipped is False

    p.execute()  # reused from the cache, as the original reported it
    assert t.is_executed is False and t.is_skipped is True


def test_expire_results_is_kept_as_given() -> None:
    policy = lp.expire.at_midnight()
    t = lp.Task("A", expire_results=policy)
    assert t.expire_results is policy


def test_tasks_take_arbitrary_attributes_and_is_skipped_is_settable() -> None:
    t = lp.Task("A")
    t.owner = "analytics"
    t.is_skipped = True
    assert t.owner == "analytics"
    assert t.is_skipped is True


def test_tasks_are_identity_hashable() -> None:
    a, b = lp.Task("Same"), lp.Task("Same")
    assert a != b
    assert len({a, b, a}) == 2
    assert {a: 1}[a] == 1


def test_repr() -> None:
    assert repr(lp.Task("Name")) == "<Task ('Name')>"


def test_logger_writes_to_the_task_log_file(pipelines, tmp_path) -> None:
    t = lp.Task("Talker")

    @t.process
    def run(this):
        this.logger.info("hello from the task")
        return None

    p = pipelines("Logs")
    p.add(t)
    p.execute()
    close_task_files()
    assert "hello from the task" in (p.log_dir / "Talker.log").read_text()


def test_info_is_the_docstring_of_the_defining_module(module_file) -> None:
    mod = module_file("documented.py").write(
        '''
        """Sales figures, cleaned."""
        import little_pipelines as lp

        clean = lp.Task("Clean")

        @clean.process
        def run(this):
            return 1
        '''
    )
    assert mod.clean.info == "Sales figures, cleaned."


def test_missing_process_name_is_an_attribute_error() -> None:
    t = lp.Task("A")
    with pytest.raises(AttributeError, match="missing 'run' method"):
        t.run()
    with pytest.raises(AttributeError, match="nope"):
        t.nope()


def test_a_process_cannot_shadow_a_task_attribute() -> None:
    t = lp.Task("A")
    with pytest.raises(lp.TaskDefinitionError, match="'info'.*rename"):

        @t.process
        def info(this):
            return "shadowed"


def test_a_run_process_must_take_the_task(pipelines) -> None:
    t = lp.Task("Wrong")

    @t.process
    def run():
        return 1

    p = pipelines()
    p.add(t)
    with pytest.raises(lp.PipelineValidationError, match=r"def run\(this\)"):
        p.execute()


def test_bad_if_upstream_errors_is_rejected() -> None:
    with pytest.raises(lp.TaskDefinitionError, match="if_upstream_errors"):
        lp.Task("A", if_upstream_errors="IGNORE")


def test_unknown_task_option_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(lp.TaskDefinitionError, match="'input_file'.*'input_files'") as info:
        lp.Task("A", input_file=["data.csv"])
    assert isinstance(info.value, TypeError)


def test_bad_task_name_is_rejected() -> None:
    with pytest.raises(lp.TaskDefinitionError):
        lp.Task("")
    with pytest.raises(lp.TaskDefinitionError):
        lp.Task(None)  # type: ignore[arg-type]


# -- find_tasks ------------------------------------------------------------------------


def test_find_tasks_in_a_namespace_and_one_level_into_modules(module_file) -> None:
    mod = module_file("more_tasks.py").write(
        """
        import little_pipelines as lp

        inner = lp.Task("Inner")
        """
    )
    outer = lp.Task("Outer")
    namespace = {"outer": outer, "alias": outer, "mod": mod, "x": 1, "lp": lp}
    assert lp.find_tasks(namespace) == {outer, mod.inner}
    assert lp.find_tasks(namespace, nested=False) == {outer}


def test_find_tasks_feeds_a_pipeline(pipelines) -> None:
    zero, one = make_classic()
    p = pipelines()
    p.add(*lp.find_tasks({"zero": zero, "one": one}))
    p.execute()
    assert p.get_result("One") == ["Some", "values", "OK"]


# -- the function form -----------------------------------------------------------------


def test_function_form_bare_decorator_names_the_task_after_the_function(pipelines) -> None:
    p = pipelines()

    @p.task
    def extract():
        return [1, 2, 3]

    assert isinstance(extract, lp.Task)
    assert extract.name == "extract"
    assert extract.pipeline is p
    p.execute()
    assert p.get_result("extract") == [1, 2, 3]


def test_function_form_parameters_receive_upstream_results(pipelines) -> None:
    p = pipelines()

    @p.task
    def clean(extract):  # declared before its dependency: order does not matter
        return [x * 10 for x in extract]

    @p.task
    def extract():
        return [1, 2]

    assert clean.dependencies == {"extract": extract}
    report = p.execute()
    assert report.executed == ["extract", "clean"]
    assert p.get_result("clean") == [10, 20]


def test_function_form_mixes_with_classic_tasks(pipelines) -> None:
    zero, _ = make_classic()
    p = pipelines()
    p.add(zero)

    @p.task
    def count(Zero):  # named after the classic task
        return len(Zero)

    p.execute()
    assert p.get_result("count") == 2


def test_function_form_this_parameter_receives_the_task(pipelines) -> None:
    p = pipelines()

    @p.task
    def base():
        return 5

    @p.task
    def double(this, base):
        return (this.name, base * 2)

    assert double.dependencies == {"base": base}
    p.execute()
    assert p.get_result("double") == ("double", 10)


def test_function_form_options_name_and_input_files(pipelines, tmp_path) -> None:
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n")
    p = pipelines()

    @p.task(name="Load", input_files=["raw.csv"], expire_results=lp.expire.never())
    def load_csv():
        with open("raw.csv") as f:
            return f.read().splitlines()

    assert load_csv.name == "Load"
    assert load_csv.input_files == ["raw.csv"]
    p.execute()
    assert p.get_result("Load") == ["a,b", "1,2"]


def test_explicit_dependencies_add_to_the_inferred_ones(pipelines) -> None:
    p = pipelines()
    order = []

    @p.task
    def setup():
        order.append("setup")

    @p.task
    def extract():
        order.append("extract")
        return 1

    @p.task(dependencies=["setup"])
    def report(extract):
        order.append("report")
        return extract + 1

    assert set(report.dependencies) == {"setup", "extract"}
    p.execute()
    assert order.index("report") > order.index("setup")
    assert order.index("report") > order.index("extract")
    assert p.get_result("report") == 2


def test_parameter_naming_no_task_without_default_is_a_validation_error(pipelines) -> None:
    p = pipelines()
    ran = []

    @p.task
    def extract():
        ran.append("extract")
        return 1

    @p.task
    def clean(extrct):
        ran.append("clean")
        return extrct

    with pytest.raises(lp.PipelineValidationError, match="'extrct'.*Did you mean 'extract'"):
        p.execute()
    assert ran == []


def test_parameter_naming_no_task_with_default_gets_the_default(pipelines) -> None:
    p = pipelines()

    @p.task
    def scaled(factor=3):
        return 2 * factor

    p.execute()
    assert p.get_result("scaled") == 6


def test_function_form_rejects_star_args(pipelines) -> None:
    p = pipelines()
    with pytest.raises(lp.TaskDefinitionError, match="named parameters only"):

        @p.task
        def gather(*results):
            return results


def test_function_form_task_is_still_callable_directly(pipelines) -> None:
    p = pipelines()

    @p.task
    def add_one(x=0):
        return x + 1

    assert add_one(x=41) == 42


def test_function_form_task_wraps_its_function_as_update_wrapper_does() -> None:
    def clean(raw: int = 0) -> int:
        """Clean the raw data."""
        return raw

    task = lp.Task.from_function(clean)
    expected = functools.update_wrapper(types.SimpleNamespace(), clean, updated=())
    for attr in (*functools.WRAPPER_ASSIGNMENTS, "__wrapped__"):
        assert getattr(task, attr) == getattr(expected, attr), attr
    assert inspect.unwrap(task) is clean


def test_run_of_a_function_form_task_fetches_its_upstream_results(pipelines) -> None:
    p = pipelines()

    @p.task
    def base():
        return 20

    @p.task
    def total(this, base):
        return base + len(this.dependencies)

    p.execute()
    assert total.run() == 21  # its own `run` process, as a classic task's
    assert lp.Task.from_function(lambda: 5, name="alone").run() == 5  # no pipeline


def test_dependencies_can_be_reassigned_after_adding(pipelines) -> None:
    zero, _ = make_classic()
    late = lp.Task("Late")

    @late.process
    def run(this):
        return this.pipeline.get_result("Zero", default="not yet")

    p = pipelines()
    p.add(late, zero)
    assert [t.name for t in p.tasks] == ["Late", "Zero"]
    late.dependencies = [zero]
    assert [t.name for t in p.tasks] == ["Zero", "Late"]
    p.execute()
    assert p.get_result("Late") == ["Some", "values"]
