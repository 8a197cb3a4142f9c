"""Rerun exactly what changed: function-level code fingerprints, version, sources,
params, accept and explain — each rule checked by editing real files in a project."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import little_pipelines as lp


class Project:
    """A tiny project on disk whose modules keep their names across edits."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: set[str] = set()

    def write(self, name: str, source: str) -> None:
        path = self.root / f"{name}.py"
        previous = path.stat().st_mtime_ns if path.exists() else None
        path.write_text(textwrap.dedent(source))
        if previous is not None:  # coarse timestamps: make each edit visible
            later = max(path.stat().st_mtime_ns, previous + 1_000_000_000)
            os.utime(path, ns=(later, later))
        self.names.add(name)

    def load(self, name: str) -> ModuleType:
        """Import the project afresh, as a new process would."""
        for mod in self.names:
            sys.modules.pop(mod, None)
        importlib.invalidate_caches()
        return importlib.import_module(name)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    proj = Project(root)
    yield proj
    for mod in proj.names:
        sys.modules.pop(mod, None)


HELPERS = """
    '''Helpers two modules away from the tasks.'''

    RATE = 3


    def clean(rows):
        # strip the rows
        return [r.strip() for r in rows]


    def unused():
        return "nobody calls me"


    class Scaler:
        def scale(self, value):
            return value * RATE
"""

MIDDLE = """
    from helpers import clean


    def tidy(rows):
        return clean(rows)
"""

TASKS = """
    import little_pipelines as lp
    import middle
    from helpers import Scaler

    LIMIT = 2

    p = lp.Pipeline("precise", code="function")


    @p.task
    def rows():
        return [" a ", " b ", " c "]


    @p.task
    def tidied(rows):
        return middle.tidy(rows)


    @p.task
    def limited(rows):
        return rows[:LIMIT]


    @p.task
    def scaled():
        return Scaler().scale(2)


    @p.task
    def plain():
        return "no helpers"
"""


def run(project: Project, name: str = "tasks") -> lp.RunReport:
    module = project.load(name)
    report = module.p.execute()
    module.p.close()
    return report


def start(project: Project) -> lp.RunReport:
    project.write("helpers", HELPERS)
    project.write("middle", MIDDLE)
    project.write("tasks", TASKS)
    first = run(project)
    assert set(first.executed) == {"rows", "tidied", "limited", "scaled", "plain"}
    return first


def test_a_helper_two_modules_away_reruns_only_its_users(project: Project) -> None:
    start(project)
    project.write("helpers", HELPERS.replace("r.strip()", "r.strip().upper()"))
    report = run(project)
    assert report.executed == ["tidied"]
    assert [str(r) for r in report["tidied"].reasons] == ["code changed in helpers.clean"]


def test_comments_docstrings_and_formatting_rerun_nothing(project: Project) -> None:
    start(project)
    project.write("helpers", HELPERS.replace("# strip the rows", "# a new comment")
                  .replace("return [r.strip() for r in rows]",
                           '"""Now with a docstring."""\n        return [\n            '
                           'r.strip()   for r in rows\n        ]'))
    project.write("tasks", TASKS.replace("return rows[:LIMIT]", "return rows[ : LIMIT ]  # hi"))
    report = run(project)
    assert report.executed == []
    assert len(report.cached) == 5


def test_an_unused_function_changing_reruns_nothing(project: Project) -> None:
    start(project)
    project.write("helpers", HELPERS.replace("nobody calls me", "still nobody"))
    assert run(project).executed == []


def test_a_module_constant_change_reruns_its_users(project: Project) -> None:
    start(project)
    project.write("tasks", TASKS.replace("LIMIT = 2", "LIMIT = 1"))
    report = run(project)
    assert report.executed == ["limited"]
    assert [str(r) for r in report["limited"].reasons] == ["code changed in tasks.LIMIT"]
    project.write("helpers", HELPERS.replace("RATE = 3", "RATE = 4"))
    assert run(project).executed == ["scaled"]  # RATE is used by a method of Scaler


def test_a_class_method_change_reruns_the_class_users(project: Project) -> None:
    start(project)
    project.write("helpers", HELPERS.replace("return value * RATE", "return value * RATE + 1"))
    report = run(project)
    assert report.executed == ["scaled"]
    assert [r.subject for r in report["scaled"].reasons] == ["helpers.Scaler"]


def test_module_mode_reruns_every_task_of_an_edited_file(project: Project) -> None:
    project.write("helpers", HELPERS)
    project.write("middle", MIDDLE)
    project.write("tasks", TASKS.replace(', code="function"', ""))
    run(project)
    project.write("tasks", TASKS.replace(', code="function"', "") + "\n    # just a comment\n")
    report = run(project)
    assert set(report.executed) == {"rows", "tidied", "limited", "scaled", "plain"}


DYNAMIC = """
    import little_pipelines as lp
    import helpers

    p = lp.Pipeline("dynamic", code="function")

    NAME = "unused"


    @p.task
    def looked_up():
        return getattr(helpers, NAME)()


    @p.task
    def static():
        return 1
"""


def test_dynamic_access_falls_back_to_the_whole_module_and_says_so(project: Project) -> None:
    project.write("helpers", HELPERS)
    project.write("tasks2", DYNAMIC)
    assert set(run(project, "tasks2").executed) == {"looked_up", "static"}
    project.write("tasks2", DYNAMIC + "\n\n    OTHER = 1\n")
    report = run(project, "tasks2")
    assert report.executed == ["looked_up"]
    why = report["looked_up"].why
    assert "whole module" in why and "dynamic getattr() at line" in why


VERSIONED = """
    import little_pipelines as lp

    p = lp.Pipeline("versioned", code="function")


    @p.task(version="1")
    def model():
        return "trained"
"""


def test_version_replaces_the_code_fingerprint(project: Project) -> None:
    project.write("tasks3", VERSIONED)
    run(project, "tasks3")
    project.write("tasks3", VERSIONED.replace('"trained"', '"refactored"'))
    assert run(project, "tasks3").executed == []  # refactor freely
    project.write("tasks3", VERSIONED.replace('version="1"', 'version="2"'))
    report = run(project, "tasks3")
    assert report.executed == ["model"]
    assert [r.kind for r in report["model"].reasons] == ["version_changed"]


def test_a_source_token_change_reruns_and_is_taken_once_per_run() -> None:
    token = {"value": "etag-1"}
    calls: list[str] = []

    def orders_etag() -> str:
        calls.append(token["value"])
        return token["value"]

    p = lp.Pipeline("sources")

    @p.task(sources={"orders": orders_etag})
    def orders():
        return "fetched"

    @p.task(sources={"orders": orders_etag})
    def audit():
        return "audited"

    assert set(p.execute().executed) == {"orders", "audit"}
    assert calls == ["etag-1"]  # one call for both tasks
    assert p.execute().executed == []
    token["value"] = "etag-2"
    report = p.execute()
    assert set(report.executed) == {"orders", "audit"}
    assert [str(r) for r in report["orders"].reasons] == [
        "source 'orders' changed ('etag-1' -> 'etag-2')"]
    p.close()


def test_params_are_passed_fingerprinted_and_can_be_ignored(tmp_path: Path) -> None:
    p = lp.Pipeline("params", params={"region": "north", "tmp": str(tmp_path)})

    @p.task(ignore_params=["tmp"])
    def sales(region, tmp):
        return f"{region} via {tmp}"

    classic = lp.Task("Classic", params={"factor": 2}, ignore_params=["tmp"])

    @classic.process
    def run(this):
        return this.params["factor"] * len(this.params["region"])

    p.add(classic)
    p.execute()
    assert p.get_result("sales") == f"north via {tmp_path}"
    assert p.get_result("Classic") == 10
    p.params["tmp"] = "/elsewhere"
    assert p.execute().executed == []  # an ignored param changes nothing
    p.params["region"] = "south"
    report = p.execute()
    assert set(report.executed) == {"sales", "Classic"}
    assert [str(r) for r in report["sales"].reasons] == ["param 'region' changed"]
    assert p.get_result("sales") == "south via /elsewhere"
    p.close()


def test_values_that_cannot_be_fingerprinted_are_loud_errors() -> None:
    p = lp.Pipeline("loud", params={"lock": threading.Lock()})

    @p.task
    def uses(lock):
        return 1

    with pytest.raises(lp.LittlePipelinesError, match="Task 'uses': param 'lock' cannot be"):
        p.execute()

    q = lp.Pipeline("loud_source")

    @q.task(sources={"conn": lambda: threading.Lock()})
    def reads():
        return 1

    report = q.execute()
    assert report["reads"].status == "failed"
    assert "source 'conn' cannot be fingerprinted" in report["reads"].why
    p.close()
    q.close()


def test_a_task_logger_is_never_part_of_a_fingerprint(project: Project) -> None:
    project.write("tasks4", """
        import little_pipelines as lp
        from loguru import logger

        p = lp.Pipeline("logged", code="function")


        @p.task
        def noisy(this):
            logger.info("hello")
            this.logger.info("hi")
            return 1
    """)
    run(project, "tasks4")
    assert run(project, "tasks4").executed == []


def test_accept_marks_a_cosmetic_edit_as_matching(project: Project) -> None:
    project.write("helpers", HELPERS)
    project.write("middle", MIDDLE)
    project.write("tasks", TASKS.replace(', code="function"', ""))
    run(project)
    project.write("tasks", TASKS.replace(', code="function"', "") + "\n    # cosmetic\n")
    module = project.load("tasks")
    assert module.p.accept(["rows", "plain"]) == ["rows", "plain"]
    assert module.p.record("rows")["accepted_at"] > 0
    report = module.p.execute()
    assert "rows" in report.cached and "plain" in report.cached
    assert "tidied" in report.executed  # not accepted: reruns
    with pytest.raises(lp.UnknownTaskError):
        module.p.accept(["nope"])
    module.p.close()


def test_explain_shows_a_diff_of_the_changed_function(project: Project) -> None:
    start(project)
    project.write("helpers", HELPERS.replace("r.strip()", "r.strip().upper()"))
    module = project.load("tasks")
    explanation = module.p.explain("tidied")
    module.p.close()
    assert explanation.status == "run"
    text = str(explanation)
    assert "code changed in helpers.clean" in text
    assert "-    return [r.strip() for r in rows]" in text
    assert "+    return [r.strip().upper() for r in rows]" in text


def test_explain_shows_input_stamps_and_cached_tasks(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    p = lp.Pipeline("explained")

    @p.task(input_files=[data])
    def load():
        return data.read_text()

    p.execute()
    cached = p.explain("load")
    assert cached.status == "cached" and "unchanged since" in str(cached)
    data.write_text("a,b\n1,2\n3,4\n")
    text = str(p.explain("load"))
    assert f"input {data} changed" in text
    assert "before: 8 bytes" in text and "now: 12 bytes" in text
    p.close()
