"""The dependency graph drawn three ways: a Rich tree, Mermaid and Graphviz DOT.

Each drawing takes the tasks in execution order with their dependencies and,
optionally, each task's state (cached, stale, not cached, ...) to colour it.
Mermaid and DOT are plain text: paste them into a Markdown file or pipe them to
`dot -Tsvg`; no Graphviz install is needed to produce them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from rich.tree import Tree

from .errors import InvalidOptionError
from .graph import dependants
from .render import STATE_STYLE, dependencies, plan_states
from .report import State

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .pipeline import Pipeline

FORMATS = ("tree", "mermaid", "dot")

#: State -> (fill, stroke) for the text formats (see report.State).
STATE_COLOURS: dict[str, tuple[str, str]] = {s.value: (s.fill, s.stroke) for s in State}

Deps = Mapping[str, Sequence[str]]


def draw(pipeline: Pipeline, fmt: str = "tree") -> tuple[RenderableType, str | None]:
    """The pipeline's graph in one of FORMATS, coloured by state, and a note when the
    states could not be worked out (the drawing then has none)."""
    deps = dependencies(pipeline)
    states, note = plan_states(pipeline)
    if fmt == "tree":
        return tree(pipeline.name, deps, states), note
    if fmt == "mermaid":
        return Text(mermaid(deps, states).rstrip("\n")), note
    if fmt == "dot":
        return Text(dot(pipeline.name, deps, states).rstrip("\n")), note
    raise InvalidOptionError(f"Unknown graph format {fmt!r}; expected one of {', '.join(FORMATS)}.")


def tree(title: str, deps: Deps, states: Mapping[str, str] | None = None) -> Tree:
    """Roots first, each task under the tasks it depends on; a task already drawn is
    named again with "↑" instead of repeating its subtree."""
    states = states or {}
    below = dependants(deps)
    root = Tree(Text(title, style="lp.title"))
    drawn: set[str] = set()

    def label(name: str, again: bool) -> Text:
        state = states.get(name)
        text = Text(name, style=STATE_STYLE.get(state or "", ""))
        if again:
            text.append(" ↑", style="lp.dim")
        elif state:
            text.append(f"  {state}", style="lp.dim")
        return text

    # Depth first with a stack of our own, not recursion: a chain of ~1,000 tasks
    # hit Python's recursion limit. Children are pushed reversed so they are drawn
    # in the order they were added, as the recursive walk drew them.
    roots = [name for name in deps if not [d for d in deps[name] if d in deps]]
    stack: list[tuple[Tree, str]] = [(root, name) for name in reversed(roots)]
    while stack:
        branch, name = stack.pop()
        again = name in drawn
        node = branch.add(label(name, again))
        if again:
            continue
        drawn.add(name)
        stack.extend((node, child) for child in reversed(below[name]))
    return root


def mermaid(deps: Deps, states: Mapping[str, str] | None = None) -> str:
    """A Mermaid flowchart, left to right; states become classes with colours."""
    ids = _ids(deps)
    lines = ["flowchart LR"]
    lines += [f'    {ids[n]}["{_mermaid_label(n)}"]' for n in deps]
    lines += [f"    {ids[d]} --> {ids[n]}" for n in deps for d in deps[n] if d in deps]
    for state, members in _by_state(deps, states).items():
        cls = state.replace(" ", "_")
        fill, stroke = STATE_COLOURS[state]
        lines.append(f"    classDef {cls} fill:{fill},stroke:{stroke};")
        lines.append(f"    class {','.join(ids[n] for n in members)} {cls};")
    return "\n".join(lines) + "\n"


def dot(title: str, deps: Deps, states: Mapping[str, str] | None = None) -> str:
    """A Graphviz digraph, left to right; states become fill colours."""
    states = states or {}
    lines = [
        f"digraph {_dot_id(title)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
        'fontname="Helvetica"];',
    ]
    for n in deps:
        state = states.get(n)
        if state in STATE_COLOURS:
            fill, stroke = STATE_COLOURS[state]
            lines.append(f'    {_dot_id(n)} [fillcolor="{fill}", color="{stroke}", '
                         f'tooltip={_dot_id(state)}];')
        else:
            lines.append(f"    {_dot_id(n)};")
    lines += [f"    {_dot_id(d)} -> {_dot_id(n)};" for n in deps for d in deps[n] if d in deps]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _by_state(deps: Deps, states: Mapping[str, str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in deps:
        state = (states or {}).get(n)
        if state in STATE_COLOURS:
            out.setdefault(state, []).append(n)
    return out


def _ids(deps: Deps) -> dict[str, str]:
    # Task names may hold spaces, dots or quotes; Mermaid ids may not.
    return {name: f"t{i}" for i, name in enumerate(deps)}


def _mermaid_label(name: str) -> str:
    return name.replace('"', "#quot;")


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
