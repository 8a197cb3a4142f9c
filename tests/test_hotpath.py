"""The per-task hot path of a run (issue 14): what each task costs beyond its code.

Speed itself is measured in bench/; these tests pin down the behaviour the speed
rests on, so it cannot quietly come back: how many loguru calls a task costs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

COUNTING = """
import sys
import loguru._logger
import little_pipelines as lp

calls = [0]
_log = loguru._logger.Logger._log
def counting(self, *args, **kwargs):
    calls[0] += 1
    return _log(self, *args, **kwargs)
loguru._logger.Logger._log = counting

def build():
    p = lp.Pipeline("hot")
    prev = None
    for i in range(30):
        t = lp.Task(f"t{i}", dependencies=[prev] if prev else None)
        @t.process
        def run(this):
            return 1
        p.add(t)
        prev = f"t{i}"
    return p

lp.set_log_level(sys.argv[1])
for phase in ("cold", "warm"):
    calls[0] = 0
    p = build()
    report = p.execute()
    assert report.ok
    print(phase, calls[0])
    p.close()
"""


def _loguru_calls(tmp_path: Path, level: str) -> dict[str, int]:
    script = tmp_path / "count.py"
    script.write_text(textwrap.dedent(COUNTING))
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, str(script), level], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines()}


def test_a_task_costs_no_loguru_call_no_handler_takes_and_the_run_log_keeps_its_lines(
        tmp_path: Path) -> None:
    quiet = _loguru_calls(tmp_path, "ERROR")
    # 30 tasks: nothing shown, so only the run's own few records (its summary) remain.
    assert quiet["cold"] <= 3 and quiet["warm"] <= 3, quiet
    run_log = (tmp_path / "home" / "hot" / "logs" / "_pipeline.log").read_text()
    for i in range(30):  # the run log still has each task's timing and status line
        assert f"| PERF     | t{i} | process 'run' took" in run_log
        assert f"| INFO     | t{i} | ✓ ran in" in run_log


def test_a_task_costs_at_most_one_loguru_call_for_the_line_it_shows(tmp_path: Path) -> None:
    shown = _loguru_calls(tmp_path, "INFO")
    assert 30 <= shown["cold"] <= 30 + 3 and 30 <= shown["warm"] <= 30 + 3, shown


def test_a_run_keeps_older_objects_out_of_full_collections_and_hands_them_back(
        pipelines) -> None:
    import gc

    import little_pipelines as lp

    p: lp.Pipeline = pipelines("gcfreeze")
    seen: list[int] = []

    @p.task
    def one() -> int:
        seen.append(gc.get_freeze_count())
        return 1

    before = gc.get_freeze_count()
    assert p.execute().ok
    assert seen and seen[0] > before  # what existed before the run was not walked
    assert gc.get_freeze_count() == before  # and is collectable again afterwards


def test_a_classic_run_process_is_checked_to_take_the_task_whatever_its_shape(pipelines) -> None:
    """Validation reads a plain function's code object instead of inspect.signature;
    it must accept and refuse exactly what binding one argument would."""
    import pytest

    import little_pipelines as lp

    def ok1(this): ...
    def ok2(this, extra=1): ...
    def ok3(*args): ...
    def ok4(this, *, flag=False): ...
    def ok5(this, /): ...
    def bad1(): ...
    def bad2(this, other): ...
    def bad3(this, *, must): ...
    def bad4(*, this): ...

    for fn, fine in [(ok1, True), (ok2, True), (ok3, True), (ok4, True), (ok5, True),
                     (bad1, False), (bad2, False),
                     (bad3, False), (bad4, False)]:
        t = lp.Task("T")
        fn.__name__ = "run"
        t.process(fn)
        p: lp.Pipeline = pipelines(f"sig{id(fn)}")
        p.add(t)
        if fine:
            p.validate()
        else:
            with pytest.raises(lp.PipelineValidationError, match="only required argument"):
                p.validate()


def test_one_function_makes_many_tasks_each_reading_its_own_upstream(pipelines) -> None:
    """Task.from_function reads a function's parameters once (cached per function);
    each task built from it still gets its own name, dependencies and results."""
    import little_pipelines as lp

    p: lp.Pipeline = pipelines("shared")

    def step(this, start=0):
        deps = list(this.dependencies)
        return start + sum(this.pipeline.get_result(d) for d in deps) + 1

    for i in range(5):
        p.task(step, name=f"s{i}", dependencies=[f"s{i - 1}"] if i else None)
    p.execute()
    assert [p.get_result(f"s{i}") for i in range(5)] == [1, 2, 3, 4, 5]

    def bad(*args):
        return 0

    import pytest

    for _ in range(2):  # the cached reading refuses it every time, with the same message
        with pytest.raises(lp.TaskDefinitionError, match="parameter 'args' of bad"):
            lp.Task.from_function(bad)


def test_a_run_keeps_its_run_log_open_only_while_it_runs(pipelines, tmp_path) -> None:
    import little_pipelines as lp

    p: lp.Pipeline = pipelines("heldlog", log_dir=tmp_path / "logs")
    for i in range(3):
        p.task(name=f"t{i}")(lambda: 1)

    def run_log_open() -> bool:
        return any(os.path.realpath(f"/proc/self/fd/{fd}").endswith("_pipeline.log")
                   for fd in os.listdir("/proc/self/fd"))

    assert p.execute().ok
    assert not run_log_open()  # let go of when the run ended
    text = (tmp_path / "logs" / "_pipeline.log").read_text()
    assert sum("✓ ran in" in line for line in text.splitlines()) == 3
    assert text.index("| t2 | ✓ ran in") < text.index("run of 'heldlog'")  # in order


def test_a_tasks_run_log_lines_are_written_before_its_dependants_start(
        pipelines, tmp_path) -> None:
    """The run log's lines are written once a group of results is committed (one write
    a group): still before any task that depends on them starts, on every executor."""
    import little_pipelines as lp

    run_log = tmp_path / "logs" / "_pipeline.log"
    seen: dict[str, str] = {}
    for executor in ("sequential", "threads"):
        p: lp.Pipeline = pipelines(f"prompt_{executor}", log_dir=tmp_path / "logs")
        seen.clear()
        for i in range(4):  # a fan of four, each read by the last task
            p.task(name=f"{executor}_up{i}")(lambda: 1)

        def last(this: lp.Task) -> int:
            seen["log"] = run_log.read_text()
            return 2

        p.task(last, name=f"{executor}_last", dependencies=[f"{executor}_up{i}" for i in range(4)])
        assert p.execute(executor=executor).ok
        for i in range(4):
            assert f"| INFO     | {executor}_up{i} | ✓ ran in" in seen["log"], executor
            assert f"| PERF     | {executor}_up{i} | function '<lambda>' took" in seen["log"]
        text = run_log.read_text()
        assert f"| INFO     | {executor}_last | ✓ ran in" in text


def test_a_small_atoms_record_keeps_the_preview_and_type_any_value_gets(pipelines) -> None:
    """Ints, floats, bools and None take a shortcut to their preview and type name: the
    record must say what the general path says (a long int's preview is cut)."""
    import little_pipelines as lp
    from little_pipelines.valuefiles import preview, type_name

    values = {"small": 7, "negative": -12, "long": 10**60, "edge": 10**39, "real": 2.5,
              "inf": float("inf"), "yes": True, "none": None, "text": "7"}
    p: lp.Pipeline = pipelines("atoms")
    for name, value in values.items():
        p.task(name=name)(lambda value=value: value)
    assert p.execute().ok
    for name, value in values.items():
        record = p.stored_preview(name)
        assert record is not None, name
        assert (record["preview"], record["type"]) == (preview(value), type_name(value)), name
        assert p.get_result(name) == value


ADDS = """
import sys
import loguru._logger
import little_pipelines as lp

adds = []
_add = loguru._logger.Logger.add
def counting(self, *args, **kwargs):
    adds.append(kwargs.get("filter"))
    return _add(self, *args, **kwargs)
loguru._logger.Logger.add = counting

lp.set_log_level(sys.argv[1])
p = lp.Pipeline("quiet")
for i in range(3):
    p.task(name=f"t{i}", dependencies=[f"t{i - 1}"] if i else None)(lambda: 1)
assert p.execute().ok
print(len(adds))
"""


def test_a_quiet_run_adds_no_loguru_handler_and_its_run_log_keeps_the_summary(
        tmp_path: Path) -> None:
    """Each loguru `add` costs ~3 ms a process: a run that shows nothing and logs nothing
    through loguru adds none; the run log still gets every line, the summary included,
    in the file format. A run that shows its lines has its console."""
    script = tmp_path / "adds.py"
    script.write_text(textwrap.dedent(ADDS))
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}

    def adds(level: str) -> tuple[int, str]:
        proc = subprocess.run([sys.executable, str(script), level], capture_output=True,
                              text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1]), proc.stderr

    quiet, printed = adds("ERROR")
    assert (quiet, printed) == (0, "")
    lines = (tmp_path / "home" / "quiet" / "logs" / "_pipeline.log").read_text().splitlines()
    assert len(lines) == 3 * 2 + 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| INFO     \| quiet \| "
                        r"run of 'quiet': 3 executed.*", lines[-1]), lines[-1]
    shown, printed = adds("INFO")
    assert shown >= 1 and "run of 'quiet'" in printed and "↺ reused" in printed  # warm now
