"""Soundness of code="function" over generated module graphs: after any one edit, every
task whose fresh result would differ is rerun (issue 10). Hypothesis draws a helpers
module of functions, constants of several types, decorated helpers, partials,
containers and instances referencing each other, tasks using them by name or as
`helpers.NAME`, and one edit; the truth is computed by calling the tasks' functions."""

from __future__ import annotations

import importlib
import itertools
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

KINDS = ["func", "int", "date", "str", "lru", "wraps", "partial", "container", "instance"]
_ids = itertools.count()


def definition(k: int, kind: str, c: int, refs: list[str]) -> tuple[str, str]:
    """(source of definition k, an expression of `x` that uses it)."""
    more = "".join(f" + {r}" for r in refs)
    body = f"return x + {c}{more}"
    if kind == "func":
        return f"def f{k}(x):\n    {body}\n", f"f{k}(x)"
    if kind == "int":
        return f"C{k} = {c}\n", f"C{k}"
    if kind == "date":
        return f"D{k} = datetime.date(2000, 1, {c})\n", f"D{k}.day"
    if kind == "str":
        return f"S{k} = {'x' * c!r}\n", f"len(S{k})"
    if kind == "lru":
        return f"@functools.lru_cache\ndef g{k}(x):\n    {body}\n", f"g{k}(x)"
    if kind == "wraps":
        return f"@logged\ndef w{k}(x):\n    {body}\n", f"w{k}(x)"
    if kind == "partial":
        return (f"def _p{k}(x, y):\n    return x + y{more}\n\n\n"
                f"P{k} = functools.partial(_p{k}, y={c})\n", f"P{k}(x)")
    if kind == "container":
        return (f"def _o{k}(x):\n    {body}\n\n\nO{k} = {{'f': _o{k}, 'n': [{c}]}}\n",
                f"O{k}['f'](x)")
    return (f"class K{k}:\n    def run(self, x):\n        {body}\n\n\nI{k} = K{k}()\n",
            f"I{k}.run(x)")


@st.composite
def graphs(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(3, 7))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(n)]
    consts = [draw(st.integers(1, 9)) for _ in range(n)]
    refs = [sorted(draw(st.sets(st.integers(0, k - 1), max_size=2))) if k else []
            for k in range(n)]
    tasks = [sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=2)))
             for _ in range(draw(st.integers(2, 4)))]
    dotted = [draw(st.booleans()) for _ in tasks]
    edit = draw(st.integers(0, n - 1))
    cosmetic = draw(st.booleans())
    return {"kinds": kinds, "consts": consts, "refs": refs, "tasks": tasks,
            "dotted": dotted, "edit": edit, "cosmetic": cosmetic}


def helpers_source(g: dict[str, Any], consts: list[int], comment_at: int = -1
                   ) -> tuple[str, list[str]]:
    parts = ["import datetime\nimport functools\n\n\n"
             "def logged(fn):\n    @functools.wraps(fn)\n    def wrapper(*a, **k):\n"
             "        return fn(*a, **k)\n    return wrapper\n"]
    exprs: list[str] = []
    for k, kind in enumerate(g["kinds"]):
        source, expr = definition(k, kind, consts[k], [exprs[r] for r in g["refs"][k]])
        parts.append(f"# a comment\n\n{source}" if k == comment_at else source)
        exprs.append(expr)
    return "\n\n".join(parts), exprs


def tasks_source(g: dict[str, Any], helpers: str, exprs: list[str], n: int) -> str:
    lines = [f"import little_pipelines as lp\nimport {helpers}\nfrom {helpers} import *\n\n"
             f"p = lp.Pipeline('gen{n}', code='function')\nx = 1\n"]
    for t, uses in enumerate(g["tasks"]):
        terms = []
        for k in uses:
            expr = exprs[k]
            if g["dotted"][t]:  # module.NAME access instead of an imported name
                head = expr.split("(")[0].split(".")[0].split("[")[0]
                expr = expr.replace(head, f"{helpers}.{head}", 1) if head != "len" else \
                    expr.replace("(S", f"({helpers}.S", 1)
            terms.append(expr)
        lines.append(f"\n@p.task\ndef t{t}():\n    return {' + '.join(terms)}\n")
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(text)
    if before is not None:
        later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
        os.utime(path, ns=(later, later))


def load(names: list[str]) -> Any:
    for name in names:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(names[-1])


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return tmp_path


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(g=graphs())
def test_every_task_whose_result_would_differ_is_rerun(root: Path, g: dict[str, Any]) -> None:
    n = next(_ids)
    helpers, tasks = f"gen_helpers_{n}", f"gen_tasks_{n}"
    names = [helpers, tasks]
    source, exprs = helpers_source(g, g["consts"])
    write(root / f"{helpers}.py", source)
    write(root / f"{tasks}.py", tasks_source(g, helpers, exprs, n))
    try:
        module = load(names)
        before = {t.name: t.main_function() for t in module.p._tasks.values()}
        assert set(module.p.execute().executed) == set(before)
        module.p.close()

        edit = g["edit"]
        if g["cosmetic"]:  # a comment and blank lines: nothing may rerun
            edited = helpers_source(g, g["consts"], comment_at=edit)[0]
        else:
            consts = list(g["consts"])
            consts[edit] += 1
            edited = helpers_source(g, consts)[0]
        write(root / f"{helpers}.py", edited)
        module = load(names)
        after = {t.name: t.main_function() for t in module.p._tasks.values()}
        report = module.p.execute()
        module.p.close()
        differ = {name for name in after if after[name] != before[name]}
        assert differ <= set(report.executed), (differ, report.executed, edited)
        if g["cosmetic"]:
            assert report.executed == [], report.executed
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_the_generator_covers_every_kind() -> None:
    # Each kind produces source that runs: a guard against a generator that tests nothing.
    g = {"kinds": KINDS, "consts": [3] * len(KINDS), "refs": [[k - 1] if k else []
                                                              for k in range(len(KINDS))]}
    source, exprs = helpers_source(g, g["consts"])
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(source), "<gen>", "exec"), namespace)
    assert eval(exprs[-1], {**namespace, "x": 1}) > 0
