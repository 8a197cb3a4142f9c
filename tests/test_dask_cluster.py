"""A real Dask cluster: `dask scheduler` and two `dask worker` processes on 127.0.0.1.

The pipeline runs from a script (its tasks live in `__main__`, so they travel to
the workers by value), connects with `scheduler=`, and its tasks report which
worker ran them: both workers must have been used, and the results must equal a
sequential run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("dask.distributed")

SCRIPT = """
    import json, sys, time
    import little_pipelines as lp

    p = lp.Pipeline("cluster_demo")

    @p.task
    def numbers():
        return list(range(8))

    def make_square(i):
        def square(numbers):
            from distributed import get_worker
            time.sleep(0.3)  # long enough that one worker cannot take every task
            try:
                worker = get_worker().name
            except ValueError:
                worker = "driver"
            return {"value": numbers[i] ** 2, "worker": worker}
        square.__name__ = f"square_{i}"
        return square

    for i in range(8):
        p.task(make_square(i))

    @p.task(dependencies=[f"square_{i}" for i in range(8)])
    def total(this):
        # the classic way: on a worker, get_result serves the dependencies sent along
        return sum(this.pipeline.get_result(f"square_{i}")["value"] for i in range(8))

    if __name__ == "__main__":
        mode = sys.argv[1]
        kwargs = {"scheduler": sys.argv[2]} if mode == "cluster" else {}
        report = p.execute(**kwargs)
        out = {n: p.get_result(n) for n in [t.name for t in p.tasks]}
        print(json.dumps({"ok": report.ok, "results": out}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_workers(address: str, n: int, deadline: float) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    assert dask, "the dask command comes with little-pipelines[dask]"
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "cluster-logs"
    logs.mkdir()
    procs = [subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"),  # noqa: SIM115
        start_new_session=True,
    )]
    try:
        for name in ("w1", "w2"):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--name", name, "--nthreads", "1",
                 "--no-dashboard", "--host", "127.0.0.1", "--nworkers", "1"],
                stdout=subprocess.DEVNULL,
                stderr=open(logs / f"{name}.log", "w"),  # noqa: SIM115
                start_new_session=True, cwd=tmp_path,
            ))
        _wait_for_workers(address, 2, time.monotonic() + 60)
        yield address
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _run(script: Path, *args: str, home: Path) -> dict:
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(home)}
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_real_cluster_runs_tasks_on_both_workers(cluster: str, tmp_path: Path) -> None:
    script = tmp_path / "cluster_demo.py"
    script.write_text(textwrap.dedent(SCRIPT))
    on_cluster = _run(script, "cluster", cluster, home=tmp_path / "home_cluster")
    sequential = _run(script, "sequential", home=tmp_path / "home_seq")
    assert on_cluster["ok"] and sequential["ok"]
    squares = {k: v for k, v in on_cluster["results"].items() if k.startswith("square_")}
    assert {s["worker"] for s in squares.values()} == {"w1", "w2"}
    assert {s["worker"] for s in sequential["results"].values() if isinstance(s, dict)} == {
        "driver"}

    def values(results: dict) -> dict:
        return {k: (v["value"] if isinstance(v, dict) else v) for k, v in results.items()}

    assert values(on_cluster["results"]) == values(sequential["results"])
    assert on_cluster["results"]["total"] == sum(i * i for i in range(8))
