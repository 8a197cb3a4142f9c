"""Warm run cost of code="function" against code="module" (issue 10).

    python bench/code_modes.py                # prints the table
    python bench/code_modes.py --write-docs   # also writes its section of docs/benchmarks.md

One project on disk: a helpers module using three installed packages (xxhash,
rich, diskcache: each a package version to look up) and the standard library,
and 16 tasks in a chain calling the helpers. Each repetition is a fresh
interpreter (so nothing is memoised from an earlier run) that imports the
project and times `p.execute()` on a warm store: every task cached. Modes are
interleaved per repetition; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- code-modes: bench/code_modes.py -->", "<!-- /code-modes -->"
N_TASKS = 16

HELPERS = '''
import json
import diskcache
import xxhash
from rich.text import Text

SCALE = 3


def digest(value):
    return xxhash.xxh64(json.dumps(value).encode()).hexdigest()


def styled(value):
    return Text(str(value)).plain


def kind():
    return diskcache.Cache.__name__


def step(value):
    return value * SCALE + len(styled(value)) + len(digest(value)) + len(kind())
'''

TASKS = '''
import sys
import time
import little_pipelines as lp
import helpers

p = lp.Pipeline("modes_{mode}", code="{mode}")


@p.task
def t0():
    return helpers.step(1)
{chain}

start = time.perf_counter()
report = p.execute()
elapsed = time.perf_counter() - start
p.close()
print("RESULT", len(report.executed), len(report.cached), elapsed)
'''


def project(folder: Path, mode: str) -> Path:
    chain = "".join(f"\n\n@p.task\ndef t{i}(t{i - 1}):\n    return helpers.step(t{i - 1})\n"
                    for i in range(1, N_TASKS))
    (folder / "helpers.py").write_text(textwrap.dedent(HELPERS))
    script = folder / f"tasks_{mode}.py"
    script.write_text(TASKS.format(mode=mode, chain=chain))
    return script


def run(script: Path, home: Path) -> tuple[int, int, float]:
    env = {**os.environ, "LITTLE_PIPELINES_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, cwd=script.parent, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    _, executed, cached, elapsed = line.split()
    return int(executed), int(cached), float(elapsed)


def measure(reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"module": [], "function": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scripts = {mode: project(folder, mode) for mode in times}
        for script in scripts.values():
            assert run(script, folder / "home")[0] == N_TASKS  # cold: every task runs
        for _ in range(reps):
            for mode, script in scripts.items():
                executed, cached, elapsed = run(script, folder / "home")
                assert (executed, cached) == (0, N_TASKS), (mode, executed, cached)
                times[mode].append(elapsed)
    return times


def table(times: dict[str, list[float]]) -> str:
    med = {mode: statistics.median(t) * 1000 for mode, t in times.items()}
    reps = len(times["module"])
    return "\n".join([
        f"Warm run of {N_TASKS} cached tasks (a chain calling helpers that use xxhash, rich "
        f"and diskcache), `p.execute()` only, each run a fresh interpreter, median of {reps}:",
        "",
        "| code= | warm run (ms) | ratio to module |",
        "|---|---:|---:|",
        *(f"| {mode} | {med[mode]:.1f} | {med[mode] / med['module']:.2f}x |"
          for mode in ("module", "function")),
        "",
        "Before issue 10, function mode scanned every installed distribution once per "
        "package to find its version (`importlib.metadata.packages_distributions()` per "
        "package): 334 ms against 12 ms for module mode on a similar pipeline (~30x). The "
        "mapping is now built once per process.",
    ])


def write_docs(text: str) -> None:
    section = f"{BEGIN}\n## Code fingerprints: function mode against module mode\n\n{text}\n{END}\n"
    doc = DOC.read_text() if DOC.exists() else ""
    if BEGIN in doc and END in doc:
        head, _, rest = doc.partition(BEGIN)
        doc = head + section + rest.partition(END)[2].lstrip("\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    DOC.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    times = measure(args.reps)
    text = table(times)
    print(text)
    print(json.dumps(times))
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
