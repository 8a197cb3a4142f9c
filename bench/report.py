"""Turn the results JSON into docs/benchmarks.md and docs/benchmark_chart.png."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from workloads import SHAPES, affected

FLOOR = "diskcache floor"
PLAIN = "plain loop"
OURS = "little_pipelines"
CLASSIC = "little_pipelines (classic form)"
TOOL_ORDER = [PLAIN, FLOOR, OURS, "little_pipelines (INFO console)",
              "little_pipelines (classic form)", "doit", "joblib", "hamilton", "luigi", "prefect"]
#: Issue 3's figures seen for the peers at N=1,000 chain (µs/task), for comparison.
ISSUE_FIGURES = {
    "cold": {FLOOR: 210, "doit": 350, "joblib": 510, "hamilton": 2000, "luigi": 4900,
             "prefect": 20000},
    "warm": {FLOOR: 24, "doit": 117, "joblib": 240, "hamilton": 570, "prefect": 20000},
}


# -- aggregation -----------------------------------------------------------------------------


def us_per_task(run: dict[str, Any]) -> float:
    """In-process cost per task: building the graph plus running it (µs)."""
    return (run["build_s"] + run["run_s"]) / run["n"] * 1e6


def aggregate(runs: list[dict[str, Any]]) -> dict[tuple[str, str, int, str], dict[str, Any]]:
    """Medians per (tool, shape, n, phase)."""
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["tool"], r["shape"], r["n"], r["phase"])].append(r)
    out = {}
    for key, rs in groups.items():
        good = [r for r in rs if "error" not in r]
        agg: dict[str, Any] = {"runs": len(good),
                               "errors": [r["error"] for r in rs if "error" in r]}
        if good:
            agg.update(
                us=statistics.median(us_per_task(r) for r in good),
                run_us=statistics.median(r["run_s"] / r["n"] * 1e6 for r in good),
                build_ms=statistics.median(r["build_s"] * 1e3 for r in good),
                wall=statistics.median(r["wall_s"] for r in good),
                rss=statistics.median(r["max_rss_mb"] for r in good),
                setup=statistics.median(r.get("setup_s", 0.0) for r in good),
                executed=sorted({r["executed"] for r in good}),
                checks=sorted({r["check"] for r in good}),
                spread=(min(us_per_task(r) for r in good), max(us_per_task(r) for r in good)),
            )
        out[key] = agg
    return out


# -- formatting helpers ----------------------------------------------------------------------


def f_us(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.0f}"
    return f"{x:.1f}"


def f_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}×" if x < 10 else f"{x:,.0f}×"


def f_s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def tools_in(agg: dict, n: int | None = None) -> list[str]:
    present = {k[0] for k in agg if n is None or k[2] == n}
    return [t for t in TOOL_ORDER if t in present] + sorted(present - set(TOOL_ORDER))


def cell(agg: dict, tool: str, shape: str, n: int, phase: str) -> dict[str, Any] | None:
    a = agg.get((tool, shape, n, phase))
    return a if a and "us" in a else None


def ratio(agg: dict, tool: str, shape: str, n: int, phase: str) -> float | None:
    a, f = cell(agg, tool, shape, n, phase), cell(agg, FLOOR, shape, n, phase)
    if a is None or f is None or f["us"] <= 0:
        return None
    return a["us"] / f["us"]


# -- sections -------------------------------------------------------------------------------


def section_machine(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    v = m.get("versions", {})
    dirty = m.get("src_uncommitted") or []
    rows = [
        ["CPU", f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores)"],
        ["memory", f"{m.get('memory_gib', '?')} GiB"],
        ["OS / temp filesystem", f"{m.get('os', '?')} / {m.get('filesystem', '?')}"],
        ["Python", m.get("python", "?")],
        ["load average (1/5/15 min)", _load(data)],
        ["little_pipelines", f"{v.get('little-pipelines', '?')} at commit "
                             f"`{m.get('git_commit', '?')}`"
                             + (f" plus uncommitted changes in {', '.join(dirty)}"
                                if dirty else "")
                             + (f"; a copy of src/ taken {m['source_taken']} (digest "
                                f"`{m['source_digest']}`) was measured throughout"
                                if m.get("source_digest") else "")],
        ["peers", ", ".join(f"{k} {v.get(k, '?')}" for k in
                            ("doit", "joblib", "luigi", "apache-hamilton", "prefect"))],
        ["libraries", ", ".join(f"{k} {v.get(k, '?')}" for k in
                                ("diskcache", "loguru", "rich", "matplotlib", "xxhash", "blake3"))],
    ]
    return table(["", ""], rows, "ll")


def _load(data: dict[str, Any]) -> str:
    before, after = data.get("load_before"), data.get("load_after")
    if not before or not after:
        return data.get("load_note", "not recorded")
    fmt = "/".join(f"{x:.2f}" for x in before), "/".join(f"{x:.2f}" for x in after)
    note = data.get("load_note", "")
    return f"{fmt[0]} before, {fmt[1]} after (the harness keeps about 1 core busy)" + (
        f"; {note}" if note else "")


def section_headline(agg: dict) -> str:
    n = 1000
    rows = []
    for tool in tools_in(agg, n):
        row = [tool]
        for shape in SHAPES:
            for phase in ("cold", "warm"):
                c = cell(agg, tool, shape, n, phase)
                row += [f_us(c["us"]) if c else "—", f_ratio(ratio(agg, tool, shape, n, phase))]
        rows.append(row)
    header = ["tool", "chain cold µs/task", "× set floor", "chain warm µs/task", "× get floor",
              "fan cold µs/task", "× set floor", "fan warm µs/task", "× get floor"]
    return table(header, rows)


def section_phase(agg: dict, phase: str) -> str:
    rows = []
    sizes = sorted({k[2] for k in agg})
    for tool in tools_in(agg):
        for n in sizes:
            if not any(cell(agg, tool, s, n, phase) or agg.get((tool, s, n, phase))
                       for s in SHAPES):
                continue
            row = [tool, f"{n:,}"]
            for shape in SHAPES:
                c = cell(agg, tool, shape, n, phase)
                a = agg.get((tool, shape, n, phase))
                if c is None:
                    why = "error" if a and a.get("errors") else "not run"
                    row += [why, "", "", ""]
                    continue
                flag = "" if c["checks"] == ["ok"] else " ⚠"
                row += [f_us(c["us"]) + flag, f_ratio(ratio(agg, tool, shape, n, phase)),
                        f_s(c["wall"]), f"{c['rss']:.0f}"]
            rows.append(row)
    header = ["tool", "N", "chain µs/task", "× floor", "wall s", "RSS MB",
              "fan µs/task", "× floor", "wall s", "RSS MB"]
    return table(header, rows)


def section_problems(agg: dict) -> str:
    lines = []
    for (tool, shape, n, phase), a in sorted(agg.items()):
        if a.get("errors"):
            lines.append(f"- {tool}, {shape}, N={n:,}, {phase}: {a['errors'][0]}")
        elif a.get("checks") and a["checks"] != ["ok"]:
            lines.append(f"- {tool}, {shape}, N={n:,}, {phase}: {'; '.join(a['checks'])}")
    return "\n".join(lines) or "None: every run ran the expected number of tasks and " \
                                "returned the expected value."


def section_invalidation(agg: dict) -> tuple[str, list[dict[str, Any]]]:
    rows, checks = [], []
    sizes = sorted({k[2] for k in agg if k[3] == "invalidate"})
    for n in sizes:
        for shape in SHAPES:
            for tool in tools_in(agg, n):
                c = cell(agg, tool, shape, n, "invalidate")
                if c is None:
                    continue
                w = cell(agg, tool, shape, n, "warm")
                k = cell(agg, tool, shape, n, "cold")
                k_aff = affected(shape, n)
                bound = None
                if w and k:
                    bound = (w["us"] * n + k["us"] * k_aff) / n
                ran = ", ".join(map(str, c["executed"]))
                row = [f"{n:,}", shape, tool, f"{ran} (expect {k_aff if tool != PLAIN else n})",
                       f_us(c["us"]), f_us(bound),
                       ("yes" if bound and c["us"] <= bound else
                        f"no (+{(c['us'] / bound - 1) * 100:.0f}%)" if bound else "—"),
                       f_s(c["wall"])]
                rows.append(row)
                if tool == OURS:
                    checks.append({"n": n, "shape": shape, "us": c["us"], "bound": bound,
                                   "ran": c["executed"], "expect": k_aff})
    header = ["N", "shape", "tool", "tasks run", "µs/task", "bound: warm + cold of those",
              "within bound", "wall s"]
    return table(header, rows, "rllrrrlr"), checks


def section_scale(agg: dict) -> str:
    rows = []
    sizes = sorted({k[2] for k in agg if k[0] == OURS})
    for tool in (OURS, CLASSIC, FLOOR, "doit", "joblib"):
        for shape in SHAPES:
            for phase in ("cold", "warm"):
                vals = [cell(agg, tool, shape, n, phase) for n in sizes]
                if not any(vals):
                    continue
                us = [v["us"] if v else None for v in vals]
                growth = (us[-1] / us[0]) if us[0] and us[-1] else None
                rss = vals[-1]["rss"] if vals[-1] else None
                rows.append([tool, shape, phase, *[f_us(u) for u in us],
                             f_ratio(growth), f"{rss:.0f}" if rss else "—"])
    header = ["tool", "shape", "phase", *[f"N={n:,}" for n in sizes],
              f"N={sizes[-1]:,} / N={sizes[0]:,}" if sizes else "", "RSS MB at largest N"]
    return table(header, rows, "lll" + "r" * (len(sizes) + 2))


# -- targets -----------------------------------------------------------------------------------


def targets(data: dict[str, Any], agg: dict, inval: list[dict[str, Any]]) -> str:
    micro = data.get("micro", {})
    rows: list[list[str]] = []

    def verdict(value: float | None, limit: float, lower_is_better: bool = True) -> str:
        if value is None:
            return "not measured"
        ok = value <= limit if lower_is_better else value >= limit
        if ok:
            return "**met**"
        miss = value / limit if lower_is_better else limit / value
        return f"**missed** by {miss:.1f}×"

    sizes = sorted({k[2] for k in agg if k[0] == OURS})
    for phase, limit_name in (("cold", "diskcache-set floor"), ("warm", "diskcache-get floor")):
        for n in [s for s in sizes if s >= 1000 or phase == "warm"]:
            for shape in SHAPES:
                r = ratio(agg, OURS, shape, n, phase)
                c = cell(agg, OURS, shape, n, phase)
                f = cell(agg, FLOOR, shape, n, phase)
                if r is None or c is None or f is None:
                    continue
                rows.append([f"{phase} ≤ 1.0× {limit_name}, N={n:,} {shape}",
                             f"{f_us(c['us'])} vs {f_us(f['us'])} µs/task = {f_ratio(r)}",
                             verdict(r, 1.0)])
    for chk in inval:
        ok_ran = chk["ran"] == [chk["expect"]]
        within = chk["bound"] is not None and chk["us"] <= chk["bound"]
        rows.append([f"invalidation, N={chk['n']:,} {chk['shape']}: only the tasks below run; "
                     f"cost ≤ warm + their cold cost",
                     f"ran {chk['ran']} (expect {chk['expect']}); {f_us(chk['us'])} vs bound "
                     f"{f_us(chk['bound'])} µs/task",
                     "**met**" if ok_ran and within else
                     ("**missed**: wrong tasks ran" if not ok_ran else
                      f"**missed** by {chk['us'] / chk['bound']:.2f}×")])
    if len(sizes) >= 2:
        base_n = 1000 if 1000 in sizes and max(sizes) > 1000 else sizes[0]
        for shape in SHAPES:
            for phase in ("cold", "warm"):
                a = cell(agg, OURS, shape, base_n, phase)
                b = cell(agg, OURS, shape, sizes[-1], phase)
                small = cell(agg, OURS, shape, sizes[0], phase)
                if a and b:
                    g = b["us"] / a["us"]
                    extra = (f"; N={sizes[0]:,}: {f_us(small['us'])}" if small and
                             base_n != sizes[0] else "")
                    rows.append([f"scale: flat per-task cost up to N={sizes[-1]:,}, "
                                 f"{shape} {phase}",
                                 f"N={base_n:,}: {f_us(a['us'])} → N={sizes[-1]:,}: "
                                 f"{f_us(b['us'])} µs/task ({g:.2f}×){extra}",
                                 "**met**" if g <= 1.15 else f"**missed**: grows {g:.2f}× "
                                 f"(≤1.15× taken as flat)"])
        big = max(sizes)
        rss = [cell(agg, OURS, s, big, p) for s in SHAPES for p in ("cold", "warm", "invalidate")]
        peak = max((c["rss"] for c in rss if c), default=None)
        rows.append([f"memory < 200 MB at N={big:,}", f"peak RSS {f_s(peak)} MB",
                     verdict(peak, 200.0)])
    files = micro.get("files", {})
    if "os_stat_us_per_file" in files:
        for tag in ("folder", "list"):
            per = files[f"warm_us_per_file[{tag}]"]
            st = files["os_stat_us_per_file"]
            rows.append([f"unchanged input file costs one stat ({files['files']:,} files as a "
                         f"{tag})", f"{per:.1f} µs/file vs os.stat {st:.1f} µs", verdict(
                             per / st, 1.5)])
    hashing = micro.get("hashing", {})
    if "lp_rehash_ratio_to_plain" in hashing:
        rows.append(["changed file hashes at ≥ 75% of plain read throughput",
                     f"{hashing['lp_rehash_gbps']:.2f} GB/s vs plain "
                     f"{hashing['gbps']['plain read (1 MiB readinto)']:.2f} GB/s = "
                     f"{hashing['lp_rehash_ratio_to_plain'] * 100:.0f}%",
                     verdict(hashing["lp_rehash_ratio_to_plain"], 0.75, lower_is_better=False)])
    large = micro.get("large", {})
    if "lp_store_s" in large:
        mb = large["value_bytes"] / 1e6
        rows.append([f"store a {mb:.0f} MB value ≤ 2× pickle to a plain file",
                     f"{large['lp_store_s'] * 1e3:.0f} ms vs {large['plain_store_s'] * 1e3:.0f} ms"
                     f" = {large['lp_store_ratio_to_plain']:.2f}×",
                     verdict(large["lp_store_ratio_to_plain"], 2.0)])
        rows.append([f"load a {mb:.0f} MB value ≤ 1.5× reading that file",
                     f"{large['lp_load_s'] * 1e3:.0f} ms vs {large['plain_load_s'] * 1e3:.0f} ms"
                     f" = {large['lp_load_ratio_to_plain']:.2f}×",
                     verdict(large["lp_load_ratio_to_plain"], 1.5)])
    wb = micro.get("warm_big", {}).get("sizes")
    if wb:
        small, heavy = wb["1 KB"], wb["1 GB"]
        r = heavy["warm_s"] / small["warm_s"]
        rows.append([f"a warm run never loads a value: {heavy['total_bytes'] / 1e9:.1f} GB "
                     f"cached vs {small['total_bytes'] / 1e3:.0f} KB",
                     f"{heavy['warm_s'] * 1e3:.1f} ms vs {small['warm_s'] * 1e3:.1f} ms "
                     f"({r:.2f}×)", "**met**" if r < 1.5 else f"**missed** ({r:.1f}×)"])
    st = micro.get("startup", {})
    if "import_wall_s" in st:
        imp = st["import_wall_s"].get("little_pipelines")
        rows.append(["`import little_pipelines` < 150 ms whole-process",
                     f"{imp * 1e3:.0f} ms (in-process "
                     f"{st['import_in_process_s']['little_pipelines'] * 1e3:.0f} ms)",
                     verdict(imp * 1e3, 150.0)])
        if st.get("lpipe_help_s") is not None:
            rows.append(["`lpipe --help` < 300 ms whole-process",
                         f"{st['lpipe_help_s'] * 1e3:.0f} ms",
                         verdict(st["lpipe_help_s"] * 1e3, 300.0)])
        else:
            rows.append(["`lpipe --help` < 300 ms whole-process",
                         f"not yet available ({st.get('lpipe_error', '')})", "not measured"])
    return table(["target (issue 3)", "measured (medians)", "verdict"], rows, "lll")


# -- micro sections ---------------------------------------------------------------------------


def section_micro(data: dict[str, Any]) -> str:
    micro = data.get("micro", {})
    parts = []
    dc = micro.get("diskcache", {})
    if "set_us[default]" in dc:
        rows = [
            ["`set` alone (autocommit)", f_us(dc["set_us[default]"]), f_us(dc["set_us[lp]"])],
            ["`set` inside one transaction of 1,000",
             f_us(dc["set_in_one_transaction_us[default]"]),
             f_us(dc["set_in_one_transaction_us[lp]"])],
            ["`get` (hit)", f_us(dc["get_us[default]"]), f_us(dc["get_us[lp]"])],
        ]
        parts.append("### diskcache primitives (µs per operation, 1,000 str keys, int values)\n\n"
                     + table(["operation", "default Cache()",
                              "Cache(eviction_policy='none')"], rows))
        rows = [
            ["our `Store.put(name, blob, record)` (a transaction writing the task's row: its "
             "record and small value in one statement)", f_us(dc.get("store_put_us"))],
            ["our `Store.records(names)` (one `SELECT` of the record column per 500 names, in "
             "a transaction), per record", f_us(dc.get("store_records_us"))],
            ["our `Store.record(name)` one by one", f_us(dc.get("store_record_one_us"))],
            ["bare SQL of that layout: one row per task (record + small value), autocommit "
             "`INSERT OR REPLACE`", f_us(dc.get("raw_row_autocommit_us"))],
            ["bare SQL: the same row in an explicit `BEGIN IMMEDIATE` … `COMMIT`",
             f_us(dc.get("raw_row_begin_commit_us"))],
            ["bare SQL: one `SELECT` of all those rows, unpickling each record, per row",
             f_us(dc.get("raw_select_all_us"))],
        ]
        parts.append(f"Our store, called directly, and the bare SQL of its layout (µs per "
                     f"task; a record pickles to {dc['record_pickled_bytes']} bytes; same "
                     f"pragmas as diskcache: WAL, synchronous=NORMAL):\n\n"
                     + table(["operation", "µs/task"], rows))
    ops = micro.get("lp_ops", {})
    if ops and "error" not in ops:
        names = {
            "log_info_same_task_file_us": "one `this.logger.info` line, console at ERROR (to "
                                          "the task's file)",
            "log_info_64_tasks_round_robin_us": "the same, 64 tasks in turn",
            "timed_context_manager_us": "`log.timed` around nothing (one PERF record)",
            "loguru_bind_us": "`logger.bind(...)`",
            "pickle_dumps_int_us": "`pickle.dumps(46)`",
            "digest_bytes_small_us": "`digest_bytes` of a small pickle",
            "state_fingerprint_us": "`State.fingerprint` (repr + hash)",
            "now_us": "`expire._get_now()` (the clock seam)",
            "expiry_fields_us": "`expiry_fields`",
            "task_outcome_us": "`TaskOutcome(...)`",
            "reason_str_us": "`str(Reason)` joined",
            "os_stat_us": "`os.stat` (for scale)",
            "dependencies_property_us": "`task.dependencies` (1 dependency)",
            "graphlib_per_node_us": "graphlib add + prepare + get_ready/done, per node",
            "create_file_and_write_us": "file system: create a new file, append a line, close "
                                        "(what the first log line of a task costs)",
            "append_existing_file_us": "file system: open an existing file, append, close",
        }
        rows = [[names.get(k, k), f_us(v) if isinstance(v, float) else str(v)]
                for k, v in ops.items()]
        parts.append("### Our per-task operations in isolation (µs per call)\n\n"
                     + table(["operation", "µs"], rows))
    files = micro.get("files", {})
    if "os_stat_us_per_file" in files:
        rows = [
            ["plain `os.stat` loop", f"{files['os_stat_us_per_file']:.1f}"],
            ["our warm run, input_files = one folder", f"{files['warm_us_per_file[folder]']:.1f}"],
            ["our warm run, input_files = list of paths", f"{files['warm_us_per_file[list]']:.1f}"],
            ["of which `expand_inputs` (folder: rglob + is_file)",
             f"{files['expand_us_per_file[folder]']:.1f}"],
            ["of which `expand_inputs` (list: isfile per path)",
             f"{files['expand_us_per_file[list]']:.1f}"],
            ["of which `FileDigests.stamp` (stat, compare)", f"{files['stamp_us_per_file']:.1f}"],
        ]
        parts.append(f"### Unchanged input files ({files['files']:,} small files, one task)\n\n"
                     "A warm run of one task with the files as inputs, minus the same task "
                     "without inputs, per file:\n\n" + table(["", "µs per file"], rows))
    h = micro.get("hashing", {})
    if "gbps" in h:
        rows = [[k, f"{v:.2f}", f"{h['ratio_to_plain'][k] * 100:.0f}%"] for k, v in
                sorted(h["gbps"].items(), key=lambda kv: -kv[1])]
        rows.append(["our end-to-end rehash (touched input file, same content)",
                     f"{h['lp_rehash_gbps']:.2f}", f"{h['lp_rehash_ratio_to_plain'] * 100:.0f}%"])
        size = h["file_bytes"] / 2**30
        parts.append(f"### Content hashing of a page-cached {size:g} GiB file\n\n"
                     + table(["method", "GB/s", "of plain read"], rows))
    lg = micro.get("large", {})
    if "lp_store_s" in lg:
        ms = {k: v * 1e3 for k, v in lg.items() if k.endswith("_s")}
        rows = [
            ["plain: `pickle.dumps` + write to a file (the yardstick)",
             f"{ms['plain_store_s']:.0f}"],
            ["plain: `pickle.dump(value, file)` (streams, no copy)",
             f"{ms['plain_dump_stream_s']:.0f}"],
            ["plain: read the file + `pickle.loads` (the yardstick)", f"{ms['plain_load_s']:.0f}"],
            ["plain: `pickle.load(file)`", f"{ms['plain_load_stream_s']:.0f}"],
            ["`pickle.dumps` alone", f"{ms['pickle_dumps_s']:.0f}"],
            ["sha256 of the pickled bytes (our `digest_bytes`)", f"{ms['sha256_digest_s']:.0f}"],
            ["xxh3_128 of the pickled bytes", f"{ms['xxh3_128_digest_s']:.1f}"],
            ["write the pickled bytes to a plain file", f"{ms['write_blob_plain_s']:.0f}"],
            ["diskcache `set(key, bytes)`", f"{ms['diskcache_set_blob_s']:.0f}"],
            ["diskcache `set(key, open_file, read=True)`",
             f"{ms['diskcache_set_file_object_s']:.0f}"],
            [f"why `set(key, bytes)` is slow: it writes `for chunk in io.BytesIO(value)`, i.e. "
             f"line by line ({lg.get('blob_newlines', 0):,} b'\\n' in these bytes)",
             f"{ms.get('write_line_by_line_s', float('nan')):.0f}"],
            ["diskcache `get`", f"{ms['diskcache_get_blob_s']:.0f}"],
            ["**ours: a one-task pipeline storing the value**", f"**{ms['lp_store_s']:.0f}**"],
            ["**ours: `get_result` from a new Pipeline object**", f"**{ms['lp_load_s']:.0f}**"],
        ]
        parts.append(f"### A {lg['value_bytes'] / 1e6:.0f} MB value (bytes), stored and loaded\n\n"
                     + table(["operation", "ms"], rows))
    wb = micro.get("warm_big", {}).get("sizes")
    if wb:
        rows = [[label, f"{v['total_bytes'] / 1e6:,.3f} MB", f"{v['cold_s'] * 1e3:.0f}",
                 f"{v['warm_s'] * 1e3:.1f}"] for label, v in wb.items()]
        parts.append("### Warm run over big cached values (10 independent tasks, fresh processes)"
                     "\n\n" + table(["case", "cached", "cold ms", "warm ms (median of 7)"], rows))
    fx = micro.get("fixed", {})
    if fx and "error" not in fx:
        rows = [[k.rsplit(" ", 2)[0], k.rsplit(" ", 2)[1], f"{v:.1f}"] for k, v in fx.items()]
        parts.append("### Fixed cost of one run (a one-task pipeline, fresh process, build + "
                     "run, in-process)\n\n" + table(["tool", "phase", "ms"], rows, "llr"))
    st = micro.get("startup", {})
    if "import_wall_s" in st:
        bare = st.get("python_bare_s") or 0.0
        rows = [[k, f"{v * 1e3:.0f}", f"{(v - bare) * 1e3:.0f}",
                 f"{st['import_in_process_s'][k] * 1e3:.0f}"]
                for k, v in st["import_wall_s"].items() if v is not None]
        lp_help = st.get("lpipe_help_s")
        rows.append(["`lpipe --help`", f"{lp_help * 1e3:.0f}" if lp_help else
                     f"not yet available: {st.get('lpipe_error', '')}",
                     f"{(lp_help - bare) * 1e3:.0f}" if lp_help else "—", "—"])
        top = ", ".join(f"{r['module']} {r['cumulative_ms']:.0f} ms"
                        for r in st.get("importtime_top", [])[:8])
        parts.append(f"### Start-up (medians of {st['reps']} fresh processes; bare "
                     f"`python -c pass` = {bare * 1e3:.0f} ms)\n\n"
                     + table(["import", "whole process ms", "minus bare python", "in-process ms"],
                             rows)
                     + f"\n\n`python -X importtime -c 'import little_pipelines'`, largest "
                       f"cumulative: {top}. Modules loaded by the import: "
                       f"{', '.join(st.get('heavy_imported', []))}.")
    return "\n\n".join(parts)


def section_profile(data: dict[str, Any]) -> str:
    prof = data.get("profile", {})
    if not prof:
        return "Not run."
    reps = prof["reps"]
    parts = [f"py-spy (`--idle`, {prof['rate_hz']} Hz) over {reps['cold']} cold and "
             f"{reps['warm']} warm runs of the N={prof['n']:,} {prof['shape']} (in one process "
             f"per phase), in µs per task. A sample is charged to the "
             f"innermost frame of our package on its stack (the *room*), including whatever "
             f"library that room called (diskcache, loguru, sqlite3, pickle)."]
    for phase in ("cold", "warm"):
        sp = prof.get(f"pyspy_{phase}", {})
        if "error" in sp:
            parts.append(f"**{phase}**: py-spy failed: {sp['error']}")
            continue
        rows = [[r["name"], f_us(r["us_per_task"]), f"{r['share'] * 100:.0f}%"]
                for r in sp["by_room"]]
        split = ", ".join(f"{r['name']} {f_us(r['us_per_task'])}" for r in sp.get("by_part", []))
        parts.append(f"#### {phase.capitalize()} run: {f_us(sp['us_per_task_total'])} µs/task "
                     f"sampled ({sp['samples']} samples; {split})\n\nBy room:\n\n"
                     + table(["room", "µs/task", "share"], rows))
        rows = [[r["name"], f_us(r["us_per_task"]), f"{r['share'] * 100:.0f}%"]
                for r in sp["inclusive_ours"][:22]]
        parts.append("Our functions, inclusive (time with everything they call):\n\n"
                     + table(["function", "µs/task", "share"], rows))
        rows = [[r["name"], f_us(r["us_per_task"]), f"{r['share'] * 100:.0f}%"]
                for r in sp["self_top"][:15]]
        parts.append("Top of stack (self time):\n\n" + table(["function", "µs/task", "share"],
                                                              rows))
        cp = prof.get(f"cprofile_{phase}", [])
        if cp and "error" not in cp[0]:
            rows = [[r["name"], f"{r['calls_per_task']:.2f}", f_us(r["tottime_us_per_task"]),
                     f_us(r["cumtime_us_per_task"])] for r in cp[:15]]
            parts.append("cProfile, top by own time (its overhead inflates small calls; read the "
                         "call counts):\n\n"
                         + table(["function", "calls/task", "own µs/task", "cum µs/task"], rows))
    return "\n\n".join(parts)


# -- chart -----------------------------------------------------------------------------------


def chart(agg: dict, path: Path, n: int = 1000) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tools = [t for t in tools_in(agg, n) if t != PLAIN]
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.4), sharey=True)
    colors = {"cold": "#4C72B0", "warm": "#DD8452"}
    for ax, shape in zip(axes, SHAPES, strict=True):
        here = [t for t in tools if cell(agg, t, shape, n, "cold")]
        order = sorted(here, key=lambda t: cell(agg, t, shape, n, "cold")["us"])  # type: ignore
        xs = range(len(order))
        width = 0.4
        for j, phase in enumerate(("cold", "warm")):
            for x, t in zip(xs, order, strict=True):
                c = cell(agg, t, shape, n, phase)
                if c is None:
                    continue
                odd = t == "luigi" and phase == "warm"  # checks only the final target
                bar = ax.bar(x + (j - 0.5) * width, c["us"], width, color=colors[phase],
                             hatch="//" if odd else None, edgecolor="white" if odd else None,
                             label=phase if x == 0 else None)[0]
                ax.annotate(f_us(c["us"]) + ("*" if odd else ""),
                            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7.5, rotation=90,
                            xytext=(0, 2), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xticks(list(xs))
        labels = [t.replace("little_pipelines (", "little_pipelines\n(") for t in order]
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8.5)
        for lbl, t in zip(ax.get_xticklabels(), order, strict=True):
            if t == OURS:
                lbl.set_fontweight("bold")
        ax.set_title(f"{shape}, N = {n:,} trivial tasks")
        ax.grid(axis="y", which="both", alpha=0.25)
        ax.set_ylim(1, ax.get_ylim()[1] * 4)
    axes[0].set_ylabel("in-process µs per task (log scale; lower is better)")
    axes[0].legend(title="run")
    fig.suptitle("Per-task overhead per tool: cold run (empty cache) and warm re-run "
                 "(everything cached), medians", fontsize=11)
    fig.text(0.01, 0.01, "* Luigi's warm run asks only the final task whether its output "
             "exists, and checks nothing upstream.  Floor = one diskcache set (cold) or get "
             "(warm) per task.", fontsize=8, color="#444")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


def section_caveats(data: dict[str, Any], agg: dict) -> str:
    ops = data.get("micro", {}).get("lp_ops", {})
    create, append = ops.get("create_file_and_write_us"), ops.get("append_existing_file_us")
    rows = []
    for tool in tools_in(agg, 1000):
        for shape in SHAPES:
            c = cell(agg, tool, shape, 1000, "cold")
            if c:
                lo, hi = c["spread"]
                rows.append([tool, shape, f_us(c["us"]), f"{f_us(lo)} – {f_us(hi)}"])
    made = (f"In this run's micro-benchmark, creating a file and appending a line cost "
            f"{f_us(create)} µs against {f_us(append)} µs for appending to an existing one. "
            if isinstance(create, float) and isinstance(append, float) else "")
    return (
        "The machine is a VM shared with other sessions of the project, and its file system "
        "is the noisiest part of it: creating a small file cost anywhere from 8 to 240 µs in "
        "checks made during the same afternoon, on the same disk. " + made
        + "Tools that create a file per task have cold figures that move with it: ours writes "
        "one log file per task (the PERF line of its function), joblib makes a folder and "
        "files per call, Luigi one target per task. Run alone in a quiet moment, our cold "
        "N=1,000 chain measured 260–330 µs/task, against the median below. Warm runs, which "
        "create no files, and the floors are steady. Spread of the cold runs at N = 1,000 "
        "(min – max of the repetitions, µs/task):\n\n"
        + table(["tool", "shape", "median", "min – max"], rows, "llrr"))


# -- the document -------------------------------------------------------------------------------


# -- issue 14 --------------------------------------------------------------------------------

_CELLS = (("chain", "cold"), ("fan", "cold"), ("chain", "warm"), ("fan", "warm"),
          ("chain", "invalidate"))


def section_forms(agg: dict) -> str:
    """Both task forms beside the diskcache floor and doit, every size, every cell."""
    rows = []
    sizes = sorted({k[2] for k in agg if k[0] in (OURS, CLASSIC)})
    for n in sizes:
        for tool in (FLOOR, "doit", OURS, CLASSIC):
            row = [f"{n:,}", tool]
            for shape, phase in _CELLS:
                c = cell(agg, tool, shape, n, phase)
                d = cell(agg, "doit", shape, n, phase)
                if c is None:
                    row.append("—")
                    continue
                text = f_us(c["us"])
                if tool in (OURS, CLASSIC):
                    floor = ratio(agg, tool, shape, n, phase)
                    faster = d["us"] / c["us"] if d else None
                    text += f" ({f_ratio(floor)} floor; doit ÷ us {f_ratio(faster)})"
                row.append(text)
            rows.append(row)
    header = ["N", "tool", "chain cold", "fan cold", "chain warm", "fan warm",
              "chain, half invalidated"]
    return table(header, rows, "ll" + "r" * len(_CELLS))


def section_big(data: dict[str, Any]) -> str:
    big = data.get("big")
    if not big:
        return "Not run (`--skip big`)."
    names = {"pickle_dump": "pickle.dump to a file (floor)",
             "diskcache_set": "diskcache Cache.set", "lp_store": "ours: store (execute)",
             "pickle_load": "pickle.load from a file (floor)",
             "diskcache_get": "diskcache Cache.get", "lp_load": "ours: load (get_result)",
             "lp_show": "ours: `lpipe show` (preview)",
             "lp_threads": "ours: fed to a task on threads",
             "lp_processes": "ours: fed to a task on processes"}
    floor = {"diskcache_set": "pickle_dump", "lp_store": "pickle_dump",
             "diskcache_get": "pickle_load", "lp_load": "pickle_load",
             "lp_processes": "lp_threads"}
    rows = []
    for kind, ops in big["kinds"].items():
        for op, label in names.items():
            r = ops.get(op)
            if r is None:
                continue
            if "error" in r:
                rows.append([kind, label, "error", "", "", ""])
                continue
            base = ops.get(floor.get(op, ""), {})
            t_ratio = r["s"] / base["s"] if base.get("s") else None
            m_ratio = (r["peak_growth_mb"] / base["peak_growth_mb"]
                       if base.get("peak_growth_mb", 0) > 1 else None)
            rows.append([kind, label, f_s(r["s"]), f_ratio(t_ratio),
                         f"{r['peak_growth_mb']:.0f}", f_ratio(m_ratio)])
    header = ["value", "operation", "s", "× time of its floor", "peak growth MB",
              "× peak of its floor"]
    return (f"A {big['size_mb']} MB value (`array`: float64 numpy array; `frame`: a "
            f"DataFrame of five float64 columns); medians of {big['reps']} fresh processes "
            f"per operation, interleaved. \"peak growth\" is the process's peak resident "
            f"memory during the operation above its resident memory before it (the value, "
            f"made first, is not counted for stores; for the executors, the driver's memory: "
            f"the worker process reads the value from its file). Floors: stores against "
            f"`pickle.dump`, "
            f"loads against `pickle.load`, processes against threads. doit: no counterpart "
            f"(its values go through JSON into its dbm file)."
            + (f" This section was {big['rerun']}." if big.get("rerun") else "") + "\n\n"
            + table(header, rows, "llrrrr"))


def section_delay(data: dict[str, Any]) -> str:
    d = data.get("delay")
    if not d:
        return "Not run (`--skip delay`)."
    rows = [[t, f"{d['median_ms'][t]:.1f}", f"{d['max_ms'][t]:.1f}"] for t in d["median_ms"]]
    rows += [[t, "error", e[:80]] for t, e in d.get("errors", {}).items()]
    return (f"Task `a` ends; task `b` then spins the CPU in pure Python for {d['spin_s']:.0f} s. "
            f"A watcher process polls the store (~0.5 ms) until a's result shows. Delay = the "
            f"watcher's time minus a's end, {d['reps']} fresh runs each, interleaved.\n\n"
            + table(["tool", "median ms", "max ms"], rows, "lrr"))


def section_import(data: dict[str, Any]) -> str:
    st = data.get("micro", {}).get("startup", {})
    if "import_in_process_s" not in st:
        return "Not run (`--skip micro`)."
    imp = st["import_in_process_s"]
    rows = [[k, f"{imp[k] * 1e3:.0f}", f"{st['import_wall_s'][k] * 1e3:.0f}"]
            for k in ("little_pipelines", "little_pipelines + Pipeline", "doit", "loguru",
                      "rich", "diskcache") if k in imp]
    help_s = st.get("lpipe_help_s")
    return (table(["import", "ms in process", "ms wall (python -c)"], rows, "lrr")
            + f"\n\n`lpipe --help`: {f_s(help_s)} s wall (target < 0.150 s); bare "
              f"`python -c pass`: {f_s(st.get('python_bare_s'))} s.")


def write(data: dict[str, Any], docs: Path) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    runs = data.get("runs", [])
    agg = aggregate(runs)
    drew = chart(agg, docs / "benchmark_chart.png") if runs else False
    inval_table, inval_checks = section_invalidation(agg)
    minutes = data.get("duration_s", 0) / 60
    pf = data.get("prefect_first_start", {})
    prefect_setup = [a["setup"] for k, a in agg.items() if k[0] == "prefect" and "setup" in a]
    walls = [a["wall"] for k, a in agg.items() if k[0] == "prefect" and "wall" in a]
    prefect_wall = f_s(statistics.median(walls)) if walls else "—"
    prefect_start = f_s(statistics.median(prefect_setup)) if prefect_setup else "—"
    prefect_times = ", ".join(sorted(f"{r['run_s']:.2f}" for r in runs
                                     if r["tool"] == "prefect" and "run_s" in r)) or "none"
    quick_note = ("\n> **This is a `--quick` smoke run** (small sizes, 2 repetitions): its numbers "
                  "are not the published ones.\n" if data.get("quick") else "")
    doc = f"""# Benchmarks

Little Pipelines against the tools its users would pick instead, on the workloads of
issue 3. Every number below comes from one run of:

```
{data.get('command', 'python bench/run.py')}
```

(`make bench` runs it in the bench environment `bench/.venv`), started
{data.get('started', '?')}, which took {minutes:.1f} minutes. Raw results, the py-spy and
cProfile outputs: `bench/results/` (not committed).
{quick_note}
## Machine

{section_machine(data)}

## How it is measured

- **Workload.** N trivial tasks, each returning `(sum(upstream) + i + extra) % 1009`; shapes
  *chain* (each task depends on the previous one) and *fan* (t0 → t1..t(N-2) → t(N-1)). The
  middle task reads an input file (`extra`). Same graph, same function, for every tool.
- **Phases**, each a **fresh process** with the tool's own cache folder: *cold* (empty
  cache), *warm* (everything cached), *invalidate* (the middle task's input file changed,
  so {affected('chain', 1000)} tasks of the N=1,000 chain and 2 of the fan must rerun).
- **µs/task** is in-process: building the graph plus running it, divided by N (imports and
  interpreter start-up excluded; Prefect's ephemeral API server start-up is excluded too and
  reported below). **wall s** is the whole child process, start to exit.
- **Medians** of {data.get('reps', '?')} repetitions; in each repetition every tool runs once, in
  a shuffled order, before the next repetition starts (interleaved). Ratios are to the
  floors measured in the same run.
- **Floors.** *plain loop*: the functions called in order, nothing stored. *diskcache floor*:
  the same loop with one `diskcache` `set` per task (cold) or `get` per task (warm), in a
  `Cache(eviction_policy="none")` (our store also passes `cull_limit=0`, which skips one
  small query per `set`); invalidation: one `stat` of the input file, then `get` for clean
  tasks and compute + `set` for dirty ones. "× floor" is against the *diskcache floor* of
  the same phase.
- **Every run is checked**: the number of tasks that ran (cold N, warm 0, invalidate the
  tasks below the file) and the last task's value.
- **Peers**, each the way its documentation shows, console output off:
  doit (python-actions, values passed with `getargs`, `uptodate=[result_dep(...)]` for each
  upstream task — doit's early cutoff —, `file_dep` on the input file, `run_once` on the
  root, reporter `zero`, default `dbm` backend, which is `dbm.dumb` on this Python);
  joblib (`Memory(...).cache(f)` called per task with the upstream values; the driver reads
  the input file and passes its content); Luigi (one `Task` class, one `LocalTarget` file
  per task, local scheduler, 1 worker); Apache Hamilton (a generated module of N
  functions, `Builder().with_modules(m).with_cache(path=...)`; recursion limit raised to
  5·N because Hamilton walks the graph recursively and fails at N=1,000 otherwise);
  Prefect (tasks with `cache_policy=INPUTS + TASK_SOURCE`, `persist_result=True`, called in
  a `@flow`, against the ephemeral local API server that Prefect starts in each process;
  one `PREFECT_HOME` for the whole benchmark, its database created before the first
  measured run; result storage in each run's own folder, so every cold run starts empty).
- **Ours**: `lp.Pipeline(name, cache_dir=tmp)`, `p.task(fn, name=f"t{{i}}",
  dependencies=[...], input_files=[...])` with `fn(this)` reading upstream values with
  `this.pipeline.get_result(dep)`; console at `lp.set_log_level("ERROR")` (what the other
  tools print: nothing). Two variants at N=1,000: the default console level (INFO, one line
  per task to a pipe), and the classic form (`lp.Task` + `@task.process def run(this)`).

## Headline: N = 1,000 (in-process µs per task, medians)

{section_headline(agg)}

{"![Per-task overhead per tool](benchmark_chart.png)" if drew else "(chart not drawn)"}

For comparison, issue 3's figures seen for the peers at N = 1,000 chain on another 2-core
machine: cold {', '.join(f'{k} ≈ {v:,}' for k, v in ISSUE_FIGURES['cold'].items())};
warm {', '.join(f'{k} ≈ {v:,}' for k, v in ISSUE_FIGURES['warm'].items())} µs/task. This
machine's disk is faster for SQLite commits (a lone diskcache `set` costs
{f_us(data.get('micro', {}).get('diskcache', {}).get('set_us[default]'))} µs here, not 210), so
all ratios should be read against the floors of this run, not against the issue's numbers.

## Issue 14: both task forms, the floor and doit, every size

µs per task (in-process, medians); for our two forms, "× floor" against the diskcache floor
of the same cell and "doit ÷ us" how many times faster than doit (goal: ≥ 1.5 in every
cell). *function form*: `p.task(fn, ...)` with `fn(this)`; *classic form*: `lp.Task` +
`@task.process def run(this)`; both read upstream values with `this.pipeline.get_result`.
"Half invalidated": the middle task's input file changed, so the second half of the chain
reruns.

{section_forms(agg)}

### Big values (goal 7)

{section_big(data)}

### Commit delay under a CPU-bound next task (goal 2)

{section_delay(data)}

### Import time (goal 6)

{section_import(data)}

## Targets of issue 3

{targets(data, agg, inval_checks)}

## Cold runs (all sizes)

{section_phase(agg, 'cold')}

## Warm runs (all sizes)

{section_phase(agg, 'warm')}

Luigi's warm figure is not comparable: Luigi asks only the final task whether its output
exists and, since it does, checks nothing upstream (it cannot notice a changed input either).

## Invalidation: one input file changed in the middle

{inval_table}

"bound" is the target of issue 3 applied to each tool: its own warm cost for the whole
graph plus its own cold per-task cost for the tasks that must rerun. Luigi is left out: it
decides on the existence of outputs and never reruns a task whose input file changed.

## Scale

{section_scale(agg)}

## Problems seen in the runs

{section_problems(agg)}

## Micro-benchmarks

{section_micro(data)}

## Profile of our cold and warm runs

{section_profile(data)}

## What was not run, and why

- **Luigi and Hamilton at N = 10,000**: a run takes 20–50 s (Hamilton cold ≈ 1.3 ms/task,
  Luigi ≈ 2.5 ms/task at N=1,000), which times 2 shapes × 3 phases × {data.get('reps', 5)}
  repetitions would more than double the benchmark's duration; their N = 1,000 figures
  already show their per-task cost.
- **Prefect**: cold and warm at N = 1,000 only (in a `--quick` run: N = 100, one
  repetition). A Prefect process at N = 1,000 took {prefect_wall} s here (median), about
  {prefect_start} s of it starting its API server, so
  its invalidation runs and N = 100 (where the figure is mostly that start) were left out
  to keep `make bench` near 15 minutes; at N = 10,000 a run would take over a minute. It
  works offline: with no `PREFECT_API_URL` it starts a local ephemeral API server (a
  uvicorn subprocess over SQLite) in every process: median
  {f_s(statistics.median(prefect_setup) if prefect_setup else None)} s per process here,
  outside its µs/task but inside its wall time; the very first start, which creates the
  database, took {f_s(pf.get('since_start_s'))} s. Its memory figure excludes that server
  process. Its flow run times in this run ({prefect_times} s) are worth a look: when they
  sit near whole seconds, a 1-second polling loop is the likely cause; its per-task figure
  includes such waits.
- **Luigi invalidation**: not applicable (see above).

## Caveats: how much to trust the cold figures

{section_caveats(data, agg)}
"""
    (docs / "benchmarks.md").write_text(doc)
