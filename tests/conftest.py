"""Shared fixtures: an isolated store per test, and tasks defined in real module files.

The code fingerprint of a task is the whole file that defines it, so tests that
check "editing the module reruns its tasks" need tasks living in a real `.py`
file they can rewrite; `module_file` provides that.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import little_pipelines as lp
from little_pipelines.log import close_task_files

_module_ids = itertools.count()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every pipeline's store and logs live under tmp_path; tests run from tmp_path."""
    home = tmp_path / "lp_home"
    monkeypatch.setenv("LITTLE_PIPELINES_HOME", str(home))
    monkeypatch.delenv("LOG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    yield home
    close_task_files()


@pytest.fixture
def pipelines() -> Iterator[Callable[..., lp.Pipeline]]:
    """A factory of Pipelines that are closed after the test (their store files released)."""
    made: list[lp.Pipeline] = []

    def make(name: str = "Test", **kwargs: object) -> lp.Pipeline:
        p = lp.Pipeline(name, **kwargs)  # type: ignore[arg-type]
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


class ModuleFile:
    """A real module file in tmp_path that a test can import, edit and import again."""

    def __init__(self, path: Path, loaded: list[str]) -> None:
        self.path = path
        self._loaded = loaded

    def write(self, source: str) -> types.ModuleType:
        """Write `source` to the file (with a new mtime) and import it under a fresh name."""
        previous = self.path.stat().st_mtime_ns if self.path.exists() else None
        self.path.write_text(textwrap.dedent(source))
        if previous is not None:
            # Filesystem timestamps can be coarse: make sure an edit is seen as one
            # (by the stat fast path and by Python's own bytecode cache).
            later = max(self.path.stat().st_mtime_ns, previous + 1_000_000_000)
            os.utime(self.path, ns=(later, later))
        return self.load()

    def load(self) -> types.ModuleType:
        """Import the file as it is now, as a new module (as a new process would)."""
        name = f"lp_test_module_{next(_module_ids)}"
        spec = importlib.util.spec_from_file_location(name, self.path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # so values of classes defined there can be pickled
        self._loaded.append(name)
        spec.loader.exec_module(module)
        return module


@pytest.fixture
def module_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ModuleFile]]:
    """Factory: `module_file("tasks_a.py")` gives a ModuleFile in tmp_path."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    loaded: list[str] = []

    def make(filename: str = "tasks.py") -> ModuleFile:
        return ModuleFile(tmp_path / filename, loaded)

    yield make
    for name in loaded:
        sys.modules.pop(name, None)


#: every executor a contract test runs on
EXECUTORS = ["sequential", "threads", "processes", "dask"]


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A real local Dask cluster (2 worker processes), shared by a test module."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> Any:
    """The executor argument for execute(): a name, or the shared Dask client."""
    if request.param == "dask":
        return request.getfixturevalue("dask_client")
    return request.param


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for the test (a real full disk); skips where mounting is
    not allowed."""
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                           str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def freeze(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Freeze the clock as the original's users do: `freeze(moment)` replaces
    `lp.expire._get_now`, the one seam every expiry decision reads."""

    def freeze_at(now: datetime) -> None:
        monkeypatch.setattr(lp.expire, "_get_now", lambda: now)

    return freeze_at
