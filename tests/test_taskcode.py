"""code="function" is sound: every kind of reference the analysis meets reruns exactly the
tasks that use the edited thing (issue 10), checked by editing real module files."""

from __future__ import annotations

import textwrap

import pytest
from loguru import logger

import little_pipelines as lp
import test_precision
from test_precision import Project

project = test_precision.project  # the fixture: a project on disk, imported afresh

HELPERS = """
    import datetime
    import decimal
    import functools
    from pathlib import Path

    import numpy as np
    import pandas as pd

    THRESHOLD = 10
    START = datetime.date(2024, 1, 1)
    OUT = Path("out/v1")
    RATE = decimal.Decimal("1.5")
    WEIGHTS = np.array([1, 2, 3])
    WHEN = pd.Timestamp("2024-01-01")


    @functools.lru_cache
    def cached_square(x):
        return x * x


    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            return fn(*a, **k)
        return wrapper


    @logged
    def wrapped_inc(x):
        return x + 1


    def _triple(x):
        return x * 3


    vtriple = np.vectorize(_triple)


    def double(x):
        return x * 2


    def negate(x):
        return -x


    OPS = {"double": double}


    def scale(x, factor):
        return x * factor


    by_two = functools.partial(scale, factor=2)


    class Cleaner:
        def run(self, x):
            return x.strip()


    CLEANER = Cleaner()
"""

TASKS = """
    import little_pipelines as lp
    import helpers
    from helpers import START, OUT, RATE, WEIGHTS, WHEN, cached_square, wrapped_inc, vtriple
    from helpers import by_two

    p = lp.Pipeline("sound", code="function")
    NAME = "double"


    @p.task
    def threshold():
        return helpers.THRESHOLD


    @p.task
    def start():
        return str(START)


    @p.task
    def out():
        return str(OUT)


    @p.task
    def rate():
        return str(RATE)


    @p.task
    def weights():
        return int(WEIGHTS.sum())


    @p.task
    def when():
        return str(WHEN)


    @p.task
    def square():
        return cached_square(3)


    @p.task
    def inc():
        return wrapped_inc(1)


    @p.task
    def vec():
        return int(vtriple(2))


    @p.task
    def ops():
        return helpers.OPS["double"](5)


    @p.task
    def part():
        return by_two(3)


    @p.task
    def clean():
        return helpers.CLEANER.run(" x ")


    @p.task
    def looked():
        return getattr(helpers, NAME)(4)


    @p.task
    def plain():
        return 1
"""

ALL = {"threshold", "start", "out", "rate", "weights", "when", "square", "inc", "vec", "ops",
       "part", "clean", "looked", "plain"}

# (edit in helpers.py, the task that must rerun, the piece its reasons must name).
# `looked` reads helpers through getattr with a computed name: the whole of helpers
# counts for it, so it reruns on every edit there, and says so.
CASES = [
    ("THRESHOLD = 10", "THRESHOLD = 11", "threshold", "helpers.THRESHOLD"),
    ("datetime.date(2024, 1, 1)", "datetime.date(2024, 1, 2)", "start", "tasks.START"),
    ('Path("out/v1")', 'Path("out/v2")', "out", "tasks.OUT"),
    ('Decimal("1.5")', 'Decimal("2.5")', "rate", "tasks.RATE"),
    ("np.array([1, 2, 3])", "np.array([1, 2, 4])", "weights", "tasks.WEIGHTS"),
    ('pd.Timestamp("2024-01-01")', 'pd.Timestamp("2024-01-02")', "when", "tasks.WHEN"),
    ("return x * x", "return x * x + 1", "square", "helpers.cached_square"),
    ("return x + 1", "return x + 2", "inc", "helpers.wrapped_inc"),
    ("return fn(*a, **k)", "return fn(*a, **k) * 10", "inc", "helpers.logged.<locals>.wrapper"),
    ("return x * 3", "return x * 4", "vec", "helpers._triple"),
    ("return x * 2", "return x * 20", "ops", "helpers.double"),
    ('{"double": double}', '{"double": negate}', "ops", "helpers.OPS"),
    ("factor=2)", "factor=3)", "part", "tasks.by_two"),
    ("return x * factor", "return x * factor * 2", "part", "helpers.scale"),
    ("return x.strip()", "return x.strip().upper()", "clean", "helpers.Cleaner"),
]


def start(project: Project) -> None:
    project.write("helpers", HELPERS)
    project.write("tasks", TASKS)
    assert set(rerun(project)) == ALL


def rerun(project: Project) -> dict[str, lp.TaskOutcome]:
    module = project.load("tasks")
    report = module.p.execute()
    module.p.close()
    assert not report.failed, report
    return {name: report[name] for name in report.executed}


@pytest.mark.parametrize(("old", "new", "task", "subject"), CASES,
                         ids=[c[2] + ":" + c[0][:20] for c in CASES])
def test_an_edit_reruns_exactly_its_users_and_names_the_piece(
        project: Project, old: str, new: str, task: str, subject: str) -> None:
    start(project)
    assert HELPERS.count(old) == 1
    project.write("helpers", HELPERS.replace(old, new))
    ran = rerun(project)
    assert set(ran) == {task, "looked"}
    assert subject in [r.subject for r in ran[task].reasons], ran[task].reasons
    assert "module helpers" in [r.subject for r in ran["looked"].reasons]
    assert "dynamic getattr() at line" in ran["looked"].why


def test_a_dynamic_lookup_counts_the_module_it_looks_into(project: Project) -> None:
    start(project)
    project.write("helpers", HELPERS.replace("def negate(x):\n        return -x",
                                             "def negate(x):\n        return -x - 0"))
    assert set(rerun(project)) == {"looked"}  # nothing else uses negate


def test_comments_docstrings_and_formatting_still_rerun_nothing(project: Project) -> None:
    start(project)
    project.write("helpers", HELPERS.replace("return x * 2", "return x*2  # doubled")
                  .replace("def scale(x, factor):", 'def scale(x, factor):\n        """Scale."""'))
    assert rerun(project) == {}


def test_a_value_that_cannot_be_pickled_counts_its_whole_module(project: Project) -> None:
    project.write("helpers", "import threading\nLOCK = threading.Lock()\nLIMIT = 1\n")
    project.write("tasks", """
        import little_pipelines as lp
        from helpers import LOCK

        p = lp.Pipeline("unpicklable", code="function")


        @p.task
        def guarded():
            with LOCK:
                return 1


        @p.task
        def free():
            return 2
    """)
    assert set(rerun(project)) == {"guarded", "free"}
    assert rerun(project) == {}
    project.write("tasks", (project.root / "tasks.py").read_text() + "\nOTHER = 3\n")
    ran = rerun(project)
    assert set(ran) == {"guarded"}
    assert "tasks.LOCK (a lock) cannot be fingerprinted" in ran["guarded"].why


def test_a_task_calling_another_tasks_function_follows_its_code(project: Project) -> None:
    source = """
        import little_pipelines as lp

        p = lp.Pipeline("calls", code="function")


        @p.task
        def base():
            return 1


        @p.task
        def caller():
            return base.main_function() + 1
    """
    project.write("tasks", source)
    assert set(rerun(project)) == {"base", "caller"}
    project.write("tasks", source.replace("return 1\n", "return 2\n"))
    assert set(rerun(project)) == {"base", "caller"}


REACH = """
    import importlib

    import little_pipelines as lp
    import helpers
    from helpers import SCALE

    p = lp.Pipeline("reach", code="function")
    NAME = "help" + "ers"


    def use(mod):
        return mod.scale(2)


    def helper(x, k=SCALE):
        return x * k


    @p.task
    def module_arg():
        return use(helpers)


    @p.task
    def default(x=SCALE):
        return x


    @p.task
    def helper_default():
        return helper(1)


    @p.task
    def imported():
        return importlib.import_module("hel" + "pers").scale(2)


    @p.task
    def dunder():
        return __import__(NAME).scale(2)


    @p.task
    def plain():
        return 1
"""


def test_modules_as_values_defaults_and_computed_imports_are_followed(
        project: Project) -> None:
    project.write("helpers", "def scale(x):\n    return x * 1\n\n\nSCALE = 1\n")
    project.write("tasks", REACH)
    assert len(rerun(project)) == 6
    project.write("helpers", "def scale(x):\n    return x * 2\n\n\nSCALE = 1\n")
    ran = rerun(project)
    assert set(ran) == {"module_arg", "imported", "dunder"}
    assert "module helpers used as a value" in ran["module_arg"].why
    for name in ("imported", "dunder"):  # every user module loaded counts for them
        assert "module helpers" in [r.subject for r in ran[name].reasons], ran[name].reasons
    project.write("helpers", "def scale(x):\n    return x * 2\n\n\nSCALE = 2\n")
    ran = rerun(project)
    assert set(ran) == {"module_arg", "imported", "dunder", "default", "helper_default"}
    assert "tasks.default.__defaults__" in [r.subject for r in ran["default"].reasons]
    assert "tasks.helper.__defaults__" in [r.subject for r in ran["helper_default"].reasons]


STALE = """
    import little_pipelines as lp

    p = lp.Pipeline("stale")


    def helper():
        return 1


    @p.task
    def a():
        return helper()
"""


@pytest.mark.parametrize("edit", ["def helper():\n    return 2", "return helper() + 1"],
                         ids=["helper", "task"])
def test_an_edited_file_not_reloaded_is_not_recorded_as_the_new_code(
        project: Project, edit: str) -> None:
    """code="module" in a long-lived process: the file is edited but its module not
    reloaded. The task runs the OLD code; its result must not be kept under the new
    file's digest, or a fresh process would reuse a result the new code never made.
    Editing only a helper the (unchanged) task calls is caught too."""
    project.write("tasks", STALE)
    module = project.load("tasks")
    assert module.p.execute().executed == ["a"]
    old = "return helper()" if edit.startswith("return") else "def helper():\n    return 1"
    project.write("tasks", textwrap.dedent(STALE).replace(old, edit))  # no reload
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        report = module.p.execute()
        assert module.p.execute().cached == ["a"]  # one warning per file per process
    finally:
        logger.remove(sink)
    assert report.executed == ["a"]  # with the code loaded, which is not the file's
    assert any(r.subject.startswith("<loaded code of ") for r in report["a"].reasons)
    assert module.p.get_result("a") == 1
    assert len(warnings) == 1 and "tasks.py changed on disk" in warnings[0], warnings
    assert "importlib.reload" in warnings[0]
    module.p.close()
    fresh = project.load("tasks")  # a new process imports the edited file
    report = fresh.p.execute()
    assert report.executed == ["a"]
    assert fresh.p.get_result("a") == 2
    assert fresh.p.execute().cached == ["a"]
    fresh.p.close()
