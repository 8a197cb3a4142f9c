"""The benchmark workloads: graph shapes and the trivial task every tool runs.

Every tool runs the same graph of N trivial tasks. Task ``i`` returns
``(sum(upstream values) + i + extra) % 1009``, a small int; ``extra`` is the
integer read from the one input file, and only the middle task reads it.

Shapes:

* ``chain``: t0 <- t1 <- ... <- t(N-1); each task depends on the one before.
* ``fan``: t0 fans out to t1 .. t(N-2), which all fan in to t(N-1).

This module is imported by every tool's runner, so it stays tiny and imports
nothing heavy. `CALLS` counts task executions in the current process, which
is how the harness checks that a warm run ran nothing and an invalidation ran
exactly the tasks below the changed file.
"""

from __future__ import annotations

import os

SHAPES = ("chain", "fan")
MODULUS = 1009
#: Task executions in this process (every tool's task code increments it).
CALLS = [0]


def deps(shape: str, n: int, i: int) -> list[int]:
    """Indices of the tasks task ``i`` depends on."""
    if i == 0:
        return []
    if shape == "chain":
        return [i - 1]
    if shape == "fan":
        return [0] if i < n - 1 else list(range(1, n - 1))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def middle(n: int) -> int:
    """The task that reads the input file (the one changed by the invalidation run)."""
    return n // 2


def affected(shape: str, n: int) -> int:
    """How many tasks must rerun when the middle task's input file changes."""
    m = middle(n)
    return n - m if shape == "chain" else 2


def compute(i: int, upstream: list[int] | tuple[int, ...], extra: int = 0) -> int:
    """The trivial task: a small int computed from the upstream results."""
    CALLS[0] += 1
    return (sum(upstream) + i + extra) % MODULUS


def read_extra(path: str | os.PathLike[str]) -> int:
    """The integer kept in the input file."""
    with open(path) as f:
        return int(f.read())


def expected(shape: str, n: int, extra: int) -> int:
    """The last task's value, computed without any tool (what every tool must return)."""
    values: list[int] = []
    m = middle(n)
    for i in range(n):
        up = [values[d] for d in deps(shape, n, i)]
        values.append((sum(up) + i + (extra if i == m else 0)) % MODULUS)
    return values[-1]
