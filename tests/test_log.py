"""Logging: console lines once, levels, formats, host handlers, per-task files, PERF."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

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
        scopes = {r["extra"].get("lp_scope") for r in seen}
        assert {"alpha", "beta", "logdemo"} <= scopes, scopes
        assert not any(r["level"].name == "PERF" for r in seen)  # below the level (INFO)
        lp.set_log_level("PERF")
        p.execute(force=True)
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
    lines = [line for line in proc.stderr.splitlines() if "ran in" in line or "logdemo" in line]
    assert lines and all(line.startswith("HOST ") for line in lines), proc.stderr


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

    p = lp.Pipeline("timed", cache_dir=tmp_path / "s").add(t)
    p.execute()
    perf = [line for line in (p.log_dir / "_pipeline.log").read_text().splitlines()
            if "| PERF " in line]
    assert any("process 'helper' took" in m for m in perf)
    assert any("process 'run' took" in m for m in perf)
    assert p.get_result("Timed") == 42
    p.close()


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


def test_a_format_naming_an_unknown_extra_key_is_refused_when_set() -> None:
    before = lplog._state["format"]
    with pytest.raises(ValueError, match=r"no extra key 'colour'.*lp_scope"):
        lp.set_log_format("{extra[colour]} {message}")
    assert lplog._state["format"] == before  # the console keeps its line
    lp.set_log_format("{extra[lp_scope]} {message}")
    lp.set_log_format(None)


# -- log folders and file names (issue 11: 14, 16, 17, 18) ------------------------------------
LOUD = """
import little_pipelines as lp
p = lp.Pipeline("folders", log_dir={log_dir!r})

@p.task(name={name!r})
def chatty(this):
    for i in range(5):
        this.logger.info("line {{}}", i)
    return 1

report = p.execute()
assert report.ok and p.get_result({name!r}) == 1, report.summary()
print("OK")
"""


def test_an_unusable_log_folder_costs_one_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    body = LOUD.format(log_dir=str(tmp_path / "afile" / "logs"), name="chatty")
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr
    assert proc.stderr.count("cannot be written") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "line 4" in proc.stderr  # console-only


def test_a_300_character_task_name_logs_to_a_file_of_its_own(tmp_path: Path) -> None:
    name = "n" * 300
    body = LOUD.format(log_dir=str(tmp_path / "logs"), name=name)
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr
    assert "Traceback" not in proc.stderr and "cannot be written" not in proc.stderr
    files = [f for f in (tmp_path / "logs").iterdir() if f.name != "_pipeline.log"]
    assert len(files) == 1 and len(files[0].name) < 255
    assert files[0] == lp.Pipeline("x", log_dir=tmp_path / "logs").add(
        lp.Task(name)).get_task(name).log_file
    assert "line 4" in files[0].read_text()


def test_a_log_folder_others_can_write_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    proc = run_script(tmp_path, LOUD.format(log_dir=str(shared), name="chatty"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("cannot be written") == 1 and "chmod go-w" in proc.stderr
    assert list(shared.iterdir()) == []


def test_a_symlinked_log_file_is_not_followed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (logs / "_pipeline.log").symlink_to(victim)
    proc = run_script(tmp_path, LOUD.format(log_dir=str(logs), name="chatty"))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious\n"
    assert proc.stderr.count("cannot be written") == 1


def test_folders_are_owner_only_with_their_parents_even_under_umask_000(tmp_path: Path) -> None:
    home = tmp_path / "a" / "b" / "home"
    logs = tmp_path / "l1" / "l2" / "logs"
    body = "import os\nos.umask(0)\n" + LOUD.format(log_dir=str(logs), name="chatty")
    script = tmp_path / "umask.py"
    script.write_text(body)
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(home)}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for folder in (tmp_path / "a", tmp_path / "a" / "b", home, home / "folders",
                   tmp_path / "l1", tmp_path / "l1" / "l2", logs):
        assert oct(folder.stat().st_mode & 0o777) == "0o700", folder
    for f in logs.iterdir():
        assert oct(f.stat().st_mode & 0o777) == "0o600", f


def test_log_file_names_never_collide_nor_hit_the_run_log(tmp_path: Path) -> None:
    names = ["a/b", "a_b", "a?b", "a%2Fb", "_pipeline", ".hidden", "..", "Ünï", "a b", "%"]
    files = {lplog.safe_filename(n) + ".log" for n in names}
    assert len(files) == len(names) and lplog.RUN_LOG not in files
    assert all("/" not in f and not f.startswith(".") for f in files)
    assert lplog.safe_filename("clean_data") == "clean_data"  # ordinary names stay
    p = lp.Pipeline("names", cache_dir=tmp_path / "store")
    for n in names:
        def make(n: str) -> Any:  # a task per name, each logging its own name
            def task(this):
                this.logger.info("I am {}", n)
            task.__name__ = "t"
            return task
        p.task(make(n), name=n)
    p.execute()
    lplog.close_task_files()
    for n in names:
        assert p.get_task(n).log_file.read_text().count("I am ") == 1, n
    assert "I am" not in (p.log_dir / lplog.RUN_LOG).read_text()
    p.close()
