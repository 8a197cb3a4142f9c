"""Micro-benchmarks: the store's primitives, input-file checks, hashing, large values,
a warm run over big cached values, and start-up times.

    python bench/micro.py SECTION SCRATCH [--quick]     # one section, prints BENCH-RESULT json

`run_all` (called by run.py) runs each section in a fresh child process.
Times are medians of several repetitions taken inside that process, except
the start-up times, which are medians over fresh processes.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARK = "BENCH-RESULT "
perf = time.perf_counter
REPS = 7


def _median_time(fn: Callable[[], Any], reps: int = REPS,
                 setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(reps):
        if setup is not None:
            setup()
        t = perf()
        fn()
        times.append(perf() - t)
    return statistics.median(times)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# -- 1. diskcache primitives -------------------------------------------------------------


def section_diskcache(scratch: Path, quick: bool) -> dict[str, Any]:
    """µs per operation for 1,000 keys: set alone, set in a transaction, get; and the
    same operations the way our store does them (tuple keys, pickled value + record)."""
    import diskcache

    n = 1000
    keys = [f"t{i}" for i in range(n)]
    blob = pickle.dumps(42, protocol=pickle.HIGHEST_PROTOCOL)
    record = {"schema": 1, "fingerprint": "f" * 64, "digest": "d" * 64,
              "code": {"/x/tools.py": (1234, 1700000000000000000, "c" * 64)}, "inputs": {},
              "upstream": {"t0": "u" * 64}, "created_at": 1.7e9, "duration": 1e-5,
              "reasons": ["no stored result"], "type": "builtins.int", "size": 5,
              "expiry": "never", "expires_at": None, "session": None, "run_id": "abcdef123456"}
    out: dict[str, Any] = {"keys": n}
    settings = {"default": {}, "lp": {"eviction_policy": "none", "size_limit": 2**62}}
    root = scratch / "dc"

    def per_op(seconds: float, ops: int = n) -> float:
        return seconds / ops * 1e6

    for label, kw in settings.items():
        state: dict[str, Any] = {}

        def fresh(kw: dict = kw, state: dict = state) -> None:
            if "c" in state:
                state["c"].close()
            state["c"] = diskcache.Cache(str(_fresh(root)), **kw)

        def sets(state: dict = state) -> None:
            c = state["c"]
            for k in keys:
                c.set(k, 42)

        def sets_tx(state: dict = state) -> None:
            c = state["c"]
            with c.transact():
                for k in keys:
                    c.set(k, 42)

        def gets(state: dict = state) -> None:
            c = state["c"]
            for k in keys:
                c.get(k)

        out[f"set_us[{label}]"] = per_op(_median_time(sets, setup=fresh))
        out[f"set_in_one_transaction_us[{label}]"] = per_op(_median_time(sets_tx, setup=fresh))
        out[f"get_us[{label}]"] = per_op(_median_time(gets))
        state["c"].close()

    # Our store, through its own methods (so this follows store.py as it changes).
    from little_pipelines.store import Store

    names = [f"t{i}" for i in range(n)]
    st: dict[str, Any] = {}

    def fresh_store() -> None:
        if "s" in st:
            st["s"].close()
        st["s"] = Store(_fresh(root))

    def puts() -> None:
        s = st["s"]
        for name in names:
            s.put(name, blob, record)

    out["store_put_us"] = per_op(_median_time(puts, setup=fresh_store))
    out["store_records_us"] = per_op(_median_time(lambda: st["s"].records(names)))
    out["store_record_one_us"] = per_op(_median_time(
        lambda: [st["s"].record(name) for name in names]))
    st["s"].close()

    # What a leaner design would cost: one SQLite row per task (record and a small
    # value together), in diskcache's own pragmas (WAL, synchronous=NORMAL).
    import sqlite3

    rec_blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)

    def raw_con() -> sqlite3.Connection:
        path = _fresh(root) / "raw.db"
        con = sqlite3.connect(str(path), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("CREATE TABLE r (name TEXT PRIMARY KEY, record BLOB, value BLOB)")
        return con

    def raw_autocommit() -> None:
        con = st["con"]
        for name in names:
            con.execute("INSERT OR REPLACE INTO r VALUES (?, ?, ?)", (name, rec_blob, blob))

    def raw_tx_each() -> None:
        con = st["con"]
        for name in names:
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT OR REPLACE INTO r VALUES (?, ?, ?)", (name, rec_blob, blob))
            con.execute("COMMIT")

    def raw_read_all() -> None:
        for _name, rec, _val in st["con"].execute("SELECT name, record, value FROM r"):
            pickle.loads(rec)

    def new_con() -> None:
        if "con" in st:
            st["con"].close()
        st["con"] = raw_con()

    out["raw_row_autocommit_us"] = per_op(_median_time(raw_autocommit, setup=new_con))
    out["raw_row_begin_commit_us"] = per_op(_median_time(raw_tx_each, setup=new_con))
    out["raw_select_all_us"] = per_op(_median_time(raw_read_all))
    st["con"].close()
    out["record_pickled_bytes"] = len(rec_blob)
    return out


# -- 2. our per-task operations in isolation -----------------------------------------------


def section_lp_ops(scratch: Path, quick: bool) -> dict[str, Any]:
    """µs per call of the operations our engine does once or more per task."""
    import graphlib

    import little_pipelines as lp
    from little_pipelines import expire, fingerprint, freshness, log
    from little_pipelines.report import Reason, TaskOutcome

    lp.set_log_level("ERROR")
    n = 2000
    out: dict[str, Any] = {}
    p = lp.Pipeline("ops", cache_dir=scratch / "ops")
    tasks = [p.task(lambda this: 1, name=f"t{i}") for i in range(64)]

    def per_call(fn: Callable[[], Any], calls: int = n) -> float:
        def loop() -> None:
            for _ in range(calls):
                fn()
        return _median_time(loop, reps=5) / calls * 1e6

    t0 = tasks[0]
    t0.logger.info("warm the file handle")

    def probe(key: str, make: Callable[[], Callable[[], Any]]) -> None:
        # Internals move while the library is worked on: an operation that no longer
        # exists is reported as such instead of stopping the section.
        try:
            out[key] = per_call(make())
        except Exception as e:
            out[key] = f"n/a ({type(e).__name__}: {e})"

    probe("log_info_same_task_file_us",
          lambda: lambda: t0.logger.info("✓ ran in {:.3f}s", 0.1))
    cycle = iter(range(10**9))
    probe("log_info_64_tasks_round_robin_us",
          lambda: lambda: tasks[next(cycle) % 64].logger.info("✓ ran in {:.3f}s", 0.1))

    def timed_block() -> None:
        with log.timed(t0.logger, "function 'f'"):
            pass

    probe("timed_context_manager_us", lambda: timed_block)
    from loguru import logger as _lg

    probe("loguru_bind_us",
          lambda: lambda: _lg.bind(lp_scope="x", lp_task="x", lp_log_dir="/x"))
    probe("pickle_dumps_int_us", lambda: lambda: pickle.dumps(46, protocol=5))
    blob = pickle.dumps(46, protocol=5)
    probe("digest_bytes_small_us", lambda: lambda: fingerprint.digest_bytes(blob))

    def state_fp() -> Callable[[], Any]:
        state = freshness.State(code={"/x/tools.py": (1, 2, "c" * 64)}, inputs={},
                                upstream={"t0": "d" * 64})
        return lambda: state.fingerprint

    probe("state_fingerprint_us", state_fp)
    probe("now_us", lambda: expire._get_now)
    probe("expiry_fields_us", lambda: lambda: freshness.expiry_fields(
        t0, expire._get_now().astimezone(), run_id="r", drop_none=False))
    probe("task_outcome_us",
          lambda: lambda: TaskOutcome("t1", "executed", (Reason("forced"),)))
    probe("reason_str_us", lambda: lambda: "; ".join(map(str, [Reason("no_result")])))
    here = os.path.abspath(__file__)
    probe("os_stat_us", lambda: lambda: os.stat(here))
    probe("dependencies_property_us", lambda: lambda: tasks[1].dependencies)

    def sorter_per_node() -> None:
        s: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        names = [f"t{i}" for i in range(1000)]
        s.add(names[0])
        for a, b in zip(names[1:], names, strict=False):
            s.add(a, b)
        s.prepare()
        while s.is_active():
            for x in s.get_ready():
                s.done(x)

    out["graphlib_per_node_us"] = _median_time(sorter_per_node, reps=5) / 1000 * 1e6

    # What a per-task log file costs the file system: creating it vs appending to it.
    line = b"2024-01-01 00:00:00.000 | PERF     | function 'f' took 0.0000s\n"
    folder = scratch / "files"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC

    def write_each(k: int = 1000) -> None:
        for i in range(k):
            fd = os.open(folder / f"t{i}.log", flags, 0o600)
            os.write(fd, line)
            os.close(fd)

    out["create_file_and_write_us"] = _median_time(
        write_each, reps=5, setup=lambda: _fresh(folder)) / 1000 * 1e6
    out["append_existing_file_us"] = _median_time(write_each, reps=5) / 1000 * 1e6
    return out


# -- 3. input-file checks ------------------------------------------------------------------


def section_files(scratch: Path, quick: bool) -> dict[str, Any]:
    """Unchanged input files: a plain os.stat loop against our warm run's cost per file."""
    import little_pipelines as lp

    lp.set_log_level("ERROR")
    nfiles = 1000 if quick else 10000
    folder = _fresh(scratch / "inputs")
    paths = []
    for i in range(nfiles):
        path = folder / f"f{i:05d}.csv"
        path.write_text(f"{i}\n")
        paths.append(str(path))
    out: dict[str, Any] = {"files": nfiles}

    def stat_all() -> None:
        for p in paths:
            os.stat(p)

    out["os_stat_us_per_file"] = _median_time(stat_all) / nfiles * 1e6

    def pipeline(spec: Any, tag: str) -> lp.Pipeline:
        p = lp.Pipeline("files", cache_dir=scratch / f"files-{tag}")

        def read_all(this: Any) -> int:
            return len(this.input_files)

        p.task(read_all, name="read_all", input_files=spec)
        return p

    variants = {"folder": [str(folder)], "list": paths, "none": None}
    for tag, spec in variants.items():
        p = pipeline(spec, tag)
        t = perf()
        rep = p.execute()
        out[f"cold_s[{tag}]"] = perf() - t
        assert len(rep.executed) == 1
        p.close()

        def warm(spec: Any = spec, tag: str = tag) -> None:
            q = pipeline(spec, tag)
            r = q.execute()
            assert len(r.cached) == 1, r.counts()
            q.close()

        out[f"warm_s[{tag}]"] = _median_time(warm)
    for tag in ("folder", "list"):
        out[f"warm_us_per_file[{tag}]"] = (
            (out[f"warm_s[{tag}]"] - out["warm_s[none]"]) / nfiles * 1e6)
    # Where that goes: expanding the specs into files, and stamping them.
    from little_pipelines.fingerprint import FileDigests, expand_inputs

    out["expand_us_per_file[folder]"] = _median_time(
        lambda: expand_inputs([str(folder)], task="x")) / nfiles * 1e6
    out["expand_us_per_file[list]"] = _median_time(
        lambda: expand_inputs(paths, task="x")) / nfiles * 1e6
    stamps = {p: FileDigests().stamp(p) for p in paths}

    def stamp_all() -> None:
        fd = FileDigests()
        for p in paths:
            fd.stamp(p, stamps[p])

    out["stamp_us_per_file"] = _median_time(stamp_all) / nfiles * 1e6
    return out


# -- 4. content hashing throughput ---------------------------------------------------------


def _make_big_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    block = random.Random(7).randbytes(2**20)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)


def section_hashing(scratch: Path, quick: bool) -> dict[str, Any]:
    """GB/s over a page-cached file: plain read against each hash, and our end-to-end
    rehash of a touched input file."""
    import hashlib

    import blake3
    import xxhash

    import little_pipelines as lp
    from little_pipelines.fingerprint import digest_file

    lp.set_log_level("ERROR")
    size = 2**28 if quick else 2**30
    big = scratch / "big.bin"
    _make_big_file(big, size)
    buf = bytearray(2**20)
    view = memoryview(buf)
    reps = 3 if quick else 5

    def read_plain() -> None:
        with open(big, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass

    def hashed(factory: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            h = factory()
            with open(big, "rb", buffering=0) as f:
                while True:
                    k = f.readinto(buf)
                    if not k:
                        break
                    h.update(view[:k])
            h.digest()
        return run

    methods: dict[str, Callable[[], Any]] = {
        "plain read (1 MiB readinto)": read_plain,
        "our digest_file (hashlib.file_digest, sha256)": lambda: digest_file(str(big)),
        "sha256": hashed(hashlib.sha256),
        "sha1": hashed(hashlib.sha1),
        "md5": hashed(hashlib.md5),
        "blake2b": hashed(hashlib.blake2b),
        "xxh3_64": hashed(xxhash.xxh3_64),
        "xxh3_128": hashed(xxhash.xxh3_128),
        "blake3 (1 thread)": hashed(blake3.blake3),
        "blake3 (all cores)": hashed(lambda: blake3.blake3(max_threads=blake3.blake3.AUTO)),
    }
    read_plain()  # into the page cache
    out: dict[str, Any] = {"file_bytes": size, "gbps": {}}
    for name, fn in methods.items():
        out["gbps"][name] = size / _median_time(fn, reps=reps) / 1e9
    plain = out["gbps"]["plain read (1 MiB readinto)"]
    out["ratio_to_plain"] = {k: v / plain for k, v in out["gbps"].items()}

    # End to end: a task whose input is the big file; touch it (same content) and rerun.
    def make() -> lp.Pipeline:
        p = lp.Pipeline("hash", cache_dir=scratch / "hash-lp")
        p.task(_size_of_input, name="consume", input_files=[str(big)])
        return p

    make().execute()
    st = big.stat()

    def warm() -> None:
        r = make().execute()
        assert len(r.cached) == 1

    def touch() -> None:
        os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns + random.randint(1, 10**9)))

    base = _median_time(warm, reps=reps)
    touched = _median_time(warm, reps=reps, setup=touch)
    out["lp_touched_rerun_s"] = touched
    out["lp_unchanged_rerun_s"] = base
    out["lp_rehash_gbps"] = size / (touched - base) / 1e9
    out["lp_rehash_ratio_to_plain"] = out["lp_rehash_gbps"] / plain
    return out


def _size_of_input(this: Any) -> int:
    return os.path.getsize(this.input_files[0])


# -- 5. a large value: store and load ------------------------------------------------------


def section_large(scratch: Path, quick: bool) -> dict[str, Any]:
    """A 100 MB value (bytes): our store and load against pickle to a plain file."""
    import diskcache
    import xxhash

    import little_pipelines as lp
    from little_pipelines.fingerprint import digest_bytes

    lp.set_log_level("ERROR")
    size = 10_000_000 if quick else 100_000_000
    value = random.Random(3).randbytes(size)
    out: dict[str, Any] = {"value_bytes": size}
    plain = scratch / "plain.pkl"

    def plain_store() -> None:
        with open(plain, "wb") as f:
            f.write(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def plain_dump() -> None:
        with open(plain, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)

    def plain_load() -> None:
        with open(plain, "rb") as f:
            pickle.loads(f.read())

    def plain_load_stream() -> None:
        with open(plain, "rb") as f:
            pickle.load(f)

    def rm_plain() -> None:
        plain.unlink(missing_ok=True)

    out["plain_store_s"] = _median_time(plain_store, setup=rm_plain)
    out["plain_dump_stream_s"] = _median_time(plain_dump, setup=rm_plain)
    out["plain_load_s"] = _median_time(plain_load)
    out["plain_load_stream_s"] = _median_time(plain_load_stream)

    blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out["pickle_dumps_s"] = _median_time(lambda: pickle.dumps(value, protocol=5))
    out["sha256_digest_s"] = _median_time(lambda: digest_bytes(blob))
    out["xxh3_128_digest_s"] = _median_time(lambda: xxhash.xxh3_128_hexdigest(blob))
    out["write_blob_plain_s"] = _median_time(lambda: plain.write_bytes(blob), setup=rm_plain)

    st: dict[str, Any] = {}
    dc_dir = scratch / "large-dc"

    def fresh_dc() -> None:
        if "c" in st:
            st["c"].close()
        st["c"] = diskcache.Cache(str(_fresh(dc_dir)), eviction_policy="none",
                                  size_limit=2**62)

    out["diskcache_set_blob_s"] = _median_time(lambda: st["c"].set("k", blob), setup=fresh_dc)
    out["diskcache_get_blob_s"] = _median_time(lambda: st["c"].get("k"))
    # The likely culprit: diskcache copies bytes through io.BytesIO in 4 MiB reads.
    out["diskcache_set_file_object_s"] = _median_time(
        lambda: _set_via_file(st["c"], plain), setup=fresh_dc)
    # Why: Disk.store writes bytes by iterating io.BytesIO(value), which yields *lines*.
    out["blob_newlines"] = blob.count(b"\n")
    out["write_line_by_line_s"] = _median_time(
        lambda: _write_lines(plain, blob), setup=rm_plain)
    st["c"].close()

    # Ours: a one-task pipeline returning the value (stored = pickled, digested, put).
    # Each store goes to a new folder (a deleted and re-made folder of the same name
    # would also measure the library's handling of a vanished log folder).
    folders = iter(range(10**6))
    current: dict[str, Path] = {}

    def lp_pipeline(folder: Path) -> lp.Pipeline:
        p = lp.Pipeline("large", cache_dir=folder)
        p.task(lambda: value, name="big")
        return p

    def lp_fresh() -> None:
        current["dir"] = scratch / f"large-lp-{next(folders)}"

    def lp_store() -> None:
        r = lp_pipeline(current["dir"]).execute()
        assert len(r.executed) == 1

    out["lp_store_s"] = _median_time(lp_store, setup=lp_fresh)

    def lp_load() -> None:
        q = lp_pipeline(current["dir"])
        assert len(q.get_result("big")) == size
        q.close()

    out["lp_load_s"] = _median_time(lp_load)
    out["lp_store_ratio_to_plain"] = out["lp_store_s"] / out["plain_store_s"]
    out["lp_load_ratio_to_plain"] = out["lp_load_s"] / out["plain_load_s"]
    out["diskcache_set_ratio_to_plain"] = out["diskcache_set_blob_s"] / out["plain_store_s"]
    return out


def _write_lines(path: Path, blob: bytes) -> None:
    import io

    with open(path, "xb") as f:
        for chunk in io.BytesIO(blob):  # what diskcache's Disk._write does with bytes
            f.write(chunk)


def _set_via_file(cache: Any, path: Path) -> None:
    with open(path, "rb") as f:
        cache.set("k", f, read=True)


# -- 6. warm run with 1 GB of cached values vs 1 KB -----------------------------------------


def _big_value(this: Any) -> bytes:
    size = int(os.environ["BENCH_VALUE_BYTES"])
    return random.Random(this.name).randbytes(size)


def warm_big_once(work: Path, size: int) -> float:
    """One run (in this process) of 10 independent tasks each returning `size` bytes."""
    import little_pipelines as lp

    lp.set_log_level("ERROR")
    os.environ["BENCH_VALUE_BYTES"] = str(size)
    p = lp.Pipeline("heavy", cache_dir=work)
    for i in range(10):
        p.task(_big_value, name=f"v{i}")
    t = perf()
    p.execute()
    return perf() - t


def section_warm_big(scratch: Path, quick: bool, env: dict[str, str]) -> dict[str, Any]:
    sizes = {"1 KB": 100, "1 GB": (10_000_000 if quick else 100_000_000)}
    out: dict[str, Any] = {"tasks": 10, "sizes": {}}
    for label, size in sizes.items():
        work = _fresh(scratch / f"warm-big-{size}")
        cold = _child(["warm_big", str(work), str(size)], env)
        warms = []
        for _ in range(7):
            os.sync()  # write back the cold run's gigabyte before timing, not during
            warms.append(_child(["warm_big", str(work), str(size)], env)["s"])
        out["sizes"][label] = {"value_bytes": size, "total_bytes": 10 * size,
                               "cold_s": cold["s"], "warm_s": statistics.median(warms),
                               "warm_all_s": warms}
        shutil.rmtree(work, ignore_errors=True)
    return out


# -- 7. fixed cost of one run -------------------------------------------------------------


def section_fixed(scratch: Path, quick: bool, env: dict[str, str]) -> dict[str, Any]:
    """A one-task pipeline in a fresh process: what every run pays besides its tasks."""
    out: dict[str, Any] = {}
    reps = 3 if quick else 7
    work = scratch / "fixed"
    for tool in ("little_pipelines", "diskcache floor"):
        cold, warm = [], []
        for _ in range(reps):
            _fresh(work)
            (work / "input.txt").write_text("1")
            r = _child_tool(tool, work, "cold", env)
            cold.append((r["build_s"] + r["run_s"]) * 1e3)
            r = _child_tool(tool, work, "warm", env)
            warm.append((r["build_s"] + r["run_s"]) * 1e3)
        out[f"{tool} cold ms"] = statistics.median(cold)
        out[f"{tool} warm ms"] = statistics.median(warm)
    return out


def _child_tool(tool: str, work: Path, phase: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / "child.py"), tool, "chain", "1",
                           str(work), phase], env=env, capture_output=True, text=True, cwd=HERE)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        raise RuntimeError(proc.stderr[-300:])
    result: dict[str, Any] = json.loads(lines[-1][len(MARK):])
    return result


# -- 8. start-up -------------------------------------------------------------------------------


def _wall(cmd: list[str], env: dict[str, str], reps: int) -> tuple[float | None, str]:
    times, err = [], ""
    for _ in range(reps):
        t = perf()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE)
        times.append(perf() - t)
        if proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            return None, err
    return statistics.median(times), err


def section_startup(scratch: Path, quick: bool, env: dict[str, str]) -> dict[str, Any]:
    reps = 3 if quick else 7
    py = sys.executable
    out: dict[str, Any] = {"reps": reps, "import_wall_s": {}, "import_in_process_s": {}}
    out["python_bare_s"], _ = _wall([py, "-c", "pass"], env, reps)
    modules = {"little_pipelines": "little_pipelines",
               # What a user pays before the first task: the facade's names load lazily.
               "little_pipelines + Pipeline": "little_pipelines.pipeline",
               "diskcache": "diskcache",
               "loguru": "loguru", "rich": "rich", "doit": "doit.doit_cmd",
               "joblib": "joblib", "luigi": "luigi", "hamilton": "hamilton.driver",
               "prefect": "prefect"}
    for label, mod in modules.items():
        # One process per sample: its wall time, and the import as timed inside it.
        code = f"import time;t=time.perf_counter();import {mod};print(time.perf_counter()-t)"
        walls, inside = [], []
        for _ in range(reps):
            t = perf()
            proc = subprocess.run([py, "-c", code], env=env, capture_output=True, text=True)
            walls.append(perf() - t)
            inside.append(float(proc.stdout.strip().splitlines()[-1]))
        out["import_wall_s"][label] = statistics.median(walls)
        out["import_in_process_s"][label] = statistics.median(inside)
    # What `import little_pipelines` pulls in (python -X importtime, cumulative µs).
    proc = subprocess.run([py, "-X", "importtime", "-c", "import little_pipelines"], env=env,
                          capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = [x.strip() for x in line[len("import time:"):].split("|")]
            if parts[0].isdigit():
                rows.append((int(parts[1]), parts[2]))
    top = sorted((r for r in rows if not r[1].startswith(" " * 6)), reverse=True)[:12]
    out["importtime_top"] = [{"module": m.strip(), "cumulative_ms": us / 1000} for us, m in top]
    sys_modules = subprocess.run(
        [py, "-c", "import sys,little_pipelines;print(' '.join(sorted({m.split('.')[0] "
                   "for m in sys.modules})))"], env=env, capture_output=True, text=True)
    out["heavy_imported"] = [m for m in ("rich", "dask", "distributed", "cloudpickle", "loguru",
                                         "diskcache", "sqlite3", "multiprocessing",
                                         "concurrent", "uuid", "pickle")
                             if m in sys_modules.stdout.split()]
    lpipe = Path(py).with_name("lpipe")
    if lpipe.exists():
        wall, err = _wall([str(lpipe), "--help"], env, reps)
        out["lpipe_help_s"] = wall
        out["lpipe_error"] = err if wall is None else ""
    else:
        out["lpipe_help_s"] = None
        out["lpipe_error"] = "no lpipe script in the bench venv"
    return out


# -- driver ----------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "diskcache": section_diskcache,
    "lp_ops": section_lp_ops,
    "files": section_files,
    "hashing": section_hashing,
    "large": section_large,
}


def _child(args: list[str], env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / "micro.py"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=HERE)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1][len(MARK):])
    return result


def run_all(scratch: Path, env: dict[str, str], *, quick: bool,
            log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SECTIONS:
        t = perf()
        folder = _fresh(scratch / f"micro-{name}")
        out[name] = _child([name, str(folder), *(["--quick"] if quick else [])], env)
        shutil.rmtree(folder, ignore_errors=True)
        log(f"  micro {name}: {perf() - t:.1f}s"
            + (f"  ERROR {out[name]['error']}" if "error" in out[name] else ""))
    for name, fn in (("warm_big", section_warm_big), ("fixed", section_fixed),
                     ("startup", section_startup)):
        t = perf()
        folder = _fresh(scratch / f"micro-{name}")
        try:
            out[name] = fn(folder, quick, env)
        except Exception as e:  # keep the rest of the report
            out[name] = {"error": f"{type(e).__name__}: {e}"}
        shutil.rmtree(folder, ignore_errors=True)
        log(f"  micro {name}: {perf() - t:.1f}s"
            + (f"  ERROR {out[name]['error']}" if "error" in out[name] else ""))
    return out


def main(argv: list[str]) -> int:
    if argv[0] == "warm_big":
        print(MARK + json.dumps({"s": warm_big_once(Path(argv[1]), int(argv[2]))}))
        return 0
    name, scratch = argv[0], Path(argv[1])
    result = SECTIONS[name](scratch, "--quick" in argv)
    print(MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
