"""`lpipe`: every command in-process (captured console) and as a real subprocess."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

import little_pipelines as lp
from little_pipelines import cli, log
from little_pipelines.cli import main
from little_pipelines.display import RunView
from little_pipelines.render import make_console, preview
from little_pipelines.report import Reason, TaskOutcome

ROOT = Path(__file__).resolve().parent.parent
LPIPE = Path(sys.executable).parent / "lpipe"

DEMO = '''
"""A small pipeline for the CLI tests."""
import little_pipelines as lp

pipeline = lp.Pipeline("demo")


@pipeline.task
def extract():
    """Numbers to work on."""
    return [1, 2, 3]


@pipeline.task
def double(extract):
    return [x * 2 for x in extract]


@pipeline.task
def total(extract, double):
    return sum(extract) + sum(double)
'''

FAILING = '''
import os
import little_pipelines as lp

pipeline = lp.Pipeline("failing")


@pipeline.task
def good():
    return 1


@pipeline.task
def bad(good):
    if not os.environ.get("LP_TEST_FIXED"):
        raise ValueError("bad value [x]")
    return 2


@pipeline.task
def after(bad):
    return 3
'''


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "home"
    monkeypatch.setenv("LITTLE_PIPELINES_HOME", str(folder))
    monkeypatch.delenv("LOG_DIR", raising=False)
    level = log._state["level"]  # `lpipe run` and `log` set the console's level: restore it
    yield folder
    lp.set_log_level(level)


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def lpipe(*args: str | Path, width: int = 100) -> tuple[int, str, str]:
    """Run `lpipe` in this process; (exit status, output, errors) as plain text."""
    out, err = io.StringIO(), io.StringIO()
    options = {"width": width, "color_system": None, "force_terminal": False}
    code = main([str(a) for a in args], console=make_console(out, **options),
                err_console=make_console(err, **options))
    return code, out.getvalue(), err.getvalue()


def mask(text: str, *paths: Path) -> str:
    """Blank out what changes between runs: times, durations, folders; trailing blanks."""
    for p in paths:
        text = text.replace(str(p), "<tmp>")
    # Placeholders as wide as what they hide, so table columns keep their widths.
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "YYYY-MM-DD hh:mm:ss", text)
    text = re.sub(r"\d+\.\d\ds", "#.##s", text)
    return "\n".join(line.rstrip() for line in text.splitlines())


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write(tmp_path, "demo.py", DEMO)


# -- run ---------------------------------------------------------------------------------------
def test_run_computes_then_reuses(demo: Path) -> None:
    code, out, err = lpipe("run", demo)
    assert code == 0, err
    assert "▶ extract running" in out and "✓ executed total" in out
    assert "3 executed" in out and "cache saved" in out
    code, out, _ = lpipe("run", demo)
    assert code == 0
    assert "↺ cached extract" in out and "3 cached" in out
    assert "saved" in out.splitlines()[-9] or "saved" in out  # the table has a saved column
    assert "▶" not in out  # nothing ran


def test_run_targets_force_task_and_skip(demo: Path) -> None:
    code, out, _ = lpipe("run", demo, "double")
    assert code == 0
    assert "executed extract" in out and "executed double" in out and "total" not in out
    code, out, _ = lpipe("run", demo, "--force-task", "extract", "total")
    assert code == 0
    assert "✓ executed extract" in out
    assert "↺ cached double" in out  # extract's result is identical: early cutoff
    assert "✓ executed total" in out  # never stored before
    code, out, _ = lpipe("run", demo, "--skip", "extract", "--force")
    assert code == 0
    assert "- skipped extract (skipped on request)" in out
    assert "✓ executed double" in out and "✓ executed total" in out


def test_dry_run_runs_nothing(demo: Path) -> None:
    code, out, _ = lpipe("run", demo, "--dry-run")
    assert code == 0
    assert "3 will run" in out and "no stored result" in out
    code, out, _ = lpipe("history", demo)
    assert code == 0 and "No runs of 'demo' yet." in out


def test_quiet_prints_only_the_summary_line(demo: Path) -> None:
    code, out, _ = lpipe("run", demo, "--quiet")
    assert code == 0
    assert mask(out) == "run of 'demo': 3 executed in #.##s (cache saved #.##s)"


WARNS = """
import little_pipelines as lp

pipeline = lp.Pipeline("warns")


@pipeline.task
def careful(this):
    this.logger.warning("3 rows had no date")
    this.logger.debug("looked at 10 rows")
    return 1
"""


def test_run_shows_task_warnings_and_verbose_adds_debug_without_repeating_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "warns.py", WARNS)
    code, out, _ = lpipe("run", path)
    assert code == 0 and "✓ executed careful" in out
    err = capsys.readouterr().err
    assert sum("3 rows had no date" in line for line in err.splitlines()) == 1, err
    assert "looked at 10 rows" not in err and "ran in" not in err
    code, out, _ = lpipe("run", path, "--verbose", "--force")
    assert code == 0 and out.count("✓ executed careful") == 1
    err = capsys.readouterr().err
    assert "looked at 10 rows" in err and "PERF" in err
    assert "ran in" not in err and "run of 'warns'" not in err  # the view and table say it
    code, out, _ = lpipe("run", path, "--quiet", "--force")
    assert "3 rows had no date" not in capsys.readouterr().err


def test_live_display_on_a_terminal(demo: Path) -> None:
    out = io.StringIO()
    console = make_console(out, width=100, force_terminal=True, color_system=None)
    assert main(["run", str(demo)], console=console) == 0
    assert "3 executed" in out.getvalue()


def test_failure_exits_1_with_log_tail_and_resume_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "failing.py", FAILING)
    code, out, _ = lpipe("run", path, width=200)
    assert code == 1
    assert "✗ bad failed: ValueError: bad value [x]" in out
    assert "tail of" in out and 'raise ValueError("bad value [x]")' in out  # from its log file
    assert "upstream 'bad' failed" in out
    assert f"resume with: lpipe run {path}" in out
    # Fix what made it fail (not its code, which would rerun the whole file) and resume.
    monkeypatch.setenv("LP_TEST_FIXED", "1")
    code, out, _ = lpipe("run", path)
    assert code == 0
    assert "↺ cached good" in out and "✓ executed bad" in out and "✓ executed after" in out


def test_resume_command_keeps_targets_skips_and_pipeline(tmp_path: Path) -> None:
    path = write(tmp_path, "failing.py", FAILING)
    code, out, _ = lpipe("run", path, "after", "--pipeline", "failing", "--force", width=200)
    assert code == 1
    assert f"resume with: lpipe run {path} after --pipeline failing" in out


# -- looking without running ------------------------------------------------------------------
def test_list_snapshot(demo: Path, tmp_path: Path) -> None:
    lpipe("run", demo, "double")
    code, out, _ = lpipe("list", demo)
    assert code == 0
    assert mask(out) == textwrap.dedent("""\
        demo: 3 tasks
        ┏━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┓
        ┃ # ┃ task    ┃ depends on      ┃ state      ┃
        ┡━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━┩
        │ 1 │ extract │ -               │ cached     │
        │ 2 │ double  │ extract         │ cached     │
        │ 3 │ total   │ extract, double │ not cached │
        └───┴─────────┴─────────────────┴────────────┘""")


def test_status_snapshot_says_why(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A frozen clock (the library's seam) makes the stored times part of the snapshot.
    frozen = datetime(2024, 5, 1, 12, 30).astimezone()
    monkeypatch.setattr(lp.expire, "_get_now", lambda: frozen)
    lpipe("run", demo, "extract")
    code, out, _ = lpipe("status", demo, width=80)
    assert code == 0
    assert mask(out) + "\n" == textwrap.dedent("""\
        demo: 2 will run, 1 reused
        ┏━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┓
        ┃ task    ┃ next run   ┃ why                           ┃ stored result expires ┃
        ┡━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━┩
        │ extract │ ↺ reused   │ unchanged since 2024-05-01    │ never                 │
        │         │            │ 12:30:00                      │                       │
        │ double  │ ▶ will run │ no stored result              │ -                     │
        │ total   │ ▶ will run │ no stored result              │ -                     │
        └─────────┴────────────┴───────────────────────────────┴───────────────────────┘
        never: kept until its code, inputs or upstream change
        """)
    code, out, _ = lpipe("status", demo, width=200)
    assert "│ extract │ ↺ reused   │ unchanged since 2024-05-01 12:30:00 │ never " in out
    assert out.count("never") == 2  # once in the row, once explained below
    demo.write_text(demo.read_text() + "\n# an edit\n")
    code, out, _ = lpipe("status", demo, "extract", width=300)
    assert code == 0
    assert "▶ will run │ code changed in demo.py " in out  # relative to the current folder
    assert "double" not in out


def test_status_of_named_tasks_and_waiting(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("1\n")
    path = write(tmp_path, "inputs.py", f'''
        import little_pipelines as lp
        pipeline = lp.Pipeline("inputs")

        @pipeline.task(input_files=[{str(data)!r}])
        def read():
            return open({str(data)!r}).read()

        @pipeline.task
        def use(read):
            return read * 2

        @pipeline.task
        def other():
            return 0
    ''')
    assert lpipe("run", path)[0] == 0
    data.write_text("2\n")
    code, out, _ = lpipe("status", path, "use", width=200)
    assert code == 0
    assert "input data.txt changed" in out  # relative to the current folder
    assert "… may run" in out and "waits on upstream 'read', which will run" in out
    assert "other" not in out


def test_tables_fit_80_columns_with_long_paths_and_names(tmp_path: Path) -> None:
    deep = tmp_path / "projects" / "newcomer" / "lp" / "experiments" / "2024" / "inputs"
    deep.mkdir(parents=True)
    data = deep / "measurements_of_the_day.csv"
    data.write_text("1\n")
    path = write(tmp_path, "a_pipeline_with_a_rather_long_name.py", f'''
        import little_pipelines as lp
        pipeline = lp.Pipeline("a_pipeline_with_a_rather_long_name_indeed")

        @pipeline.task(input_files=[{str(data)!r}])
        def read():
            return open({str(data)!r}).read()

        for i in range(4):
            pipeline.task(lambda read: read, name=f"use_{{i}}_with_a_long_task_name")
    ''')
    assert lpipe("run", path)[0] == 0
    data.write_text("2\n")
    for width in (80, 200):
        code, out, _ = lpipe("run", path, width=width)
        assert code == 0
        lines = out.splitlines()
        assert all(len(line) <= width for line in lines), out
        assert lines[-1].endswith(")") and "in " in lines[-1]  # the summary: one line
        at = next(i for i, line in enumerate(lines) if line.startswith("│ read"))
        row = lines[at]
        why = "".join(line.split("│")[-2].strip() for line in lines[at:at + 4])
        assert "measurements_of_the_day.csv" in why, out  # the file name, never cut
        assert str(tmp_path) not in out  # relative to the current folder
        if width == 200:
            assert "input projects/newcomer/lp/experiments/2024/inputs/measurements" in row
        else:
            assert "…" in why and "experiments/2024" not in why
        data.write_text(str(width))


def test_graph_tree_mermaid_and_dot_snapshots(demo: Path) -> None:
    lpipe("run", demo, "extract")
    code, out, _ = lpipe("graph", demo)
    assert code == 0
    assert mask(out) == textwrap.dedent("""\
        demo
        └── extract  cached
            ├── double  not cached
            │   └── total  not cached
            └── total ↑""")
    code, out, _ = lpipe("graph", demo, "--format", "mermaid")
    assert code == 0
    assert out == textwrap.dedent("""\
        flowchart LR
            t0["extract"]
            t1["double"]
            t2["total"]
            t0 --> t1
            t0 --> t2
            t1 --> t2
            classDef cached fill:#d7f2f4,stroke:#0b7285;
            class t0 cached;
            classDef not_cached fill:#fff3bf,stroke:#e67700;
            class t1,t2 not_cached;
        """)
    code, out, _ = lpipe("graph", demo, "--format", "dot", width=40)  # lines never wrap
    assert code == 0
    assert out == textwrap.dedent("""\
        digraph "demo" {
            rankdir=LR;
            node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];
            "extract" [fillcolor="#d7f2f4", color="#0b7285", tooltip="cached"];
            "double" [fillcolor="#fff3bf", color="#e67700", tooltip="not cached"];
            "total" [fillcolor="#fff3bf", color="#e67700", tooltip="not cached"];
            "extract" -> "double";
            "extract" -> "total";
            "double" -> "total";
        }
        """)


def test_graph_without_states_when_no_plan_can_be_made(tmp_path: Path) -> None:
    path = write(tmp_path, "noinput.py", '''
        import little_pipelines as lp
        pipeline = lp.Pipeline("noinput")

        @pipeline.task(input_files=["does-not-exist.csv"])
        def read():
            return 1
    ''')
    code, out, err = lpipe("graph", path, "--format", "mermaid")
    assert code == 0
    assert 't0["read"]' in out and "classDef" not in out
    assert "states not shown" in err and "does-not-exist.csv" in err


def test_show_summary_and_preview(demo: Path) -> None:
    lpipe("run", demo)
    code, out, _ = lpipe("show", demo, "double")
    assert code == 0
    assert mask(out) == textwrap.dedent("""\
        task         double
        type         builtins.list
        size         22 B (pickled)
        created      YYYY-MM-DD hh:mm:ss
        expires      never (until its code, inputs or upstream change)
        duration     #.##s
        ran because  no stored result

        [2, 4, 6]""")


def test_show_without_a_stored_result_exits_1(demo: Path) -> None:
    code, out, _ = lpipe("show", demo, "total")
    assert code == 1
    assert f"No stored result for total. Compute it with: lpipe run {demo} total" in out


def test_preview_of_a_dataframe_like_value_shows_its_first_rows() -> None:
    class Frame:
        shape = (100, 2)

        def head(self, n: int) -> Frame:
            self.rows = n
            return self

        def to_string(self) -> str:
            return "\n".join(f"{i}  row{i}" for i in range(self.rows))

    console = make_console(io.StringIO(), width=80, color_system=None)
    console.print(preview(Frame()))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "0  row0" in text and "4  row4" in text and "row5" not in text
    assert "[100 × 2; first 5 rows]" in text
    console = make_console(io.StringIO(), width=80, color_system=None)
    console.print(preview("x" * 5000))
    assert "(5002 characters)" in console.file.getvalue()  # type: ignore[attr-defined]


def test_forget_named_all_and_confirmation(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lpipe("run", demo)
    code, out, _ = lpipe("forget", demo, "total")
    assert code == 0 and "Forgot 1 stored result: total." in out
    code, out, _ = lpipe("forget", demo, "total")
    assert code == 0 and "Forgot 0 stored results." in out and "Had none: total" in out
    # On a terminal it asks first.
    monkeypatch.setattr(cli, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, _ = lpipe("forget", demo, "--all")
    assert code == 1 and "Forget all stored results of 'demo'? [y/N]" in out
    assert "Nothing forgotten." in out
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, _ = lpipe("forget", demo, "--all")
    assert code == 0 and "Forgot 2 stored results: extract, double." in out
    lpipe("run", demo)
    code, out, _ = lpipe("forget", demo, "--all", "--yes")  # --yes: no question
    assert code == 0 and "Forgot 3" in out and "[y/N]" not in out


def test_history_lists_runs(demo: Path) -> None:
    lpipe("run", demo)
    lpipe("run", demo)
    code, out, _ = lpipe("history", demo, "--last", "1")
    assert code == 0
    assert mask(out) == textwrap.dedent("""\
        demo: last 1 run
        ┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━┳━━━━━━━━┳━━━━━━━━━┳━━━━━━━━┳━━━━━━━┳━━━━━━━┓
        ┃ started             ┃ ran ┃ reused ┃ skipped ┃ failed ┃  time ┃ saved ┃
        ┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━╇━━━━━━━━╇━━━━━━━━━╇━━━━━━━━╇━━━━━━━╇━━━━━━━┩
        │ YYYY-MM-DD hh:mm:ss │   0 │      3 │       0 │      0 │ #.##s │ #.##s │
        └─────────────────────┴─────┴────────┴─────────┴────────┴───────┴───────┘""")
    code, out, _ = lpipe("history", demo)
    assert "last 2 runs" in out


# -- loading ----------------------------------------------------------------------------------
def test_module_attribute_and_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "demo_mod.py", DEMO + "\n\ndef make():\n    return pipeline\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert lpipe("run", "demo_mod:pipeline", "-q")[0] == 0
    code, out, _ = lpipe("list", "demo_mod:make")
    assert code == 0 and "cached" in out
    code, out, _ = lpipe("list", "demo_mod")
    assert code == 0 and "demo: 3 tasks" in out


def test_tasks_without_a_pipeline_are_gathered(tmp_path: Path) -> None:
    path = write(tmp_path, "classic_tasks.py", '''
        import little_pipelines as lp

        one = lp.Task("One", dependencies=["Zero"])

        @one.process
        def run(this):
            return this.pipeline.get_result("Zero") + ["more"]

        zero = lp.Task("Zero")

        @zero.process
        def run(this):
            return ["some"]
    ''')
    code, out, _ = lpipe("run", path)
    assert code == 0 and "run of 'classic_tasks': 2 executed" in out
    code, out, _ = lpipe("show", path, "One")
    assert "['some', 'more']" in out


def test_pipeline_option_picks_among_several(tmp_path: Path) -> None:
    path = write(tmp_path, "two.py", '''
        import little_pipelines as lp
        a = lp.Pipeline("alpha")
        b = lp.Pipeline("beta")

        @a.task
        def one():
            return 1

        @b.task
        def two():
            return 2
    ''')
    code, out, _ = lpipe("list", path, "--pipeline", "beta")
    assert code == 0 and "beta: 1 task" in out
    code, out, _ = lpipe("list", path, "--pipeline", "a")  # the variable's name works too
    assert code == 0 and "alpha: 1 task" in out


# -- every user error: exit 2, one message, no traceback of ours ------------------------------
USER_ERRORS = {
    "missing file": (["run", "{tmp}/missing.py"], "No such file: '{tmp}/missing.py'"),
    "a folder": (["run", "{tmp}"], "(it is a folder)"),
    "no pipeline": (["run", "{tmp}/empty.py"], "defines no pipeline and no tasks"),
    "several pipelines": (["list", "{tmp}/two.py"],
                          "defines 2 pipelines ('alpha' as a, 'beta' as b); pick one with "
                          "--pipeline NAME"),
    "unknown pipeline": (["list", "{tmp}/two.py", "--pipeline", "alpah"],
                         "defines no pipeline named 'alpah'. Did you mean 'alpha'?"),
    "unknown task": (["run", "{tmp}/demo.py", "totl"],
                     "No task named 'totl' in pipeline 'demo'. Did you mean 'total'?"),
    "unknown skip": (["run", "{tmp}/demo.py", "--skip", "dubble"], "Did you mean 'double'?"),
    "unknown show": (["show", "{tmp}/demo.py", "extrct"], "Did you mean 'extract'?"),
    "unknown forget": (["forget", "{tmp}/demo.py", "x"], "No task named 'x'"),
    "forget nothing": (["forget", "{tmp}/demo.py"], "forget needs task names, or --all"),
    "no module": (["list", "no_such_module_xyz:pipeline"], "No module named "
                  "'no_such_module_xyz'"),
    "no attribute": (["list", "{tmp_mod}:pipelin"], "has no attribute 'pipelin'. Did you mean "
                     "'pipeline'?"),
    "not a pipeline": (["list", "{tmp_mod}:DEMO_VALUE"], "not a Pipeline"),
    "bad spec": (["list", "not a spec"], "is neither a .py file nor module:attribute"),
    "invalid": (["run", "{tmp}/cycle.py"], "Cycle: 'a' -> 'b' -> 'a'"),
    "missing input": (["run", "{tmp}/noinput.py"], "does-not-exist.csv"),
    "exits at import": (["run", "{tmp}/exits.py"], "called sys.exit(3) while being imported"),
}
ARGPARSE_ERRORS = {
    "invalid option": (["run", "{tmp}/demo.py", "--bogus"], "unrecognized arguments: --bogus"),
    "invalid command": (["runn", "{tmp}/demo.py"], "invalid choice: 'runn'"),
    "bad format": (["graph", "{tmp}/demo.py", "--format", "svg"], "invalid choice: 'svg'"),
    "bad --last": (["history", "{tmp}/demo.py", "--last", "0"], "expected a whole number >= 1"),
    "no pipeline given": (["list"], "the following arguments are required: PIPELINE"),
    "no command": ([], "the following arguments are required: COMMAND"),
    "quiet and verbose": (["run", "{tmp}/demo.py", "-q", "-v"], "not allowed with argument"),
}


@pytest.fixture
def error_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    write(tmp_path, "demo.py", DEMO)
    write(tmp_path, "empty.py", "x = 1\n")
    write(tmp_path, "two.py", "import little_pipelines as lp\na = lp.Pipeline('alpha')\n"
                              "b = lp.Pipeline('beta')\n")
    write(tmp_path, "cycle.py", '''
        import little_pipelines as lp
        pipeline = lp.Pipeline("cycle")

        @pipeline.task(dependencies=["b"])
        def a():
            return 1

        @pipeline.task(dependencies=["a"])
        def b():
            return 2
    ''')
    write(tmp_path, "noinput.py", '''
        import little_pipelines as lp
        pipeline = lp.Pipeline("noinput")

        @pipeline.task(input_files=["does-not-exist.csv"])
        def read():
            return 1
    ''')
    write(tmp_path, "exits.py", "import sys\nsys.exit(3)\n")
    write(tmp_path, "errmod_demo.py", DEMO + "\nDEMO_VALUE = 42\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return {"tmp": str(tmp_path), "tmp_mod": "errmod_demo"}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_errors_exit_2_with_one_clear_message(case: str, error_files: dict[str, str]) -> None:
    args, expected = USER_ERRORS[case]
    code, _, err = lpipe(*[a.format(**error_files) for a in args], width=300)
    assert code == 2
    assert expected.format(**error_files) in err
    assert err.count("error: ") == 1 and "Traceback" not in err


@pytest.mark.parametrize("case", list(ARGPARSE_ERRORS))
def test_usage_errors_exit_2(case: str, error_files: dict[str, str],
                             capsys: pytest.CaptureFixture[str]) -> None:
    args, expected = ARGPARSE_ERRORS[case]
    code, _, _ = lpipe(*[a.format(**error_files) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "usage: lpipe" in err and "Traceback" not in err


def test_a_file_that_fails_to_import_shows_its_own_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", '''
        import little_pipelines as lp

        def helper():
            raise RuntimeError("boom at import")

        helper()
    ''')
    code, _, err = lpipe("run", path)
    assert code == 2
    assert err.startswith("Traceback (most recent call last):")
    assert f'File "{path}", line 7, in <module>' in err
    assert f'File "{path}", line 5, in helper' in err
    assert "little_pipelines" not in err.split("RuntimeError: boom at import")[0].replace(
        "import little_pipelines as lp", "")  # none of our frames
    assert f"error: {path} failed to import: RuntimeError: boom at import" in err


def test_a_syntax_error_shows_where(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.py", "x = (\n")
    code, _, err = lpipe("run", path, width=200)
    assert code == 2
    assert f'File "{path}", line 1' in err and "SyntaxError" in err


# -- as a real program -----------------------------------------------------------------------
def program(*args: str | Path, cwd: Path | None = None, exe: list[str] | None = None,
            home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(home), "COLUMNS": "120"}
    command = exe or [sys.executable, "-m", "little_pipelines"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


def test_python_m_runs_the_example_and_shares_its_cache(home: Path) -> None:
    script = program(exe=[sys.executable, str(ROOT / "examples" / "quickstart.py")], home=home)
    assert script.returncode == 0, script.stderr
    proc = program("run", "examples/quickstart.py", cwd=ROOT, home=home)
    assert proc.returncode == 0, proc.stderr
    assert "run of 'quickstart': 4 cached" in proc.stdout  # the script's results are reused
    assert "↺ cached rows" in proc.stdout  # plain lines: stdout is not a terminal
    assert proc.stderr == ""  # the library's console is quiet


@pytest.mark.skipif(not LPIPE.exists(), reason="the lpipe script is not installed")
def test_the_lpipe_script_exit_codes(tmp_path: Path, home: Path) -> None:
    failing = write(tmp_path, "failing.py", FAILING)
    proc = program("run", failing, exe=[str(LPIPE)], home=home)
    assert proc.returncode == 1
    assert "✗ bad failed: ValueError: bad value [x]" in proc.stdout
    proc = program("run", tmp_path / "missing.py", exe=[str(LPIPE)], home=home)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: No such file" in proc.stderr
    proc = program("--help", exe=[str(LPIPE)], home=home)
    assert proc.returncode == 0 and "run" in proc.stdout and "forget" in proc.stdout
    proc = program("--version", exe=[str(LPIPE)], home=home)
    assert proc.returncode == 0 and proc.stdout.startswith("lpipe ")


def test_help_and_import_stay_light(home: Path) -> None:
    check = ("import sys, little_pipelines; light = 'rich' not in sys.modules\n"
             "from little_pipelines.cli import main\n"
             "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(light, 'rich' not in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.split()[-2:] == ["True", "True"], proc.stderr


# -- the live view ----------------------------------------------------------------------------
def test_run_view_live_table_shows_states_and_fits_the_screen() -> None:
    console = make_console(io.StringIO(), width=100, height=12, color_system=None,
                           force_terminal=True)
    names = [f"t{i}" for i in range(30)]
    view = RunView(console, names, live=False)
    view.console = make_console(io.StringIO(), width=100, height=12, color_system=None)
    for i in range(10):
        view("start", names[i], None)
        view("finish", names[i], TaskOutcome(names[i], "executed", (Reason("no_result"),), 0.5))
    view("finish", names[10], TaskOutcome(names[10], "cached", (), 0.0, stored_duration=2))
    view("start", names[11], None)
    out = make_console(io.StringIO(), width=100, height=12, color_system=None)
    out.print(view)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "▶ running" in text and "t11" in text
    assert "↺ reused" in text and "… waiting" in text and "✓ done" in text
    assert "11/30 tasks" in text and "more not shown" in text
    assert len(text.splitlines()) <= 12


def test_show_of_an_expired_value_keeps_its_record(tmp_path: Path) -> None:
    path = write(tmp_path, "oncomplete.py", '''
        import little_pipelines as lp
        pipeline = lp.Pipeline("oncomplete")

        @pipeline.task(expire_results=lp.expire.on_complete())
        def step():
            return 1
    ''')
    assert lpipe("run", path)[0] == 0
    code, out, _ = lpipe("show", path, "step", width=200)
    assert code == 0
    assert "expires      when the run that stored it ends" in out
    assert "(its value has expired; the record is kept to say why it will rerun)" in out


def test_ctrl_c_stops_a_run_keeping_what_finished(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "slow.py", '''
        import time
        import little_pipelines as lp
        pipeline = lp.Pipeline("slow")

        @pipeline.task
        def first():
            return 1

        @pipeline.task
        def second(first):
            time.sleep(30)
            return 2
    ''')
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "little_pipelines", "run", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_sigint)
    try:
        assert proc.stdout is not None
        seen = ""
        while "▶ second running" not in seen:
            line = proc.stdout.readline()
            assert line, f"the run ended early: {seen}{proc.stderr.read() if proc.stderr else ''}"
            seen += line
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted: 1 task(s) finished and are stored: first." in out
    assert f"Resume with: lpipe run {path}" in out
    _, out, _ = lpipe("list", path)
    assert "│ 1 │ first  │ -          │ cached" in out


def _default_sigint() -> None:
    # A background job inherits SIGINT ignored, and Python then keeps ignoring it:
    # give the child the default, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# -- precision and executors (issues 6 and 7) --------------------------------------------------
def test_status_explain_shows_the_diff_and_accept_marks_it_current(demo: Path) -> None:
    assert lpipe("run", demo)[0] == 0
    demo.write_text(demo.read_text().replace("x * 2", "x * 3"))
    code, out, _ = lpipe("status", demo, "--explain", "double")
    assert code == 0
    assert "code changed in" in out and "-    return [x * 2 for x in extract]" in out
    assert "+    return [x * 3 for x in extract]" in out
    code, out, _ = lpipe("accept", demo, "extract", "double", "total")
    assert code == 0 and "accepted: extract, double, total" in out
    code, out, _ = lpipe("run", demo)
    assert code == 0 and "3 cached" in out
    code, _, err = lpipe("accept", demo, "nope")
    assert code == 2 and "No task named 'nope'" in err


def test_run_on_threads_and_a_bad_executor(demo: Path) -> None:
    code, out, _ = lpipe("run", demo, "--executor", "threads", "--workers", "2")
    assert code == 0 and "3 executed" in out
    code, _, err = lpipe("run", demo, "--executor", "thread", "--force")
    assert code == 2 and "Did you mean 'threads'?" in err


def test_a_file_inside_a_package_is_imported_as_its_module(tmp_path: Path, home: Path) -> None:
    pkg = tmp_path / "mypipe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("def rows():\n    return [1, 2, 3]\n")
    (pkg / "tasks.py").write_text(textwrap.dedent('''
        import little_pipelines as lp
        from .helpers import rows

        pipeline = lp.Pipeline("packaged")

        @pipeline.task
        def numbers():
            return rows()

        @pipeline.task
        def total(numbers):
            return sum(numbers)
    '''))
    (tmp_path / "run.py").write_text(
        "from mypipe.tasks import pipeline\nprint(pipeline.execute().summary())\n")
    script = program(exe=[sys.executable, "run.py"], cwd=tmp_path, home=home)
    assert script.returncode == 0 and "2 executed" in script.stdout, script.stderr
    for spec in ("mypipe/tasks.py", "mypipe.tasks:pipeline"):  # one cache for all three
        proc = program("run", spec, "-q", cwd=tmp_path, home=home)
        assert proc.returncode == 0, proc.stderr
        assert "2 cached" in proc.stdout, (spec, proc.stdout)


def test_an_import_error_suggests_the_module_attribute_form(tmp_path: Path) -> None:
    path = write(tmp_path, "loose.py", "from .sibling import x\n")
    code, _, err = lpipe("run", path, width=200)
    assert code == 2 and "give it as module:attribute" in err


def test_show_fits_a_wide_dataframe_into_the_terminal(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    path = write(tmp_path, "wide.py", '''
        import little_pipelines as lp
        import pandas as pd
        pipeline = lp.Pipeline("wide")

        @pipeline.task
        def table():
            return pd.DataFrame({f"column_{i:02d}": [i * 1000 + r for r in range(8)]
                                 for i in range(30)})
    ''')
    assert lpipe("run", path, "-q")[0] == 0
    for width in (80, 200):
        code, out, _ = lpipe("show", path, "table", width=width)
        assert code == 0
        lines = out.splitlines()
        assert all(len(line) <= width for line in lines), out
        rows = [line for line in lines if line.split()[:1] in (["0"], ["1"], ["2"], ["3"], ["4"])
                and "column" not in line]
        assert len(rows) == 5, out  # each row on one line, never wrapped
        assert "column_00" in out and "more columns" in out
        assert "[8 × 30; first 5 rows]" in out
