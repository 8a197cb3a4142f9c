"""Notebooks and Python display: a report, a plan and an explanation render as HTML
and as plain text, in a real kernel run by nbclient."""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest

import little_pipelines as lp

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    """
import little_pipelines as lp
p = lp.Pipeline("notebook")

@p.task
def numbers():
    return [1, 2, 3]

@p.task
def total(numbers):
    return sum(numbers)
""",
    "report = p.execute()\nreport",
    "print(report)",
    "p.plan(force=True)",
    "p.explain('total')",
]


def result(cell: dict) -> dict:
    """The data of a cell's value (its execute_result), not its printed streams."""
    return next(o for o in cell["outputs"] if o["output_type"] == "execute_result")["data"]


def test_a_report_as_the_last_expression_of_a_cell_shows_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in CELLS]
    monkeypatch.setenv("LITTLE_PIPELINES_HOME", str(tmp_path / "home"))  # the kernel's too
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    report_out = result(nb.cells[1])
    html = report_out["text/html"]
    assert "<table>" in html and 'data-status="executed"' in html
    assert html.count('class="lp-bar"') == 2  # the timeline, one bar per task
    assert "RunReport(" not in report_out["text/plain"]
    printed = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "numbers" in printed and "✓ executed" in printed and "run of 'notebook'" in printed
    plan_html = unescape(result(nb.cells[3])["text/html"])
    assert "plan for 'notebook'" in plan_html and "lp-bar" not in plan_html  # no timeline
    explain_html = result(nb.cells[4])["text/html"]
    assert "total" in explain_html and "unchanged since" in explain_html


def test_str_of_a_report_is_its_table(tmp_path: Path) -> None:
    p = lp.Pipeline("plain", cache_dir=tmp_path / "s")

    @p.task
    def one():
        return 1

    text = str(p.execute())
    assert text.splitlines()[-1].startswith("run of 'plain': 1 executed")
    assert "│ one  │ ✓ executed │" in text
    p.close()
