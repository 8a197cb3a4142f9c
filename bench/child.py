"""Run one tool once on one workload, in this fresh process, and print the timings.

Usage: python bench/child.py TOOL SHAPE N WORK PHASE

Prints one line ``BENCH-RESULT {json}`` last on stdout: the runner's in-process
timings plus the peak resident memory of this process. Everything else the
tool prints is left to the parent to discard.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

START = time.perf_counter()
MARK = "BENCH-RESULT "


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    VmHWM belongs to the memory image made by exec, so it is this program's own;
    ru_maxrss also counts the parent's image copied at fork (tens of MB here).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    tool, shape, n, work, phase = argv
    # Quiet, offline and not phoning home, for every tool.
    os.environ.setdefault("HAMILTON_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from tools import TOOLS

    t = time.perf_counter()
    out = TOOLS[tool](shape, int(n), Path(work), phase)
    out["total_in_process_s"] = time.perf_counter() - t
    out["since_start_s"] = time.perf_counter() - START
    out["max_rss_mb"] = peak_rss_mb()
    sys.stdout.flush()
    print(MARK + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
