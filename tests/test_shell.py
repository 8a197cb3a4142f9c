"""`lp.Shell`: commands fed on stdin, and a real terminal under tmux."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import little_pipelines as lp
from little_pipelines import log
from little_pipelines.loading import load_pipeline
from little_pipelines.render import make_console

SLOW = '''
"""A pipeline whose second task takes its time."""
import time
import little_pipelines as lp

pipeline = lp.Pipeline("slow")


@pipeline.task
def first():
    """Quick."""
    return "first-result"


@pipeline.task
def second(this, first):
    this.logger.info("second is sleeping")
    time.sleep(30)
    return first + "!"
'''

DEMO = '''
import os
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
    if os.environ.get("LP_TEST_BREAK_TOTAL"):
        raise ValueError("total is broken")
    if os.environ.get("LP_TEST_CTRL_C"):
        raise KeyboardInterrupt  # what Ctrl-C does in the middle of a task
    return sum(extract) + sum(double)
'''


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "home"
    monkeypatch.setenv("LITTLE_PIPELINES_HOME", str(folder))
    lp.set_log_level("ERROR")  # the shell prints its own tables; keep test output short
    level = log._state["level"]  # `lpipe run` and `log` set the console's level: restore it
    yield folder
    lp.set_log_level(level)


@pytest.fixture
def pipeline(tmp_path: Path) -> lp.Pipeline:
    path = tmp_path / "demo.py"
    path.write_text(DEMO)
    return load_pipeline(str(path))


def session(shell_or_pipeline: lp.Shell | lp.Pipeline, commands: str,
            shell_class: type[lp.Shell] = lp.Shell) -> str:
    """Feed commands to a shell on stdin; return everything it printed (plain text)."""
    out = io.StringIO()
    console = make_console(out, width=120, color_system=None, force_terminal=False)
    if isinstance(shell_or_pipeline, lp.Shell):
        shell = shell_or_pipeline
        shell.stdin, shell.stdout, shell.console = io.StringIO(commands), out, console
        shell.use_rawinput = False
    else:
        shell = shell_class(shell_or_pipeline, console=console, stdin=io.StringIO(commands),
                            stdout=out)
    shell.cmdloop()
    return out.getvalue()


def test_a_session_of_commands(pipeline: lp.Pipeline) -> None:
    text = session(pipeline, textwrap.dedent("""\
        list_tasks
        execute
        list-tasks
        status
        graph
        peek double
        info extract
        list_cache
        history
        validate
        exit
        """))
    assert "Little Pipelines Shell" in text and "Loaded pipeline: demo (3 tasks)" in text
    first, rest = text.split("run of 'demo'", 1)
    assert "- extract (not cached)  no stored result" in first
    assert "Total: 3" in first
    assert "3 executed" in rest.splitlines()[0]
    assert "- extract (cached)" in rest and "- total (cached)" in rest
    assert "0 will run, 3 reused" in rest
    assert "└── extract  cached" in rest
    assert "[2, 4, 6]" in rest
    assert "Numbers to work on." in rest and "never()" in rest
    assert "3 stored results" in rest
    assert "last 1 run" in rest
    assert "✓ 'demo' is valid (3 tasks)." in rest
    assert text.rstrip().endswith("Bye.")


def test_execute_options(pipeline: lp.Pipeline) -> None:
    text = session(pipeline, textwrap.dedent("""\
        execute double
        execute double --force
        execute --skip=extract --force
        executeone total --no-deps
        execute --skip extract
        """))
    # Each run prints its table, then its summary line: "run of 'demo': ..."
    chunks = text.split("run of 'demo'")
    assert len(chunks) == 6
    summaries = [c.split("\n", 1)[0] for c in chunks[1:]]
    tables = [chunks[0], *(c.split("\n", 1)[1] for c in chunks[1:-1])]
    assert "2 executed" in summaries[0] and "total" not in tables[0]
    assert "1 cached, 1 executed" in summaries[1] and "forced" in tables[1]
    assert "1 skipped, 2 executed" in summaries[2]
    assert "1 executed" in summaries[3] and "extract" not in tables[3]
    assert "1 skipped, 2 cached" in summaries[4]


def test_errors_in_commands_never_end_the_loop(pipeline: lp.Pipeline,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LP_TEST_BREAK_TOTAL", "1")
    text = session(pipeline, textwrap.dedent("""\
        peek extrct
        bogus
        lsit_tasks
        log NOPE
        execute --frob
        execute nosuchtask
        peek
        clear_cache
        graph svg
        execute
        peek double
        """))
    assert "error: No task named 'extrct' in pipeline 'demo'. Did you mean 'extract'?" in text
    assert "error: Unknown command 'bogus'. Type help for the commands." in text
    assert "Did you mean 'list_tasks' or 'tasks'?" in text
    assert "error: Unknown log level 'NOPE'" in text
    assert "error: execute: unrecognized arguments: --frob (see: help execute)" in text
    assert "No task named 'nosuchtask'" in text
    assert "error: peek takes one task name, e.g. peek extract." in text
    assert "error: clear_cache needs a task name, or . for every stored result." in text
    assert "error: graph takes tree, mermaid, dot; got 'svg'." in text
    assert "2 executed, 1 failed" in text  # a task that raises is shown ...
    assert "✗ total failed: ValueError: total is broken" in text and "tail of" in text
    assert "[2, 4, 6]" in text  # ... and the loop goes on
    assert text.rstrip().endswith("Bye.")  # ended by end of input, not by an error


def test_ctrl_c_during_a_run_returns_to_the_prompt_keeping_finished_tasks(
    pipeline: lp.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LP_TEST_CTRL_C", "1")
    text = session(pipeline, "execute\npeek double\nlist_tasks\n")
    assert "Interrupted. 2 finished task(s) are stored: extract, double; execute resumes" in text
    assert "[2, 4, 6]" in text
    assert "- double (cached)" in text and "- total (not cached)" in text


def test_clear_cache_and_list_cache(pipeline: lp.Pipeline) -> None:
    pipeline.execute()
    text = session(pipeline, "clear_cache total\nlist_cache\nclear_cache .\nlist_cache --all\n")
    assert "Cleared 1 stored result: total." in text
    assert "2 stored results" in text
    assert "Cleared 2 stored results" in text and "0 stored results" in text


def test_log_and_quiet(pipeline: lp.Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    text = session(pipeline, "log info\nexecute extract\nquiet\nexecute double\n")
    assert "Log level set to INFO." in text and "Log level set to ERROR." in text
    err = capsys.readouterr().err
    assert "extract | ✓ ran in" in err and "double" not in err


def test_help(pipeline: lp.Pipeline) -> None:
    text = session(pipeline, "help\nhelp execute\nhelp clear-cache\nhelp nothing\n")
    assert "list_tasks" in text and "executeone" in text and "EOF" not in text
    assert "execute NAME --force       rerun NAME even if cached" in text
    assert "Forget stored results" in text
    assert "Unknown command 'nothing'" in text


class CustomShell(lp.Shell):
    prompt = "custom> "
    title = "Custom Title"
    header = "A header line"

    def startup(self) -> None:
        self.out.print("custom startup")

    def shutdown(self) -> None:
        self.out.print("custom shutdown")

    def do_hello_world(self, arg: str) -> None:
        """Say hello."""
        self.out.print(f"hello {arg}".strip())

    def do_crash(self, arg: str) -> None:
        """A command with a bug."""
        raise RuntimeError("a bug in a command")


def test_a_subclass_adds_commands_and_replaces_banner_and_goodbye(
    pipeline: lp.Pipeline,
) -> None:
    shell = CustomShell().set_pipeline(pipeline)
    assert isinstance(shell, CustomShell) and shell.pipeline is pipeline
    text = session(shell, "hello-world you\ncrash\nhello_world\nq\n")
    assert text.startswith("custom startup\ncustom> hello you\ncustom> ")
    assert "Traceback" in text and "error: RuntimeError: a bug in a command" in text
    assert "custom> hello\n" in text
    assert text.rstrip().endswith("custom shutdown")
    assert "Custom Title" not in text  # startup() replaced the banner


def test_a_failing_startup_falls_back_to_the_banner(pipeline: lp.Pipeline) -> None:
    class Broken(CustomShell):
        def startup(self) -> None:
            raise OSError("no banner today")

    text = session(Broken(pipeline), "exit\n")
    assert "Custom Title" in text and "A header line" in text
    assert "An error in startup(): no banner today" in text


def test_without_a_pipeline_commands_say_so() -> None:
    text = session(lp.Shell(), "list_tasks\nexit\n")
    assert "No pipeline: call shell.set_pipeline(pipeline) first." in text


def test_completion_of_commands_and_task_names(pipeline: lp.Pipeline) -> None:
    shell = lp.Shell(pipeline)
    assert shell.completenames("list") == ["list_cache", "list_tasks"]
    assert shell.completenames("list-t") == ["list-tasks"]
    assert shell.complete_help("exec") == ["execute", "executeone"]
    assert shell.completedefault("d", "peek d", 5, 6) == ["double"]
    assert shell.completedefault("--s", "execute --s", 8, 11) == ["--skip="]
    assert shell.completedefault("--skip=e", "execute --skip=e", 8, 16) == ["--skip=extract"]
    line = "execute ex"
    assert shell.completedefault("ex", line, 8, len(line)) == ["extract"]


def test_lpipe_shell_reads_commands_from_a_pipe(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "demo.py"
    path.write_text(DEMO)
    proc = subprocess.run(
        [sys.executable, "-m", "little_pipelines", "shell", str(path)], input="execute\nq\n",
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "LITTLE_PIPELINES_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 executed" in proc.stdout and "Bye." in proc.stdout


# -- a real terminal ---------------------------------------------------------------------------
@pytest.fixture
def terminal(tmp_path: Path, home: Path) -> Iterator[Callable[..., str]]:
    """A shell in a tmux pane; yields send(keys..., wait_for=text) -> the screen."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    socket, name = f"lp-test-{uuid.uuid4().hex[:8]}", "shell"
    tmux = ["tmux", "-L", socket]
    command = shlex.join(["env", f"LITTLE_PIPELINES_HOME={home}", "TERM=xterm-256color",
                          sys.executable, "-m", "little_pipelines", "shell", str(path)])
    # Keep the pane after the shell exits, so its last words and status can be read.
    command += "; echo exited=$?; sleep 60"
    subprocess.run([*tmux, "new-session", "-d", "-s", name, "-x", "200", "-y", "50", command],
                   check=True, timeout=10)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", name, "-S", "-100"],
                              capture_output=True, text=True, timeout=10).stdout

    def send(*keys: str, wait_for: str = "", count: int = 1, timeout: float = 20.0) -> str:
        if keys:
            subprocess.run([*tmux, "send-keys", "-t", name, *keys], check=True, timeout=10)
        deadline = time.monotonic() + timeout
        while True:
            text = screen()
            if text.count(wait_for) >= count:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{wait_for!r} (x{count}) did not appear:\n{text}")
            time.sleep(0.05)

    try:
        send(wait_for="Type help for the commands")
        yield send
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)


def test_in_a_terminal_ctrl_c_completion_and_history(terminal: Callable[..., str]) -> None:
    send = terminal
    send("execute", "Enter", wait_for="second is sleeping")  # first has finished
    started = time.monotonic()
    text = send("C-c", wait_for="execute resumes the run")
    assert time.monotonic() - started < 10  # did not wait for the 30 s sleep
    assert "Interrupted. 1 finished task(s) are stored: first" in text
    send("peek fi", "Tab", wait_for="peek first")  # a task name completes
    text = send("Enter", wait_for="'first-result'")
    send("Up", wait_for="> peek first", count=2)  # history recalls the last command
    send("Enter", wait_for="'first-result'", count=2)
    send("list-ta", "Tab", wait_for="list-tasks")  # a command name, dashes and all
    text = send("Enter", wait_for="Total: 2")
    assert "- first (cached)" in text and "- second (not cached)" in text
    text = send("exit", "Enter", wait_for="exited=")
    assert "Bye." in text and "exited=0" in text


# -- issue 15: a console of the user's, bad arguments, info ----------------------------------
def test_every_command_works_on_a_plain_console_the_user_passed(pipeline: lp.Pipeline) -> None:
    from rich.console import Console

    out = io.StringIO()
    plain = Console(file=out, width=120, color_system=None)  # no theme of ours
    commands = ("execute\nlist_tasks\nstatus\ngraph\npeek double\ninfo extract\nlist_cache\n"
                "history\nvalidate\nhelp\nexecute --force\nexit\n")
    lp.Shell(pipeline, console=plain, stdin=io.StringIO(commands), stdout=out).cmdloop()
    text = out.getvalue()
    assert "MissingStyle" not in text and "error:" not in text, text
    assert "Numbers to work on." in text and "3 stored results" in text


def test_bad_arguments_print_one_line(pipeline: lp.Pipeline) -> None:
    text = session(pipeline, "history --last abc\nexecute --force=yes\nexit\n")
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "error:" in line]
    assert len(errors) == 2, text
    assert "--last" in errors[0] and "'abc'" in errors[0]
    assert "--force" in errors[1] and "'yes'" in errors[1]


def test_info_shows_a_function_tasks_docstring_and_a_classic_tasks_fallback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "undocumented.py"
    path.write_text(textwrap.dedent('''
        import little_pipelines as lp

        pipeline = lp.Pipeline("docs")

        @pipeline.task
        def fn_task():
            """The function's own words."""
            return 1

        classic = lp.Task("Classic")

        @classic.process
        def run(this):
            """What run does."""
            return this.helper()

        @classic.process
        def helper(this):
            """What the helper does."""
            return 2

        pipeline.add(classic)
    '''))
    p = load_pipeline(str(path))
    assert p.get_task("fn_task").info == "The function's own words."
    assert p.get_task("Classic").info == "What run does.\n\nWhat the helper does."
    text = session(p, "info fn_task\ninfo Classic\nexit\n")
    assert text.count("The function's own words.") == 1
    assert "What run does." in text and "What the helper does." in text
