"""Explain one task's decision in detail: what changed, from what, to what.

`Pipeline.plan` says *that* a task reruns and why in a line; `explain` adds the
evidence a user can act on: a unified diff of the changed function or file, the
old and new size, mtime and hash of an input, whether an upstream result
actually changed, a source's old and new token, a param's old and new value.

It works from what a planned run left (a `RunResult`) and the store's kept
code texts; it runs nothing itself and knows nothing of the engine or the
pipeline.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .report import HTML_RENDERERS, Reason, Status, fmt_time

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from .freshness import State
    from .spec import RunResult
    from .store import Record, Store


@dataclass
class Finding:
    """One reason, with the lines that show it (a diff, or old -> new)."""

    reason: Reason
    lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([str(self.reason), *("    " + line for line in self.lines)])


@dataclass
class Explanation:
    """Why a task would run (or be reused), in detail."""

    task: str
    status: str
    findings: list[Finding] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"{self.task}: {self.status}"
        return "\n".join([head, *("  " + str(f).replace("\n", "\n  ") for f in self.findings)])

    def _repr_html_(self) -> str:
        """The reasons and their evidence, for notebooks (see `notebook.explanation_html`)."""
        return HTML_RENDERERS["explanation"](self)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        look = Status.of(self.status)
        symbol, style = (look.symbol, look.style) if look else ("?", "")
        yield Text.assemble((f"{symbol} {self.task}", "bold"), " ", (self.status, style))
        for f in self.findings:
            yield Text(f"  {f.reason}")
            for line in f.lines:
                line_style = ("green" if line.startswith("+") else
                              "red" if line.startswith("-") else "dim")
                yield Text(f"      {line}", style=line_style)


def explain(result: RunResult, name: str, store: Store) -> Explanation:
    """Explain task `name`'s decision in a planned run's `result`, with the evidence
    (old code texts are read from `store`)."""
    outcome = result.report[name]
    record = result.records.get(name)
    state = result.states.get(name)
    findings = [Finding(r, _evidence(r, record, state, store, result.digests))
                for r in outcome.reasons]
    return Explanation(name, outcome.status, findings)


def _evidence(reason: Reason, record: Record | None, state: State | None, store: Store,
              digests: dict[str, Any]) -> list[str]:
    if record is None or state is None:
        return []
    kind, key = reason.kind, reason.subject
    if kind in ("code_changed", "version_changed"):
        key = key or "version"
        old = record.get("code", {}).get(key)
        new = state.code.get(key)
        old_text = store.text(old[-1]) if old else ""
        new_text = state.code_text.get(key)
        if new_text is None and new is not None:
            new_text = _read(key)
        if old_text is None:
            return ["(the previous source was not kept)"]
        return _diff(old_text, new_text or "", key)
    if kind in ("input_changed", "input_added", "input_removed"):
        return [f"{label}: {_stamp(stamp)}" for label, stamp in (
            ("before", record.get("inputs", {}).get(key)), ("now", state.inputs.get(key)))]
    if kind == "upstream_changed":
        return [f"its result digest was {record.get('upstream', {}).get(key, '?')[:12]}, "
                f"now {str(digests.get(key, '?'))[:12]}: its result changed"]
    if kind == "param_changed":
        return [f"before: {record.get('params_text', {}).get(key, '(not set)')}",
                f"now:    {state.params_text.get(key, '(not set)')}"]
    if kind == "source_changed":
        return [f"before: {record.get('sources_text', {}).get(key, '(none)')}",
                f"now:    {state.sources_text.get(key, '(none)')}"]
    if kind == "waiting":
        return [f"it reruns only if {key!r} returns a different result"]
    return []


def _diff(old: str, new: str, label: str) -> list[str]:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"{label} (stored)",
                                      f"{label} (now)", lineterm="", n=2))
    return lines or ["(no difference in the normalised source)"]


def _stamp(stamp: Any) -> str:
    if not stamp:
        return "(none)"
    size, mtime_ns, digest = stamp
    return f"{size} bytes, modified {fmt_time(mtime_ns / 1e9)}, xxh3 {digest[:12]}"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None
