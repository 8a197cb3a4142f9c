"""The executor contract: the same tests over sequential, threads, processes and Dask.

Each executor must give the same results, the same cache and the same report
as a sequential run. Task code here lives at module level so worker processes
(forked, or Dask's spawned workers, which inherit sys.path) can run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import little_pipelines as lp
from little_pipelines.executors import ExecutorError

# -- task code (module level, so every kind of worker can run it) -----------------------


def stamp(name: str, *upstream: Any) -> dict[str, Any]:
    start = time.time()
    time.sleep(0.02)
    return {"name": name, "start": start, "end": time.time(), "up": list(upstream),
            "pid": os.getpid()}


def diamond(name: str = "diamond") -> lp.Pipeline:
    p = lp.Pipeline(name)

    @p.task
    def top():
        return stamp("top")

    @p.task
    def left(top):
        return stamp("left", top["name"])

    @p.task
    def right(top):
        return stamp("right", top["name"])

    @p.task
    def bottom(left, right):
        return stamp("bottom", left["name"], right["name"])

    return p


def classic(name: str = "classic") -> lp.Pipeline:
    zero = lp.Task("Zero")

    @zero.process
    def run(this):
        return ["Some", "values"]

    one = lp.Task("One", dependencies=["Zero"])

    @one.process
    def preflight(this):
        this.logger.info("preflight in {}", os.getpid())
        return "OK"

    @one.process
    def run(this):  # noqa: F811 - each classic task has its own `run`
        return this.pipeline.get_result("Zero") + [this.preflight()]

    return lp.Pipeline(name).add(one, zero)


def failing(policy: str = "FAIL") -> lp.Pipeline:
    p = lp.Pipeline(f"failing_{policy}")

    @p.task
    def ok():
        return 1

    @p.task
    def boom(ok):
        raise ValueError("boom <{x}>")

    @p.task(if_upstream_errors=policy)
    def after(boom):
        return 2

    @p.task
    def independent():
        return 3

    return p


def flaky_pipeline(counter: Path) -> lp.Pipeline:
    p = lp.Pipeline("flaky")

    @p.task(retries=2, retry_delay=[0.01, 0.01])
    def flaky():
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        if n < 2:
            raise RuntimeError(f"not yet ({n})")
        return n

    return p


def slow_pipeline() -> lp.Pipeline:
    p = lp.Pipeline("slow")

    @p.task(timeout=0.5)
    def slow():
        time.sleep(4)
        return "never"

    @p.task
    def quick():
        return "quick"

    return p


def statuses(report: lp.RunReport) -> dict[str, str]:
    return {o.name: o.status for o in report}


# -- the contract ------------------------------------------------------------------------


def test_results_and_order_match_a_sequential_run(executor: Any) -> None:
    p = diamond()
    report = p.execute(executor=executor, workers=2)
    assert statuses(report) == dict.fromkeys(["top", "left", "right", "bottom"], "executed")
    results = {n: p.get_result(n) for n in ["top", "left", "right", "bottom"]}
    assert results["bottom"]["up"] == ["left", "right"]
    for name, deps in {"left": ["top"], "right": ["top"], "bottom": ["left", "right"]}.items():
        for dep in deps:  # every task started after all of its dependencies ended
            assert results[name]["start"] >= results[dep]["end"]
    p.close()


def test_a_second_run_reuses_everything(executor: Any) -> None:
    p = diamond()
    p.execute(executor=executor)
    again = p.execute(executor=executor)
    assert set(statuses(again).values()) == {"cached"}
    p.close()


def test_classic_tasks_get_results_and_ship_their_logs(executor: Any) -> None:
    p = classic()
    report = p.execute(executor=executor)
    assert report.ok
    assert p.get_result("One") == ["Some", "values", "OK"]
    lp.log.close_task_files()
    assert "preflight in" in (p.log_dir / "One.log").read_text()  # the task's own record
    assert "| One | process 'preflight' took" in (p.log_dir / "_pipeline.log").read_text()
    p.close()


@pytest.mark.parametrize("policy,blocked", [("FAIL", "failed"), ("SKIP", "skipped")])
def test_failures_block_dependants_and_spare_the_rest(
    executor: Any, policy: str, blocked: str
) -> None:
    p = failing(policy)
    report = p.execute(executor=executor)
    assert statuses(report) == {
        "ok": "executed", "boom": "failed", "after": blocked, "independent": "executed",
    }
    assert "ValueError: boom <{x}>" in (report["boom"].error or "")
    assert [r.kind for r in report["after"].reasons] == ["upstream_failed"]
    assert p.failures == (["boom", "after"] if policy == "FAIL" else ["boom"])
    p.close()


def test_skips_use_the_stored_result(executor: Any) -> None:
    p = diamond()
    p.execute(executor=executor)
    report = p.execute(executor=executor, skip_tasks=["left"], force_tasks=["top"])
    assert report["left"].status == "skipped"
    assert report["top"].status == "executed"
    # top's new result differs (new timestamps), so right and bottom rerun; left was skipped
    assert report["right"].status == "executed"
    assert report["bottom"].status == "executed"
    p.close()


def test_retries_are_counted_in_the_report(executor: Any, tmp_path: Path) -> None:
    p = flaky_pipeline(tmp_path / "counter")
    report = p.execute(executor=executor)
    assert report["flaky"].status == "executed"
    assert report["flaky"].attempts == 3
    assert p.get_result("flaky") == 2
    lp.log.close_task_files()
    assert "attempt 1 of 3 failed" in (p.log_dir / "flaky.log").read_text()
    p.close()


def test_a_timeout_fails_the_task_and_the_run_goes_on(executor: Any) -> None:
    p = slow_pipeline()
    report = p.execute(executor=executor, workers=2)
    assert report["slow"].status == "failed"
    assert "TaskTimeout" in report["slow"].why
    assert report["quick"].status == "executed"
    assert p.get_result("slow") is None
    p.close()


def test_reports_are_the_same_as_sequential(executor: Any) -> None:
    seq = failing("SKIP")
    expected = seq.execute(executor="sequential")
    seq.clear()
    other = failing("SKIP")
    got = other.execute(executor=executor)
    assert statuses(got) == statuses(expected)
    for name in statuses(got):
        assert [r.kind for r in got[name].reasons] == [r.kind for r in expected[name].reasons]
    seq.close()
    other.close()


# -- choosing an executor -------------------------------------------------------------------


def test_unknown_executor_is_an_error_before_anything_runs() -> None:
    p = diamond()
    with pytest.raises(ExecutorError, match="Unknown executor 'thread'.*Did you mean 'threads'"):
        p.execute(executor="thread")
    assert p.get_result("top") is None
    with pytest.raises(ExecutorError, match="workers must be"):
        p.execute(executor="threads", workers=0)
    p.close()


def test_a_user_built_executor_is_used_and_left_open() -> None:
    from concurrent.futures import ThreadPoolExecutor

    p = diamond()
    with ThreadPoolExecutor(2) as pool:
        assert p.execute(executor=pool).ok
        assert pool.submit(lambda: 42).result() == 42  # not shut down by the run
    p.close()


def test_dask_by_name_starts_and_closes_its_own_cluster() -> None:
    pytest.importorskip("dask.distributed")
    p = diamond()
    report = p.execute(executor="dask", workers=1)
    assert report.ok and p.get_result("bottom")["up"] == ["left", "right"]
    p.close()


# -- Ctrl-C ----------------------------------------------------------------------------

INTERRUPTED = """
import sys, time
from pathlib import Path
import little_pipelines as lp

p = lp.Pipeline("interrupt_me")

@p.task
def quick():
    Path("quick.done").write_text("yes")
    return "kept"

@p.task
def slow():
    # A thread cannot be stopped: with executor="threads" the process exits when
    # this returns, so keep it short enough for the test and long enough to interrupt.
    time.sleep(3 if sys.argv[1] == "threads" else 60)
    return "never"

if __name__ == "__main__":
    if sys.argv[1] == "plan":
        print("PLAN", sorted((o.name, o.status) for o in p.plan()), p.get_result("quick"))
        sys.exit(0)
    try:
        p.execute(executor=sys.argv[1], workers=2)
    except KeyboardInterrupt:
        r = p.last_report
        print("INTERRUPTED", r.interrupted, sorted((o.name, o.status) for o in r))
        sys.exit(130)
    print("FINISHED")
"""


@pytest.mark.parametrize("name", ["sequential", "threads", "processes"])
def test_ctrl_c_keeps_finished_tasks_and_reports_what_was_interrupted(
    name: str, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    script = tmp_path / "interrupt_me.py"
    script.write_text(INTERRUPTED)
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}
    # A background job inherits SIGINT ignored, and Python then keeps ignoring it.
    proc = subprocess.Popen([sys.executable, str(script), name], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not (tmp_path / "quick.done").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the driver store `quick` and start `slow`
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "INTERRUPTED True" in out
    assert "('quick', 'executed')" in out and "('slow', 'interrupted')" in out
    plan = subprocess.run([sys.executable, str(script), "plan"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30)
    assert "PLAN [('quick', 'cached'), ('slow', 'run')] kept" in plan.stdout, plan.stderr


# -- tasks defined in a script, and tasks that cannot travel ----------------------------

SCRIPT_TASKS = """
import sys
import little_pipelines as lp

zero = lp.Task("Zero")

@zero.process
def run(this):
    return ["Some", "values"]

one = lp.Task("One", dependencies=["Zero"])

@one.process
def run(this):
    return this.pipeline.get_result("Zero") + ["more"]

p = lp.Pipeline("script_tasks")
p.add(one, zero)

@p.task
def shout(One):
    return [w.upper() for w in One]

if __name__ == "__main__":
    report = p.execute(executor=sys.argv[1], workers=2)
    print("RESULT", report.ok, p.get_result("shout"))
"""


@pytest.mark.parametrize("name", ["processes", "dask"])
def test_tasks_defined_in_a_script_run_on_worker_processes(name: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    if name == "dask":
        pytest.importorskip("dask.distributed")
    script = tmp_path / "script_tasks.py"
    script.write_text(SCRIPT_TASKS)
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, str(script), name], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "RESULT True ['SOME', 'VALUES', 'MORE']" in proc.stdout


def test_a_task_that_cannot_be_sent_fails_naming_itself(dask_client: Any) -> None:
    import threading

    guard = threading.Lock()
    p = lp.Pipeline("unsendable")

    @p.task
    def locked():
        with guard:  # a lock in its closure: it cannot be pickled to a worker
            return 1

    @p.task
    def fine():
        return 2

    report = p.execute(executor=dask_client)
    assert report["locked"].status == "failed"
    assert "Task 'locked' cannot be sent to a worker" in report["locked"].why
    assert report["fine"].status == "executed"
    p.close()


def test_a_run_with_nothing_to_do_starts_no_executor(tmp_path: Path) -> None:
    # A fully cached run with executor="dask" must not start a cluster (it took
    # ~3.7 s for nothing): Dask is not even imported. Checked in a fresh process.
    script = tmp_path / "cached.py"
    script.write_text(textwrap.dedent("""
        import sys
        import little_pipelines as lp
        p = lp.Pipeline("lazy")

        @p.task
        def one():
            return 1

        if __name__ == "__main__":
            assert p.execute().ok
            assert "distributed" not in sys.modules
            report = p.execute(executor="dask")
            assert report.cached == ["one"], report.summary()
            assert "distributed" not in sys.modules, "a cluster was started for nothing"
            try:
                p.execute(executor="dusk")
            except lp.LittlePipelinesError as e:
                assert "Unknown executor 'dusk'" in str(e)
            else:
                raise AssertionError("a bad executor name must still be refused")
            print("OK")
    """))
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr
