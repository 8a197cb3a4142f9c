"""Big values (issue 14, goal 7) and read errors that are not damage (issue 11, item 2).

Memory is measured with tracemalloc, which numpy reports its buffers to: a
deterministic count of bytes, not a timing.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import little_pipelines as lp
from little_pipelines.cli import main
from little_pipelines.render import make_console

N_BYTES = 40 * 2**20  # large enough to dwarf everything else traced, small enough to be quick


def _peak(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_array_is_stored_and_loaded_with_one_copy_in_memory(
    pipelines: Callable[..., lp.Pipeline], tmp_path: Path
) -> None:
    p = pipelines("big")

    @p.task
    def big() -> np.ndarray:
        return np.arange(N_BYTES // 8, dtype=np.float64)

    stored = _peak(p.execute)
    with open(tmp_path / "plain.pkl", "wb") as f:
        plain = _peak(lambda: pickle.dump(big(), f, protocol=5))
    # Before: the value plus its 40 MB pickle as a bytes object, 2x.
    assert stored < 1.25 * plain, (stored, plain)

    again = pipelines("big")
    again.task(big)
    value = None

    def load() -> None:
        nonlocal value
        value = again.get_result("big")

    loaded = _peak(load)
    assert value is not None and value.nbytes == N_BYTES and value[-1] == N_BYTES // 8 - 1
    assert loaded < 1.25 * N_BYTES, loaded  # before: the blob and the array, 2x


_SHOW_PIPELINE = """
    import little_pipelines as lp

    class Heavy:
        # Loading it fails, as it would for a class renamed since: `show` must not need to.
        def __reduce__(self):
            return (_unloadable, ())

        def __repr__(self):
            return "Heavy(42 rows)"

    def _unloadable():
        raise RuntimeError("this value was loaded")

    pipeline = lp.Pipeline("heavy")

    @pipeline.task
    def heavy():
        return Heavy()
"""


def test_show_and_peek_use_the_preview_stored_with_the_record(tmp_path: Path) -> None:
    path = tmp_path / "heavy.py"
    path.write_text(textwrap.dedent(_SHOW_PIPELINE))

    def lpipe(*args: str) -> tuple[int, str]:
        out = make_console(__import__("io").StringIO(), width=100, color_system=None)
        code = main([*args], console=out, err_console=out)
        return code, out.file.getvalue()  # type: ignore[attr-defined]

    assert lpipe("run", str(path))[0] == 0
    code, text = lpipe("show", str(path), "heavy")
    assert code == 0, text
    assert "Heavy(42 rows)" in text and "was loaded" not in text


_READER = """
    import encodings.ascii, encodings.hex_codec, os, resource, sys  # before becoming nobody
    import numpy as np
    import little_pipelines as lp
    import little_pipelines.pipeline  # imported now: as nobody, the stdlib may be unreadable
    from pathlib import Path

    how, home = sys.argv[1], Path(sys.argv[2])
    if how == "eacces" and os.geteuid() == 0:
        os.setgid(65534); os.setuid(65534)  # root reads any file: become nobody
    p = lp.Pipeline("io", cache_dir=home)

    @p.task
    def big():
        return np.arange(300_000, dtype=np.float64)  # 2.4 MB: its own value file

    @p.task
    def total(big):
        return float(big.sum())

    assert p.execute()["total"].status == "executed"
    files = [f for f in (home / "cache").rglob("*.val")]
    assert len(files) == 1, files
    held = []
    if how == "emfile":
        # Use up every descriptor the soft limit allows: the next open() gets EMFILE.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
    else:
        os.chmod(files[0], 0)
    if how == "emfile":
        # Outside a run: a run would fail earlier, opening its lock file (locks.py).
        try:
            p.get_result("big")
            error = "no error"
        except OSError as e:
            error = str(e)
        print("STATUS", "failed")
    else:
        report = p.execute(force_tasks=["total"])
        print("STATUS", report["total"].status)
        error = report["total"].error or ""
    for fd in held:
        os.close(fd)
    if how == "emfile":
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    else:
        os.chmod(files[0], 0o600)
    print("ERROR", error.replace("\\n", " "))
    print("KEPT", p.record("big") is not None and files[0].exists())
    print("VALUE", float(p.get_result("big").sum()))
"""


@pytest.mark.parametrize("how", ["emfile", "eacces"])
def test_a_value_that_cannot_be_read_is_kept_and_the_task_names_the_cause(how: str) -> None:
    home = Path(tempfile.mkdtemp(prefix="lp-io-"))  # not under pytest's root-only tmp folders
    if how == "eacces" and os.geteuid() == 0:
        os.chown(home, 65534, 65534)
    script = home.parent / f"{home.name}.py"
    script.write_text(textwrap.dedent(_READER))
    try:
        proc = subprocess.run([sys.executable, str(script), how, str(home / "store")],
                              capture_output=True, text=True, timeout=120)
    finally:
        script.unlink()
        subprocess.run(["rm", "-rf", str(home)], check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["STATUS"] == "failed"
    cause = "Too many open files" if how == "emfile" else "Permission denied"
    assert cause in lines["ERROR"] and "it is kept" in lines["ERROR"], lines["ERROR"]
    assert lines["KEPT"] == "True"  # before: the record and value were deleted as "damaged"
    assert lines["VALUE"] == str(float(np.arange(300_000, dtype=np.float64).sum()))


def test_a_large_upstream_value_reaches_a_process_worker_through_its_file(
    pipelines: Callable[..., lp.Pipeline],
) -> None:
    p = pipelines("to_workers")

    @p.task
    def big() -> np.ndarray:
        return np.arange(500_000, dtype=np.float64)  # 4 MB: a value file of its own

    @p.task
    def total(big: np.ndarray) -> float:
        return float(big.sum())

    p.execute(["big"])
    report = p.execute(executor="processes", workers=1)
    assert report["total"].status == "executed", report["total"].error
    assert p.get_result("total") == float(np.arange(500_000, dtype=np.float64).sum())


@pytest.mark.parametrize("value", [7, -2**70, 2**5000, 1.5, True, None, 2j, "s", "é" * 3000,
                                   b"\x00" * 5000, [1, 2], {"a": 1}])
def test_a_results_digest_is_that_of_its_pickle_however_it_was_written(
    pipelines: Callable[..., lp.Pipeline], value: object
) -> None:
    # Small numbers and strings are pickled in one call, the rest through the digesting
    # writer: either way the digest (which dependants' freshness and early cutoff
    # compare, and remote workers compute from the bytes) is that of the same bytes.
    from little_pipelines.fingerprint import digest_bytes

    p = pipelines("Digests")
    p.task(lambda: value, name="v")
    p.execute()
    record = p.record("v")
    assert record is not None
    assert record["digest"] == digest_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    assert p.get_result("v") == value
