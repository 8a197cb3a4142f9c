"""The dependency graph over task names.

Everything here takes ``deps``: a mapping from each task's name to the names of
the tasks it depends on, whose insertion order is the order the tasks were added
to the pipeline. This module knows nothing of what tasks run or where results
are stored; it only answers questions about names.

A dependency that is not a key of ``deps`` is *unknown*. `check` reports unknown
names; every other function ignores them, because callers validate first and a
dangling edge must not invent a task.

The sorting itself is `Ready`'s: the run loop drives it too, so the order
planned here and the order run can never disagree. Cycles are found by
`graphlib.TopologicalSorter`, whose error names the cycle's path.
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence

from .errors import did_you_mean

__all__ = ["Ready", "check", "dependants", "downstream", "order", "upstream"]


def check(deps: Mapping[str, Sequence[str]], *, cycles: bool = True
          ) -> tuple[list[str], list[str] | None]:
    """Every problem of the graph at once, and the first cycle if there is one.

    Parameters:
        deps: task name -> names of the tasks it depends on, in insertion order.

    Returns ``(problems, first_cycle)``. ``problems`` are sentences: first each
    unknown dependency (with a did-you-mean hint), then each cycle as a path
    ``'A' -> 'B' -> 'A'``, each arrow reading "depends on". ``first_cycle`` is the
    first cycle as graphlib reports it (first and last items equal), or None when
    the graph is acyclic. With ``cycles=False`` cycles are not looked for (a caller
    about to sort learns of a cycle from `order` raising, without a pass of its own).
    """
    problems = _unknown_dependencies(deps)
    found = _cycles(deps) if cycles else []
    # Printed reversed, so each arrow reads "depends on": 'A' -> 'B' -> 'A'.
    problems += [
        "Cycle: " + " -> ".join(repr(name) for name in reversed(cycle)) for cycle in found
    ]
    return problems, (found[0] if found else None)


def order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Every task after all of its dependencies, ties broken by insertion order.

    Parameters:
        deps: task name -> names of the tasks it depends on, in insertion order.

    Of the tasks whose dependencies are all placed, the one added first always
    comes next, so the order is deterministic and reads like the pipeline's
    definition. Raises `graphlib.CycleError` on a cycle; call `check` first.
    """
    if _in_insertion_order(deps):
        return list(deps)
    ready = Ready(list(deps), deps)  # (it ignores unknown names and repeated edges)
    result: list[str] = []
    while ready:
        name = ready.pop()
        result.append(name)
        ready.done(name)
    if len(result) < len(deps):  # what is left waits on itself
        _sorter(_known(deps)).prepare()  # raises CycleError with the cycle's path
    return result


class Ready:
    """Which of `names` may start, as the tasks they depend on are done: the run's
    schedule (and `order`'s).

    Of the tasks whose dependencies are all done, `pop` hands out the one first in
    `names`, so ties are broken by insertion order. Dependencies outside `names`
    (not in the run) do not count; `left` is how many tasks are not done yet.
    graphlib's TopologicalSorter did this in the run loop before, at ~5 µs a task
    more: a second cycle search at prepare() and its batches put into a heap anyway.
    """

    def __init__(self, names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> None:
        self._names = list(names)
        self._index = {name: i for i, name in enumerate(self._names)}
        self._missing = [0] * len(self._names)  # dependencies not done yet, by index
        self._below: list[list[int]] = [[] for _ in self._names]  # dependants, by index
        index, missing, below = self._index, self._missing, self._below
        for i, name in enumerate(self._names):
            needs = deps[name]
            for need in dict.fromkeys(needs) if len(needs) > 1 else needs:
                j = index.get(need)
                if j is not None:
                    missing[i] += 1
                    below[j].append(i)
        self._heap = [i for i, missing in enumerate(self._missing) if not missing]  # sorted
        self.left = len(self._names)

    def __bool__(self) -> bool:
        """Whether a task is ready to be popped."""
        return bool(self._heap)

    def pop(self) -> str:
        """The ready task first in `names` (call only while `bool(self)`)."""
        return self._names[heapq.heappop(self._heap)]

    def done(self, name: str) -> None:
        """The task is settled: the tasks that waited only on it become ready."""
        self.left -= 1
        missing, heap = self._missing, self._heap
        for j in self._below[self._index[name]]:
            missing[j] -= 1
            if not missing[j]:
                heapq.heappush(heap, j)


def _in_insertion_order(deps: Mapping[str, Sequence[str]]) -> bool:
    """Whether every task was added after all of its (known) dependencies: the order
    is then the insertion order itself, as `Ready` would hand it out (the first task
    not yet placed is always ready), found in one pass without the heap (~0.5 µs a
    task). A cycle always has an edge to a task added later, so never passes."""
    placed: set[str] = set()
    for name, needs in deps.items():
        for need in needs:
            if need not in placed and need in deps:
                return False
        placed.add(name)
    return True


def upstream(deps: Mapping[str, Sequence[str]], targets: Iterable[str]) -> set[str]:
    """The targets plus every task they depend on, directly or not.

    Parameters:
        deps: task name -> names of the tasks it depends on, in insertion order.
        targets: the names to start from; they are included as given.
    """
    return _reach(targets, lambda name: deps.get(name, ()), known=deps)


def downstream(deps: Mapping[str, Sequence[str]], names: Iterable[str]) -> set[str]:
    """The names plus every task that depends on one of them, directly or not.

    Parameters:
        deps: task name -> names of the tasks it depends on, in insertion order.
        names: the names to start from; they are included as given.
    """
    reverse = dependants(deps)
    return _reach(names, lambda name: reverse.get(name, ()), known=reverse)


def dependants(deps: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The reverse edges: each task -> the tasks that depend on it directly.

    Parameters:
        deps: task name -> names of the tasks it depends on, in insertion order.

    Every task is a key, in insertion order, and so are its dependants' lists;
    a dependency named twice by one task counts once.
    """
    reverse: dict[str, list[str]] = {name: [] for name in deps}
    for name, needs in _known(deps).items():
        for need in needs:
            reverse[need].append(name)
    return reverse


def _known(deps: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """A copy of the graph without unknown names or repeated edges."""
    return {name: [d for d in dict.fromkeys(needs) if d in deps] for name, needs in deps.items()}


def _sorter(deps: Mapping[str, Sequence[str]]) -> graphlib.TopologicalSorter[str]:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, needs in deps.items():
        sorter.add(name, *needs)
    return sorter


def _unknown_dependencies(deps: Mapping[str, Sequence[str]]) -> list[str]:
    known = deps.__contains__
    return [
        f"Task {name!r} depends on {need!r}, which is not a task in the pipeline. "
        + did_you_mean(need, deps)
        for name, needs in deps.items()
        if not all(map(known, needs))  # (most tasks: no dict made to drop repeats)
        for need in dict.fromkeys(needs)
        if need not in deps
    ]


def _cycles(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Independent cycles, the first exactly as `order` would raise it.

    graphlib reports one cycle per prepare(), so each found cycle is broken by
    removing its first edge from a working copy and the search repeats. Every
    round removes an edge, which bounds the rounds by the number of edges. (A
    full enumeration of elementary cycles, e.g. Johnson's algorithm, was
    rejected: it can be exponential, and one path per knot is enough to fix it.)
    """
    work = _known(deps)
    cycles: list[list[str]] = []
    for _ in range(sum(map(len, work.values())) + 1):
        try:
            _sorter(work).prepare()
        except graphlib.CycleError as error:
            cycle: list[str] = list(error.args[1])
            cycles.append(cycle)
            # In graphlib's cycle each item is a dependency of the next one.
            work[cycle[1]].remove(cycle[0])
        else:
            break
    return cycles


def _reach(
    start: Iterable[str], step: Callable[[str], Iterable[str]], *, known: Mapping[str, object]
) -> set[str]:
    """Everything reachable from ``start`` by ``step``; iterative, so deep graphs are fine."""
    seen = set(start)
    stack = list(seen)
    while stack:
        for nxt in step(stack.pop()):
            if nxt in known and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen
