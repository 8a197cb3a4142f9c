"""Rich renderings shared by `lpipe` and the shell: tables, result previews, the console.

Everything here *builds* renderables from the library's plain data (plans,
reports, records, run history); only `cli.py` and `shell.py` print them, on one
themed Console made by `make_console` (injected in tests to capture output).
Names and reasons are passed as `Text`, never as markup: an exception message or
a task name may well contain "[".
"""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import is_dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from .fit import FrameTable, SummaryLine, Why
from .report import Reason, RunReport, State, Status, TaskOutcome, fmt_time, last_line

if TYPE_CHECKING:
    from .pipeline import Pipeline

#: A stored result's state (see report.State) -> its Rich style.
STATE_STYLE: dict[str, str] = {s.value: s.style for s in State}

#: Expiry kinds of a stored record -> how to say when it expires.
EXPIRY_TEXT: dict[str, str] = {
    "never": "never (until its code, inputs or upstream change)",
    "session": "when the Python process that stored it ends",
    "on_complete": "when the run that stored it ends",
}

_THEME = {
    "lp.title": "bold",
    "lp.task": "bold",
    "lp.dim": "dim",
    "lp.ok": "green",
    "lp.warn": "yellow",
    "lp.error": "bold red",
    "lp.path": "cyan",
    "lp.hint": "italic",
    **{f"lp.state.{k.replace(' ', '_')}": v for k, v in STATE_STYLE.items()},
}

PREVIEW_ROWS = 5
PREVIEW_CHARS = 1200


def make_console(file: IO[str] | None = None, *, stderr: bool = False, **options: Any) -> Console:
    """The themed console `lpipe` and the shell print on (`options` go to rich's Console)."""
    return Console(file=file, stderr=stderr, theme=Theme(_THEME), **options)


def themed(console: Console) -> Console:
    """A console the user passed in, taught the library's styles (`lp.dim`, ...) once.

    Ours are added only when it lacks them (a plain Console raised MissingStyle
    on the first `lp.*` style), so a console themed on purpose is left as it is.
    """
    from rich.errors import MissingStyle

    try:
        console.get_style("lp.state.not_cached")
    except MissingStyle:
        console.push_theme(Theme(_THEME), inherit=True)
    return console


# -- small formatters -------------------------------------------------------------------
def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m{secs:04.1f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m"


def fmt_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def reason_text(reasons: Iterable[Reason]) -> str:
    """Reasons as one sentence, paths relative to the current folder; a reason of a
    kind this version cannot word shows its kind."""
    return Why(reasons).plain()


def status_text(status: str, label: str | None = None) -> Text:
    """A run status (executed, cached, failed, ...) with its symbol and colour."""
    look = Status.of(status)
    symbol, style = (look.symbol, look.style) if look else ("?", "")
    return Text(f"{symbol} {label or status}", style=style)


def state_of(outcome: TaskOutcome) -> str:
    """A plan outcome as the state of the stored result: cached, stale, not cached, ..."""
    return State.of(outcome).value


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def expiry_word(record: Mapping[str, Any]) -> str:
    """When a stored result expires, in a table cell: "never" is explained once, below."""
    if record.get("expires_at") is None and record.get("expiry", "never") == "never":
        return "never"
    return expiry_text(record)


def expiry_text(record: Mapping[str, Any]) -> str:
    """When a stored result expires, in words."""
    if record.get("expires_at") is not None:
        return fmt_time(record["expires_at"])
    return EXPIRY_TEXT.get(record.get("expiry", "never"), str(record.get("expiry")))


def dependencies(pipeline: Pipeline) -> dict[str, list[str]]:
    """Each task's dependencies, tasks in execution order."""
    return pipeline.dependency_map()


def plan_states(pipeline: Pipeline) -> tuple[dict[str, str], str | None]:
    """Each task's state from a plan, or none and why when no plan can be made."""
    from .errors import LittlePipelinesError

    try:
        return {o.name: state_of(o) for o in pipeline.plan()}, None
    except LittlePipelinesError as e:
        return {}, f"states not shown: {e}"


def code_ran(o: TaskOutcome) -> bool:
    """Whether the task's code ran (a task failed by its upstream did not)."""
    return o.status == "executed" or (o.status == "failed" and o.error is not None)


# -- tables ---------------------------------------------------------------------------
def tasks_table(pipeline: Pipeline, plan: RunReport) -> Table:
    """`lpipe list`: tasks in execution order, their dependencies and cached/stale state."""
    n = pipeline.ntasks
    table = Table(title=Text(f"{pipeline.name}: {n} task{'s' * (n != 1)}"), title_justify="left")
    table.add_column("#", justify="right", style="lp.dim")
    table.add_column("task", style="lp.task")
    table.add_column("depends on")
    table.add_column("state")
    for i, (name, needs) in enumerate(pipeline.dependency_map().items(), 1):
        outcome = plan.outcomes.get(name)
        state = state_of(outcome) if outcome is not None else "-"
        table.add_row(str(i), Text(name), Text(", ".join(needs) or "-"), state_text(state))
    return table


def status_table(plan: RunReport, records: Mapping[str, Mapping[str, Any] | None]) -> Table:
    """`lpipe status`: would each task run, and exactly why."""
    table = Table(title=Text(_plan_title(plan)), title_justify="left")
    table.add_column("task", style="lp.task", overflow="fold")
    table.add_column("next run")
    table.add_column("why", overflow="fold")  # a file name is folded, never cut
    table.add_column("stored result expires")
    nevers = 0
    for o in plan:
        record = records.get(o.name)
        expires = expiry_word(record) if record else "-"
        nevers += expires == "never"
        look = Status.of(o.status)
        table.add_row(Text(o.name), status_text(o.status, look.next_run if look else None),
                      Why(o.reasons), Text(expires))
    if nevers:
        table.caption = Text("never: kept until its code, inputs or upstream change",
                             style="lp.dim")
        table.caption_justify = "left"
    return table


def _plan_title(plan: RunReport) -> str:
    counts = plan.counts()
    parts = [f"{counts.get('run', 0)} will run", f"{counts.get('cached', 0)} reused"]
    if counts.get("waiting"):
        parts.append(f"{counts['waiting']} wait on upstream")
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} skipped")
    return f"{plan.pipeline}: " + ", ".join(parts)


def summary_table(report: RunReport) -> RenderableType:
    """The end of `lpipe run`: task, status, duration, reason, and the time the cache saved;
    then the summary line, which never wraps."""
    table = Table()
    table.add_column("task", style="lp.task", overflow="fold")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("saved", justify="right")
    table.add_column("why", overflow="fold")  # a file name is folded, never cut
    for o in report:
        table.add_row(
            Text(o.name), status_text(o.status),
            fmt_seconds(o.duration) if code_ran(o) else "-",
            fmt_seconds(o.stored_duration) if o.status == "cached" else "-",
            Why(o.reasons),
        )
    return Group(table, SummaryLine(report))


def history_table(runs: Sequence[Mapping[str, Any]], pipeline: str) -> Table:
    """`lpipe history`: past runs, newest last."""
    n = len(runs)
    table = Table(title=Text(f"{pipeline}: last {n} run{'s' * (n != 1)}"), title_justify="left")
    table.add_column("started")
    table.add_column("ran", justify="right")
    table.add_column("reused", justify="right")
    table.add_column("skipped", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("time", justify="right")
    table.add_column("saved", justify="right")
    for run in runs:
        counts = run.get("counts", {})
        failed = counts.get("failed", 0)
        table.add_row(
            fmt_time(run.get("started_at")), str(counts.get("executed", 0)),
            str(counts.get("cached", 0)), str(counts.get("skipped", 0)),
            Text(str(failed), style="lp.error" if failed else ""),
            fmt_seconds(run.get("duration")), fmt_seconds(run.get("saved")),
        )
    return table


def cache_table(rows: Sequence[tuple[str, Mapping[str, Any], bool]]) -> Table:
    """The shell's `list_cache`: (name, record, is a task of the pipeline) per stored result."""
    table = Table(title=Text(f"{len(rows)} stored results"), title_justify="left")
    table.add_column("task", style="lp.task")
    table.add_column("created")
    table.add_column("expires")
    table.add_column("size", justify="right")
    table.add_column("type")
    for name, record, known in rows:
        label = Text(name) if known else Text(f"{name} (no such task)", style="lp.dim")
        table.add_row(label, fmt_time(record.get("created_at")), Text(expiry_text(record)),
                      fmt_size(record.get("size")), Text(str(record.get("type", "-"))))
    return table


# -- failures ----------------------------------------------------------------------------
def log_file(pipeline: Pipeline, task: str) -> Path:
    """The task's log file (named as the library's log sink names it)."""
    path = pipeline.get_task(task).log_file
    assert path is not None  # a pipeline's task always has one
    return path


def failure_report(pipeline: Pipeline, report: RunReport, lines: int = 20) -> list[Any]:
    """For each task that raised: its error and the tail of its log file."""
    parts: list[Any] = []
    for name in report.failed:
        o = report[name]
        if o.error is None:  # not run because something upstream failed
            continue
        last = last_line(o.error)
        parts.append(Text.assemble((f"{Status.FAILED.symbol} ", "lp.error"), (name, "lp.task"),
                                   f" failed: {last}"))
        path = log_file(pipeline, name)
        tail = log_tail(path, lines)
        if tail:
            parts.append(Panel(Text("".join(tail).rstrip("\n")), title=Text(f"tail of {path}"),
                               title_align="left", border_style="red"))
    return parts


def log_tail(path: Path, n: int) -> list[str]:
    """The last `n` non-blank lines of a log file ([] if there is none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            # The file format puts a blank line after each record: skip those.
            return list(deque((line for line in f if line.strip()), maxlen=n))
    except OSError:
        return []


# -- a stored result ----------------------------------------------------------------------
def result_summary(name: str, record: Mapping[str, Any], value: Any, missing: bool,
                   stored_preview: Mapping[str, Any] | None = None) -> Group:
    """`lpipe show` / the shell's `peek`: what is stored for a task, with a short preview."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="lp.dim")
    facts.add_column()
    facts.add_row("task", Text(name, style="lp.task"))
    facts.add_row("type", Text(str(record.get("type", "-"))))
    facts.add_row("size", fmt_size(record.get("size")) + " (pickled)")
    facts.add_row("created", fmt_time(record.get("created_at")))
    facts.add_row("expires", Text(expiry_text(record)))
    facts.add_row("duration", fmt_seconds(record.get("duration")))
    if record.get("reasons"):
        facts.add_row("ran because", Text("; ".join(map(str, record["reasons"]))))
    if missing:
        body: RenderableType = Text("(its value has expired; the record is kept to say why "
                                    "it will rerun)", style="lp.dim")
    elif stored_preview is not None:
        body = stored(stored_preview)
    else:
        body = preview(value)
    return Group(facts, Text(""), body)


def stored(record: Mapping[str, Any], rows: int = PREVIEW_ROWS) -> RenderableType:
    """The preview kept with a record (nothing loaded): a DataFrame's first rows laid out
    for this console, else the text made when the value was stored."""
    head = record.get("preview_head")
    if head is not None:
        try:
            frame = pickle.loads(head)
            shape = " × ".join(str(n) for n in record.get("shape", frame.shape))
            return Group(FrameTable(frame, rows),
                         Text(f"[{shape}; first {rows} rows]", style="lp.dim"))
        except Exception:  # pandas gone or changed since: the text serves
            pass
    return Text(str(record.get("preview", "")))


def preview(value: Any, rows: int = PREVIEW_ROWS) -> RenderableType:
    """A short look at a value: the first rows of a DataFrame-like one, else a truncated repr."""
    if _is_frame(value) and hasattr(value, "columns") and hasattr(value, "index"):
        shape = " × ".join(str(n) for n in tuple(value.shape))
        return Group(FrameTable(value, rows),
                     Text(f"[{shape}; first {rows} rows]", style="lp.dim"))
    if _is_frame(value):
        try:
            head = value.head(rows)
            text = head.to_string() if hasattr(head, "to_string") else repr(head)
            shape = " × ".join(str(n) for n in tuple(value.shape))
            return Group(Text(text), Text(f"[{shape}; first {rows} rows]", style="lp.dim"))
        except Exception:  # a frame-like object that is not quite one: fall back to repr
            pass
    if isinstance(value, (list, tuple, set, frozenset, dict)) or is_dataclass(value):
        return Pretty(value, max_length=20, max_string=200, max_depth=4)
    return Text(short_repr(value))


def short_repr(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """repr() that stays readable for big containers and long texts."""
    try:
        text = repr(value)
    except Exception as e:  # a broken __repr__ must not break the shell
        return f"<{type(value).__qualname__} whose repr failed: {type(e).__name__}: {e}>"
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text)} characters)"
    return text


def _is_frame(value: Any) -> bool:
    return callable(getattr(value, "head", None)) and hasattr(value, "shape") and not isinstance(
        value, type)
