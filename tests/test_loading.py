"""Loading alone: finding a pipeline from what a user types after `lpipe`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import little_pipelines as lp
from little_pipelines.loading import load_pipeline

TWO = """
import little_pipelines as lp

daily = lp.Pipeline("daily")
weekly = lp.Pipeline("weekly")
"""

TASKS_ONLY = """
import little_pipelines as lp

extract = lp.Task("Extract")

@extract.process
def run(this):
    return 1
"""


def module(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_a_file_with_several_pipelines_needs_a_name_or_an_attribute(tmp_path) -> None:
    path = module(tmp_path, "two.py", TWO)
    with pytest.raises(lp.LoadError, match="defines 2 pipelines"):
        load_pipeline(str(path))
    assert load_pipeline(str(path), "weekly").name == "weekly"
    assert load_pipeline(f"{path}:daily").name == "daily"
    with pytest.raises(lp.LoadError, match="Did you mean 'daily'"):
        load_pipeline(str(path), "dialy")


def test_tasks_without_a_pipeline_are_gathered_into_one_named_after_the_file(tmp_path) -> None:
    p = load_pipeline(str(module(tmp_path, "etl_tasks.py", TASKS_ONLY)))
    assert p.name == "etl_tasks"
    assert p.task_names() == ["Extract"]


def test_a_missing_file_is_a_load_error_and_an_import_error(tmp_path) -> None:
    with pytest.raises(ImportError, match="No such file"):
        load_pipeline(str(tmp_path / "nowhere.py"))
