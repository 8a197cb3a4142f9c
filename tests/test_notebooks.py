"""Notebooks are a first-class place to define pipelines: real .ipynb files executed
headlessly by nbclient on an ipykernel, in both code modes (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

SETUP = 'import json\nimport little_pipelines as lp\np = lp.Pipeline("nb", code={mode!r})'
BASE = "@p.task\ndef base():\n    return 2"
DOUBLE = "@p.task\ndef double(base):\n    # twice the base\n    return base * 2"
NOTE = 'NOTE = "an unrelated cell"\n\n\ndef plus(v):\n    return v + 0'
RUN = ("report = p.execute()\n"
       "print(json.dumps({'executed': sorted(report.executed), 'double': p.get_result('double')}))")


def notebook(mode: str, double: str = DOUBLE, note: str = NOTE) -> Any:
    cells = [SETUP.format(mode=mode), BASE, double, note, RUN]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def last_json(cell: Any) -> dict[str, Any]:
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
    return dict(json.loads(text.strip().splitlines()[-1]))


def stderr(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")


class Kernel:
    """One kernel running one notebook, whose cells can be edited and run again."""

    def __init__(self, nb: Any, cwd: Path) -> None:
        self.nb = nb
        self.client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                              resources={"metadata": {"path": str(cwd)}})

    def run_all(self) -> dict[str, Any]:
        for i, cell in enumerate(self.nb.cells):
            self.client.execute_cell(cell, i)
        return last_json(self.nb.cells[-1])

    def rerun(self, index: int, source: str) -> Any:
        cell = self.nb.cells[index]
        cell.source = source
        self.client.execute_cell(cell, index)
        return cell


def in_new_kernel(nb: Any, cwd: Path) -> dict[str, Any]:
    kernel = Kernel(nb, cwd)
    with kernel.client.setup_kernel():
        return kernel.run_all()


@pytest.mark.parametrize("mode", ["module", "function"])
def test_notebooks_cache_across_kernels_and_rerun_edited_cells(tmp_path: Path, mode: str) -> None:
    first = in_new_kernel(notebook(mode), tmp_path)
    assert first == {"executed": ["base", "double"], "double": 4}

    # A new kernel, nothing edited: everything is reused (no kernel PID in fingerprints).
    assert in_new_kernel(notebook(mode), tmp_path) == {"executed": [], "double": 4}

    # A new kernel, an unrelated cell and a comment edited: still nothing reruns.
    edited = notebook(mode, DOUBLE.replace("# twice", "# two times"), NOTE.replace("an", "one"))
    assert in_new_kernel(edited, tmp_path) == {"executed": [], "double": 4}

    # A new kernel, the task cell edited: that task reruns, and only it.
    edited = notebook(mode, DOUBLE.replace("base * 2", "base * 3"))
    assert in_new_kernel(edited, tmp_path) == {"executed": ["double"], "double": 6}


@pytest.mark.parametrize("mode", ["module", "function"])
def test_rerunning_a_cell_in_one_kernel_replaces_the_task(tmp_path: Path, mode: str) -> None:
    kernel = Kernel(notebook(mode), tmp_path)
    with kernel.client.setup_kernel():
        assert kernel.run_all() == {"executed": ["base", "double"], "double": 4}
        redefined = kernel.rerun(2, DOUBLE.replace("base * 2", "base * 5"))
        assert "task 'double' redefined" in stderr(redefined)
        after = kernel.rerun(4, RUN)
        assert last_json(after) == {"executed": ["double"], "double": 10}
        # The same cell run again, unchanged: replaced again, nothing reruns.
        kernel.rerun(2, DOUBLE.replace("base * 2", "base * 5"))
        assert last_json(kernel.rerun(4, RUN)) == {"executed": [], "double": 10}
        # A helper cell the task uses, edited and run again: the task reruns.
        kernel.rerun(3, NOTE + "\nNOTE = 1")
        assert last_json(kernel.rerun(4, RUN))["executed"] == []
        s = DOUBLE.replace("base * 2", "plus(base) * 5")
        kernel.rerun(2, s)
        assert last_json(kernel.rerun(4, RUN)) == {"executed": ["double"], "double": 10}
        kernel.rerun(3, NOTE.replace("v + 0", "v + 1"))
        assert last_json(kernel.rerun(4, RUN)) == {"executed": ["double"], "double": 15}
        # Two different functions under one name stay an error, even in a notebook.
        with pytest.raises(nbclient.exceptions.CellExecutionError, match="double"):
            kernel.rerun(3, '@p.task(name="double")\ndef other(base):\n    return 0')
            kernel.rerun(4, RUN)
