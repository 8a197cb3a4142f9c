"""Tests for little_pipelines.graph: concrete cases, then properties on random DAGs."""

from __future__ import annotations

import graphlib
import itertools
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from little_pipelines.graph import check, dependants, downstream, order, upstream

Deps = dict[str, list[str]]


# --- check ------------------------------------------------------------------


def test_check_accepts_a_valid_graph() -> None:
    assert check({"a": [], "b": ["a"], "c": ["a", "b"]}) == ([], None)


def test_check_reports_an_unknown_dependency_with_a_suggestion() -> None:
    problems, cycle = check({"Zero": [], "One": ["Zer"]})
    assert problems == [
        "Task 'One' depends on 'Zer', which is not a task in the pipeline. Did you mean 'Zero'?"
    ]
    assert cycle is None


def test_check_reports_a_repeated_unknown_dependency_once() -> None:
    problems, _ = check({"a": ["x", "x"]})
    assert len(problems) == 1


def test_check_reports_a_self_dependency() -> None:
    problems, cycle = check({"A": ["A"]})
    assert problems == ["Cycle: 'A' -> 'A'"]
    assert cycle == ["A", "A"]


def test_check_reports_a_two_task_cycle_as_a_path() -> None:
    problems, cycle = check({"A": ["B"], "B": ["A"]})
    assert len(problems) == 1
    assert cycle is not None
    assert problems[0] == "Cycle: " + " -> ".join(repr(n) for n in reversed(cycle))
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"A", "B"}


def test_check_reports_two_separate_cycles() -> None:
    deps = {"a": ["b"], "b": ["a"], "ok": ["a"], "x": ["z"], "y": ["x"], "z": ["y"]}
    problems, cycle = check(deps)
    assert len(problems) == 2
    assert all(p.startswith("Cycle: ") for p in problems)
    assert {"'a'", "'b'"} <= set(problems[0][len("Cycle: ") :].split(" -> "))
    assert {"'x'", "'y'", "'z'"} <= set(problems[1][len("Cycle: ") :].split(" -> "))
    assert cycle is not None and set(cycle) == {"a", "b"}


def test_check_reports_a_cycle_and_an_unknown_dependency_together() -> None:
    problems, cycle = check({"a": ["b"], "b": ["a", "c_typo"], "cc_typo": []})
    assert len(problems) == 2
    assert problems[0].startswith("Task 'b' depends on 'c_typo', which is not a task")
    assert "Did you mean 'cc_typo'?" in problems[0]
    assert problems[1].startswith("Cycle: ")
    assert cycle is not None


def test_check_first_cycle_is_what_order_raises() -> None:
    deps = {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]}
    _, cycle = check(deps)
    with pytest.raises(graphlib.CycleError) as raised:
        order(deps)
    assert cycle == raised.value.args[1]


# --- order --------------------------------------------------------------------


def test_order_of_a_diamond() -> None:
    deps = {"top": [], "left": ["top"], "right": ["top"], "bottom": ["left", "right"]}
    assert order(deps) == ["top", "left", "right", "bottom"]


def test_order_breaks_ties_by_insertion_order() -> None:
    assert order({"b": [], "a": [], "c": ["a"]}) == ["b", "a", "c"]


def test_order_prefers_a_released_task_added_earlier_than_a_waiting_one() -> None:
    # 'early' becomes ready only after 'root', while 'late' was ready from the
    # start: insertion order still puts 'early' first once it is available.
    deps = {"root": [], "early": ["root"], "late": []}
    assert order(deps) == ["root", "early", "late"]


def test_order_ignores_unknown_dependencies() -> None:
    assert order({"a": ["ghost"], "b": ["a"]}) == ["a", "b"]


def test_order_raises_on_a_cycle() -> None:
    with pytest.raises(graphlib.CycleError):
        order({"a": ["b"], "b": ["a"]})


def test_order_of_nothing() -> None:
    assert order({}) == []


# --- upstream, downstream, dependants ---------------------------------------


def test_upstream_and_downstream_of_a_diamond() -> None:
    deps = {"top": [], "left": ["top"], "right": ["top"], "bottom": ["left", "right"]}
    assert upstream(deps, ["left"]) == {"left", "top"}
    assert upstream(deps, ["bottom"]) == set(deps)
    assert downstream(deps, ["left"]) == {"left", "bottom"}
    assert downstream(deps, ["top"]) == set(deps)


def test_upstream_skips_unknown_dependencies() -> None:
    assert upstream({"a": ["ghost"], "b": ["a"]}, ["b"]) == {"a", "b"}


def test_dependants_are_reverse_edges_in_insertion_order() -> None:
    deps = {"z": [], "y": ["z"], "x": ["z", "z", "ghost"], "w": ["y"]}
    assert dependants(deps) == {"z": ["y", "x"], "y": ["w"], "x": [], "w": []}
    assert list(dependants(deps)) == list(deps)


# --- big graphs ---------------------------------------------------------------

N = 10_000


def _chain() -> Deps:
    # Inserted last-first, so every step of the order goes against insertion order.
    return {f"t{i}": ([f"t{i - 1}"] if i else []) for i in reversed(range(N))}


def test_a_long_chain_needs_no_recursion() -> None:
    deps = _chain()
    assert order(deps) == [f"t{i}" for i in range(N)]
    assert upstream(deps, [f"t{N - 1}"]) == set(deps)
    assert downstream(deps, ["t0"]) == set(deps)
    assert check(deps) == ([], None)


def test_a_wide_fan_out_orders_by_insertion() -> None:
    deps: Deps = {"root": [], **{f"t{i}": ["root"] for i in range(N)}}
    assert order(deps) == list(deps)


def test_a_wide_fan_in_comes_last() -> None:
    deps: Deps = {"sink": [f"t{i}" for i in range(N)], **{f"t{i}": [] for i in range(N)}}
    assert order(deps) == [*list(deps)[1:], "sink"]


# --- properties on random DAGs ------------------------------------------------


@st.composite
def dags(draw: st.DrawFn, max_size: int = 12) -> Deps:
    """A random DAG: node i may only depend on nodes j < i, inserted in a random order."""
    n = draw(st.integers(0, max_size))
    insertion = draw(st.permutations(range(n)))
    deps: Deps = {f"n{i}": [] for i in insertion}
    for i in range(n):
        needs = draw(st.lists(st.integers(0, i - 1), unique=True)) if i else []
        deps[f"n{i}"] = [f"n{j}" for j in needs]
    return deps


def reference_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm taking the earliest-added available task; plain and slow."""
    placed: list[str] = []
    while len(placed) < len(deps):
        available = [
            name
            for name in deps
            if name not in placed and all(d in placed for d in deps[name] if d in deps)
        ]
        placed.append(available[0])
    return placed


def reference_upstream(deps: Mapping[str, Sequence[str]], targets: list[str]) -> set[str]:
    found: set[str] = set()

    def visit(name: str) -> None:
        if name not in found:
            found.add(name)
            for need in deps[name]:
                visit(need)

    for target in targets:
        visit(target)
    return found


@given(dags())
def test_order_is_a_permutation_respecting_dependencies(deps: Deps) -> None:
    result = order(deps)
    assert sorted(result) == sorted(deps)
    position = {name: i for i, name in enumerate(result)}
    for name, needs in deps.items():
        assert all(position[need] < position[name] for need in needs)


@given(dags())
def test_order_matches_the_reference(deps: Deps) -> None:
    assert order(deps) == reference_order(deps)


@given(dags())
def test_check_accepts_every_dag(deps: Deps) -> None:
    assert check(deps) == ([], None)


@given(dags(), st.data())
def test_upstream_is_closed_and_matches_the_reference(deps: Deps, data: st.DataObject) -> None:
    targets = data.draw(st.lists(st.sampled_from(list(deps)))) if deps else []
    result = upstream(deps, targets)
    assert result == reference_upstream(deps, targets)
    assert all(need in result for name in result for need in deps[name])


@given(dags(), st.data())
def test_downstream_is_the_reverse_of_upstream(deps: Deps, data: st.DataObject) -> None:
    names = data.draw(st.lists(st.sampled_from(list(deps)))) if deps else []
    expected = {task for task in deps if reference_upstream(deps, [task]) & set(names)}
    assert downstream(deps, names) == expected


@given(dags())
def test_dependants_reverse_every_edge(deps: Deps) -> None:
    reverse = dependants(deps)
    edges = {(need, name) for name, needs in deps.items() for need in needs}
    assert {(need, name) for need, names in reverse.items() for name in names} == edges


@given(dags(), st.data())
def test_a_back_edge_is_reported_as_a_cycle_of_real_edges(deps: Deps, data: st.DataObject) -> None:
    if not deps:
        return
    # Make some task depend on one of its own dependants (or itself): a cycle.
    source = data.draw(st.sampled_from(sorted(deps)))
    back = data.draw(st.sampled_from(sorted(downstream(deps, [source]))))
    deps[source] = [*deps[source], back]

    problems, cycle = check(deps)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    # graphlib's orientation: each item is a dependency of the next.
    assert all(a in deps[b] for a, b in itertools.pairwise(cycle))
    assert problems[0] == "Cycle: " + " -> ".join(repr(n) for n in reversed(cycle))
    assert all(p.startswith("Cycle: ") for p in problems)


@given(dags(), st.data())
def test_order_of_tasks_added_after_their_dependencies_matches_the_reference(
        deps: Deps, data: st.DataObject) -> None:
    """The common case (each task added after what it needs, unknown names aside), which
    `order` answers in one pass, gives the order the general sort gives."""
    in_order = {name: deps[name] for name in reference_order(deps)}
    for name in in_order:
        if data.draw(st.booleans()):
            in_order[name] = [*in_order[name], "not-a-task"]
    assert order(in_order) == reference_order(in_order) == list(in_order)
    with pytest.raises(graphlib.CycleError):  # a task needing itself is no such case
        order({**in_order, "x": ["x"]})
