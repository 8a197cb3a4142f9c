"""Every example script runs, and running it again shows the cache at work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_quickstart_computes_then_reuses(tmp_path: Path) -> None:
    first = run("quickstart.py", tmp_path)
    second = run("quickstart.py", tmp_path)
    expected = ("report: {'total_revenue': 389.7, 'best_region': 'south', "
                "'units': {'gadget': 8, 'gizmo': 19, 'widget': 65}}")
    assert expected in first.stdout and expected in second.stdout
    assert "4 executed" in first.stdout
    assert "4 cached" in second.stdout


def test_classic_processes(tmp_path: Path) -> None:
    proc = run("classic_processes.py", tmp_path)
    assert "Clean: [3, 1, 4, 1, 5]" in proc.stdout
    log = (tmp_path / "ClassicProcesses" / "logs" / "_pipeline.log").read_text()
    assert "process 'extract' took" in log and "process 'transform' took" in log


def test_on_complete_result_reruns_every_time_and_feeds_sum(tmp_path: Path) -> None:
    first = run("on_complete_sum.py", tmp_path)
    second = run("on_complete_sum.py", tmp_path)
    assert "Final Result: 6" in first.stdout and "Final Result: 6" in second.stdout
    assert "ran: TaskOne, TaskTwo, TaskThree, Sum" in first.stdout
    # TaskThree expired when the first run completed; its identical result keeps Sum cached.
    assert "ran: TaskThree\n" in second.stdout
    assert "expired when the run that stored it ended" in second.stderr


def test_tasks_added_in_reverse_order(tmp_path: Path) -> None:
    proc = run("reverse_order.py", tmp_path)
    assert "order: ['Zero', 'One', 'Two']" in proc.stdout
    assert "One: ['Some', 'values', 'more', 'values', 'OK']" in proc.stdout
    assert "Two: 5" in proc.stdout
