"""The library inside an application that configures logging itself.

Each test is a real script in a fresh interpreter, configuring loguru (or only
the standard `logging` module) as applications do, so loguru's global state
never leaks from one test to the next.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PIPELINE = """
import little_pipelines as lp
p = lp.Pipeline("hostdemo")

@p.task
def alpha():
    return 1

@p.task
def beta(this, alpha):
    this.logger.info("beta says hello")
    this.logger.debug("beta details")
    return alpha + 1
"""


def run_script(tmp_path: Path, body: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}
    env.pop("LOG_DIR", None)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=tmp_path)


def test_remove_0_still_works_after_execute_and_host_handlers_get_each_record_once(
    tmp_path: Path,
) -> None:
    body = PIPELINE + textwrap.dedent("""
        from loguru import logger
        p.execute()
        logger.remove(0)  # the common idiom: raised ValueError when the library had replaced it
        seen = []
        logger.add(lambda m: seen.append(m.record), level="DEBUG")
        p.execute(force=True)
        ran = [r for r in seen
               if r["extra"].get("lp_scope") == "alpha" and "ran in" in r["message"]]
        hello = [r for r in seen if r["message"] == "beta says hello"]
        assert len(ran) == 1 and len(hello) == 1, [r["message"] for r in seen]
        print("OK")
    """)
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


def test_set_log_level_governs_the_hosts_handlers_and_adds_no_console(tmp_path: Path) -> None:
    body = textwrap.dedent("""
        import sys
        from loguru import logger
        logger.remove()
        logger.add(sys.stderr, level="DEBUG", format="HOST {level} {extra[lp_scope]} {message}")
        """) + PIPELINE + textwrap.dedent("""
        lp.set_log_level("ERROR")
        p.execute()
        print("---", file=sys.stderr)
        lp.set_log_level("DEBUG")
        p.execute(force=True)
    """)
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    quiet, loud = proc.stderr.split("---\n")
    assert quiet == "", quiet  # ERROR: the library's INFO lines are silenced there too
    lines = loud.splitlines()
    assert all(line.startswith("HOST ") for line in lines), loud  # no second console
    assert sum("beta says hello" in line for line in lines) == 1
    assert sum("beta details" in line for line in lines) == 1
    assert sum(line.startswith("HOST INFO alpha ✓ ran in") for line in lines) == 1


def test_an_untouched_loguru_prints_each_library_line_once_in_the_library_format(
    tmp_path: Path,
) -> None:
    body = "from loguru import logger\n" + PIPELINE + textwrap.dedent("""
        p.execute()
        logger.info("host line")
    """)
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    ran = [line for line in lines if "✓ ran in" in line and "| alpha |" in line]
    assert len(ran) == 1 and re.match(r"\d\d:\d\d:\d\d \| INFO", ran[0]), proc.stderr
    assert sum("host line" in line for line in lines) == 1  # loguru's own handler, kept


def test_an_application_using_only_stdlib_logging_receives_the_records(tmp_path: Path) -> None:
    # The recipe in the README's logging section, as it is written there.
    body = textwrap.dedent("""
        import logging
        import sys

        from loguru import logger

        class PropagateHandler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                logging.getLogger(record.name).handle(record)

        logger.remove(0)  # loguru's own console: the stdlib handlers print instead
        logger.add(PropagateHandler(), format="{extra[lp_scope]} | {message}")

        logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                            format="STDLIB %(levelname)s %(message)s")
        """) + PIPELINE + "p.execute()\n"
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("STDLIB INFO alpha | ✓ ran in") for line in lines) == 1, lines
    assert sum(line == "STDLIB INFO beta | beta says hello" for line in lines) == 1
    assert "ran in" not in proc.stderr  # printed once, by the application's handler


def test_records_of_tasks_on_process_workers_keep_their_times(tmp_path: Path) -> None:
    body = PIPELINE + textwrap.dedent("""
        import little_pipelines as lp
        lp.set_log_level("DEBUG")
        p.execute(executor="processes", workers=1)
    """)
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    hello = [line for line in proc.stderr.splitlines() if "beta says hello" in line]
    assert len(hello) == 1 and re.match(r"\d\d:\d\d:\d\d \| INFO", hello[0]), proc.stderr
    text = (tmp_path / "home" / "hostdemo" / "logs" / "beta.log").read_text()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| INFO", text), text
    assert "YYYY" not in text and "HH:mm" not in proc.stderr


def test_log_files_have_no_blank_lines(tmp_path: Path) -> None:
    proc = run_script(tmp_path, PIPELINE + "p.execute()\n")
    assert proc.returncode == 0, proc.stderr
    logs = tmp_path / "home" / "hostdemo" / "logs"
    for name in ("beta.log", "_pipeline.log"):
        lines = (logs / name).read_text().splitlines()
        assert lines and all(line.strip() for line in lines), (name, lines)


def test_dask_workers_print_nothing_of_their_own(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    body = PIPELINE + textwrap.dedent("""
        if __name__ == "__main__":
            report = p.execute(executor="dask", workers=1)
            assert report.ok, report.summary()
    """)
    proc = run_script(tmp_path, body, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert sum("beta says hello" in line for line in lines) == 1, proc.stderr
    assert sum("✓ ran in" in line for line in lines) == 2, proc.stderr
    assert not any("PERF" in line or "little_pipelines." in line for line in lines), proc.stderr


def test_a_library_warning_before_any_run_reaches_the_console(tmp_path: Path) -> None:
    proc = run_script(tmp_path, PIPELINE + "p.execute()\n")
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "home" / "hostdemo" / "cache" / "cache.db"
    db.write_bytes(b"this is not a database" * 100)
    proc = run_script(tmp_path, PIPELINE + "print(p.get_result('alpha'))\n")  # no execute()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("was damaged") == 1, proc.stderr
