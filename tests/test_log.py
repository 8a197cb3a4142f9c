"""Logging: console lines once, levels, formats, host handlers, per-task files, PERF."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from loguru import logger

import little_pipelines as lp
from little_pipelines import log as lplog

PIPELINE = """
import little_pipelines as lp
p = lp.Pipeline("logdemo")

@p.task
def alpha():
    return 1

@p.task
def beta(this, alpha):
    this.logger.info("weird text <lambda> {x} {{}} </red>")
    return alpha + 1
"""


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}
    env.pop("LOG_DIR", None)
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )


def test_each_console_line_appears_once_in_a_script_without_logging(tmp_path: Path) -> None:
    proc = run_script(tmp_path, PIPELINE + "p.execute()\np.execute()\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    ran = [line for line in lines if "alpha" in line and "ran in" in line]
    reused = [line for line in lines if "alpha" in line and "reused" in line]
    assert len(ran) == 1 and len(reused) == 1, proc.stderr
    assert sum("run of 'logdemo'" in line for line in lines) == 2
    # messages with markup-like and format-like text are printed verbatim
    assert sum("weird text <lambda> {x} {{}} </red>" in line for line in lines) == 1


def test_set_log_level_error_silences_task_lines(tmp_path: Path) -> None:
    proc = run_script(tmp_path, PIPELINE + "lp.set_log_level('ERROR')\np.execute()\n")
    assert proc.returncode == 0, proc.stderr
    assert "alpha" not in proc.stderr and "logdemo" not in proc.stderr


def test_failures_still_show_at_error_level_as_one_line(tmp_path: Path) -> None:
    body = PIPELINE + textwrap.dedent("""
        @p.task
        def broken(beta):
            raise ValueError("bad <value> {0}")
        lp.set_log_level("ERROR")
        p.execute()
    """)
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    failed = [line for line in proc.stderr.splitlines() if "broken" in line]
    assert len(failed) == 1 and "ValueError: bad <value> {0}" in failed[0]
    assert "Traceback" not in proc.stderr  # the traceback goes to the task's log file
    log_file = tmp_path / "home" / "logdemo" / "logs" / "broken.log"
    text = log_file.read_text()
    assert "Traceback (most recent call last)" in text and "bad <value> {0}" in text


def test_a_host_handler_is_kept_and_receives_the_library_records(tmp_path: Path) -> None:
    body = textwrap.dedent("""
        import sys
        from loguru import logger
        seen = []
        logger.remove()
        hid = logger.add(lambda m: seen.append(m.record), level="DEBUG")
        """) + PIPELINE + textwrap.dedent("""
        p.execute()
        lp.set_log_level("WARNING")
        p.execute()
        scopes = {r["extra"].get("lp_scope") for r in seen}
        assert {"alpha", "beta", "logdemo"} <= scopes, scopes
        assert any(r["level"].name == "PERF" for r in seen)
        logger.remove(hid)  # raises if the library had removed it
        print("OK", len(seen))
    """)
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK")


def test_no_console_is_added_when_the_host_configured_logging(tmp_path: Path) -> None:
    body = textwrap.dedent("""
        import sys
        from loguru import logger
        logger.remove()
        logger.add(sys.stderr, format="HOST {message}")
        """) + PIPELINE + "p.execute()\n"
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "alpha" in line]
    assert lines and all(line.startswith("HOST ") for line in lines)


def test_the_hosts_own_records_still_reach_the_console(tmp_path: Path) -> None:
    body = "from loguru import logger\n" + PIPELINE + "p.execute()\nlogger.debug('host says hi')\n"
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert sum("host says hi" in line for line in proc.stderr.splitlines()) == 1


def test_set_log_format_changes_the_console_line(tmp_path: Path) -> None:
    proc = run_script(tmp_path, PIPELINE + "lp.set_log_format('LP {extra[lp_scope]}: {message}')\n"
                      "p.execute()\n")
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("LP alpha: ✓ ran in") for line in proc.stderr.splitlines())


def test_bad_level_and_format_are_clear_errors_that_leave_logging_working() -> None:
    with pytest.raises(ValueError, match="Unknown log level 'LOUD'"):
        lp.set_log_level("LOUD")
    with pytest.raises(ValueError, match="Log level must be"):
        lp.set_log_level(-3)
    with pytest.raises(ValueError, match="Invalid log format"):
        lp.set_log_format("{time:HH} <red>unclosed")
    seen: list[str] = []
    hid = logger.add(seen.append, format="{message}")
    try:
        logger.info("still logging")
    finally:
        logger.remove(hid)
    assert seen == ["still logging\n"]


def test_task_files_hold_task_records_and_the_run_log_holds_timings(tmp_path: Path) -> None:
    p = lp.Pipeline("files", cache_dir=tmp_path / "store")

    @p.task
    def one(this):
        this.logger.debug("details for the file")
        return 1

    p.execute()
    lplog.close_task_files()
    text = (tmp_path / "store" / "logs" / "one.log").read_text()
    assert "details for the file" in text
    assert "took" not in text and "✓ ran in" not in text
    run_log = (tmp_path / "store" / "logs" / "_pipeline.log").read_text()
    assert "PERF     | one | function 'one' took" in run_log
    assert "INFO     | one | ✓ ran in" in run_log
    assert "INFO     | files | run of 'files': 1 executed" in run_log

    @p.task
    def silent():
        return 2

    p.execute()
    lplog.close_task_files()
    assert not (tmp_path / "store" / "logs" / "silent.log").exists()  # made when it logs


def test_log_dir_and_LOG_DIR_choose_the_log_folder(tmp_path: Path, monkeypatch) -> None:
    p = lp.Pipeline("explicit", cache_dir=tmp_path / "s1", log_dir=tmp_path / "mylogs")
    assert p.log_dir == tmp_path / "mylogs"
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "envlogs"))
    q = lp.Pipeline("fromenv", cache_dir=tmp_path / "s2")
    assert q.log_dir == tmp_path / "envlogs"  # the folder itself, as the original


def test_processes_are_timed_at_perf(tmp_path: Path) -> None:
    t = lp.Task("Timed")

    @t.process
    def helper(this, x):
        return x * 2

    @t.process
    def run(this):
        return this.helper(21)

    records: list[dict] = []
    hid = logger.add(lambda m: records.append(m.record), level="PERF")
    try:
        p = lp.Pipeline("timed", cache_dir=tmp_path / "s").add(t)
        p.execute()
    finally:
        logger.remove(hid)
    perf = [r["message"] for r in records if r["level"].name == "PERF"]
    assert any("process 'helper' took" in m for m in perf)
    assert any("process 'run' took" in m for m in perf)
    assert p.get_result("Timed") == 42


def test_a_log_folder_removed_while_running_is_made_again(tmp_path: Path) -> None:
    import shutil

    p = lp.Pipeline("vanishing", cache_dir=tmp_path / "store")

    @p.task
    def chatty(this):
        this.logger.info("still here")
        return 1

    p.execute()
    shutil.rmtree(p.log_dir)
    p.execute(force=True)
    assert "still here" in (p.log_dir / "chatty.log").read_text()
    p.close()
