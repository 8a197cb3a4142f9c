"""`lpipe`: run and inspect a pipeline from the command line.

    lpipe run examples/quickstart.py           # run it; cached tasks are reused
    lpipe status examples/quickstart.py        # what would run, and why
    lpipe shell examples/quickstart.py         # explore it interactively

Exit status: 0 when every selected task ran or was reused, 1 when a task failed
(or `show` found nothing stored, or `forget` was declined), 2 for a usage,
loading or validation error (one clear message, no traceback of ours; a file
that fails to import shows its own), 130 when interrupted.

Rich is imported only once a command runs, so `lpipe --help` stays quick.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .commandline import parse_args
from .errors import LittlePipelinesError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from .pipeline import Pipeline
    from .report import RunReport

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
LOG_TAIL_LINES = 20


@dataclass
class Context:
    """What a command works with: the parsed arguments, the pipeline, the consoles."""

    args: argparse.Namespace
    pipeline: Pipeline
    out: Console
    err: Console


# -- commands ------------------------------------------------------------------------------
def cmd_run(ctx: Context) -> int:
    """Run the targets and their upstream, show progress, end with a summary."""
    from . import set_log_level
    from .display import RunView
    from .fit import SummaryLine
    from .log import hide_story_on_console
    from .render import status_table, summary_table

    p, a, out = ctx.pipeline, ctx.args, ctx.out
    options: dict[str, Any] = {"targets": a.tasks or None, "force": a.force,
                               "force_tasks": a.force_task or None, "skip_tasks": a.skip or None}
    if a.dry_run:
        plan = p.plan(**options)
        out.print(status_table(plan, {o.name: p.record(o.name) for o in plan}))
        return EXIT_OK
    for option in ("executor", "workers", "scheduler"):
        if getattr(a, option) is not None:
            options[option] = getattr(a, option)
    # The live view below draws each task's status and the summary: the library's
    # own status lines would repeat them, so the console leaves them out (the
    # files keep them). What tasks log at WARNING and above still shows.
    set_log_level("DEBUG" if a.verbose else "ERROR" if a.quiet else "WARNING")
    hide_story_on_console(True)
    view = RunView(out, _selected(p, a.tasks), live=out.is_terminal and not (a.verbose or a.quiet))
    try:
        with view:
            report = p.execute(**options, progress=None if a.quiet else view)
    except KeyboardInterrupt:
        done = [n for n, o in view.outcomes.items() if o.status == "executed"]
        out.print(_t(("interrupted", "lp.warn"), f": {len(done)} task(s) finished and are "
                     f"stored{': ' + ', '.join(done) if done else ''}."))
        out.print(_t("Resume with: ", (_resume_command(a), "lp.hint")), soft_wrap=True)
        return EXIT_INTERRUPTED
    out.print(summary_table(report) if not a.quiet else SummaryLine(report))
    if report.failed:
        _show_failures(ctx, report)
        return EXIT_FAILED
    return EXIT_OK


def cmd_list(ctx: Context) -> int:
    """Tasks in execution order with their dependencies and cached/stale state."""
    from .render import tasks_table

    ctx.out.print(tasks_table(ctx.pipeline, ctx.pipeline.plan()))
    return EXIT_OK


def cmd_status(ctx: Context) -> int:
    """For each task: would it run, and exactly why; runs nothing."""
    from .render import status_table

    p = ctx.pipeline
    for name in ctx.args.explain:  # the evidence: diffs, stamps, tokens
        ctx.out.print(p.explain(name))
    if ctx.args.explain and not ctx.args.tasks:
        return EXIT_OK
    plan = p.plan(targets=ctx.args.tasks or None)
    ctx.out.print(status_table(plan, {o.name: p.record(o.name) for o in plan}))
    return EXIT_OK


def cmd_accept(ctx: Context) -> int:
    """Mark tasks' current code, inputs, params and sources as matching their results."""
    from . import set_log_level

    set_log_level("WARNING")  # the line below says it; the library's would repeat it
    accepted = ctx.pipeline.accept(ctx.args.tasks)
    ctx.out.print(_t(("accepted: ", "lp.ok"), ", ".join(accepted),
                     " (their stored results now count as up to date)"))
    return EXIT_OK


def cmd_graph(ctx: Context) -> int:
    """The dependency graph: a coloured tree, or Mermaid / DOT text."""
    from .diagram import draw

    drawing, note = draw(ctx.pipeline, ctx.args.format)
    if note:
        ctx.err.print(_t(("note: ", "lp.warn"), note))
    # soft_wrap: Mermaid and DOT lines must reach a file unbroken, whatever the width.
    ctx.out.print(drawing, soft_wrap=ctx.args.format != "tree")
    return EXIT_OK


def cmd_show(ctx: Context) -> int:
    """A summary of a task's stored result with a short preview."""
    from .render import result_summary
    from .store import MISSING

    p, name = ctx.pipeline, ctx.pipeline.get_task(ctx.args.task).name
    record = p.record(name)
    if record is None:
        ctx.out.print(_t("No stored result for ", (name, "lp.task"), ". Compute it with: ",
                         (_command("run", ctx.args, [name]), "lp.hint")), soft_wrap=True)
        return EXIT_FAILED
    stored = p.stored_preview(name)
    if stored is not None:
        # Made when the value was stored: a 512 MB DataFrame is not loaded to show 5 rows.
        ctx.out.print(result_summary(name, record, None, missing=False, stored_preview=stored))
        return EXIT_OK
    try:
        value = p.get_result(name, default=MISSING)
    except Exception as e:  # e.g. its class can no longer be imported
        ctx.err.print(_t(("error: ", "lp.error"), f"the stored value of {name!r} could not be "
                         f"loaded: {type(e).__name__}: {e}"))
        return EXIT_FAILED
    ctx.out.print(result_summary(name, record, value, missing=value is MISSING))
    return EXIT_OK


def cmd_forget(ctx: Context) -> int:
    """Delete stored results (asks first on a terminal unless --yes)."""
    p, a = ctx.pipeline, ctx.args
    if not a.tasks and not a.all:
        raise UsageError("forget needs task names, or --all to forget every stored result.")
    names = None if a.all else [p.get_task(n).name for n in a.tasks]  # unknown: exit 2
    what = (f"all stored results of {p.name!r}" if names is None
            else f"the stored results of {', '.join(names)}")
    if not a.yes and _stdin_is_terminal():
        try:
            answer = ctx.out.input(_t(f"Forget {what}? [y/N] "))
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            ctx.out.print("Nothing forgotten.")
            return EXIT_FAILED
    order = {t.name: i for i, t in enumerate(p.tasks)}
    gone = sorted(p.clear(names), key=lambda n: (order.get(n, len(order)), n))
    ctx.out.print(_t(f"Forgot {len(gone)} stored result{'s' * (len(gone) != 1)}",
                     f": {', '.join(gone)}." if gone else "."))
    if names is not None and len(gone) < len(names):
        ctx.out.print(_t(("Had none: " + ", ".join(n for n in names if n not in gone), "lp.dim")))
    return EXIT_OK


def cmd_history(ctx: Context) -> int:
    """Past runs: when, how many ran, were reused, failed; time taken and saved."""
    from .render import history_table

    p, a = ctx.pipeline, ctx.args
    runs = p.history()[-a.last:]
    if not runs:
        ctx.out.print(f"No runs of {p.name!r} yet.")
        return EXIT_OK
    last = p.last_run()
    if a.html:
        from .notebook import history_html, page, report_html

        bodies = [report_html(last)] if last is not None else []
        try:
            a.html.write_text(page(f"{p.name}: runs", *bodies, history_html(runs, p.name)),
                              encoding="utf-8")
        except OSError as e:
            raise UsageError(f"Could not write {str(a.html)!r}: {e.strerror or e}. Give a "
                             f"file in a folder you can write to.") from None
        ctx.out.print(_t("Wrote ", (str(a.html), "lp.path"),
                         " (the last run's table and timeline, and the run history)."))
        return EXIT_OK
    if a.timeline:
        from .timeline import RichTimeline

        if last is None:
            ctx.out.print("The last run's times were not kept (it ran with an older version).")
            return EXIT_OK
        ctx.out.print(RichTimeline(last))
        return EXIT_OK
    ctx.out.print(history_table(runs, p.name))
    return EXIT_OK


def cmd_shell(ctx: Context) -> int:
    """The interactive shell on this pipeline."""
    from .shell import Shell

    Shell(ctx.pipeline, console=ctx.out).cmdloop()
    return EXIT_OK


# -- helpers ---------------------------------------------------------------------------------
def _selected(p: Pipeline, targets: Sequence[str]) -> list[str]:
    """The tasks a run of these targets touches, in execution order (unknown names raise)."""
    from .graph import upstream

    if not targets:
        return p.task_names()
    deps = p.dependency_map()
    seen = upstream(deps, [p.get_task(n).name for n in targets])
    return [n for n in deps if n in seen]


def _show_failures(ctx: Context, report: RunReport) -> None:
    from .render import failure_report

    for part in failure_report(ctx.pipeline, report, LOG_TAIL_LINES):
        ctx.out.print(part)
    ctx.out.print(_t("Fix the failing task, then resume with: ",
                     (_resume_command(ctx.args), "lp.hint"),
                     ("  (finished tasks are reused)", "lp.dim")), soft_wrap=True)


def _resume_command(a: argparse.Namespace) -> str:
    """The same run without --force: what finished is reused, the rest runs."""
    extra: list[str] = []
    for skip in a.skip or ():
        extra += ["--skip", skip]
    if a.executor:
        extra += ["--executor", a.executor]
    if a.workers:
        extra += ["--workers", str(a.workers)]
    return _command("run", a, [*a.tasks, *extra])


def _command(name: str, a: argparse.Namespace, rest: Sequence[str]) -> str:
    words = ["lpipe", name, a.spec, *rest]
    if a.pipeline_name:
        words += ["--pipeline", a.pipeline_name]
    return shlex.join(words)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _t(*parts: Any) -> Any:
    """Text from plain parts or (text, style) pairs: never parsed as markup."""
    from rich.text import Text

    return Text.assemble(*parts)


#: command name -> what it does (its help and arguments: `commandline.COMMANDS`)
HANDLERS: dict[str, Callable[[Context], int]] = {
    "run": cmd_run, "list": cmd_list, "status": cmd_status, "accept": cmd_accept,
    "graph": cmd_graph, "show": cmd_show, "forget": cmd_forget, "history": cmd_history,
    "shell": cmd_shell,
}


def main(argv: Sequence[str] | None = None, *, console: Console | None = None,
         err_console: Console | None = None) -> int:
    """Run `lpipe` with these arguments (default: sys.argv[1:]); returns the exit status.

    Parameters:
        argv: the arguments, without the program name.
        console: where output goes (default: a themed console on stdout).
        err_console: where errors go (default: a themed console on stderr).
    """
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    from .log import hide_story_on_console
    from .render import make_console, themed

    out = themed(console) if console is not None else make_console()
    err = themed(err_console) if err_console is not None else make_console(stderr=True)
    try:
        pipeline = _load(args)
        return HANDLERS[args.command](Context(args, pipeline, out, err))
    except KeyboardInterrupt:
        err.print(_t(("interrupted", "lp.warn")))
        return EXIT_INTERRUPTED
    except LittlePipelinesError as e:
        details = getattr(e, "details", "")
        if details:
            err.print(_t(details.rstrip("\n")), soft_wrap=True)  # as Python prints it
        err.print(_t(("error: ", "lp.error"), str(e)), soft_wrap=True)
        return EXIT_USAGE
    finally:
        hide_story_on_console(False)  # `main` may be called in a longer-lived process


def _load(args: argparse.Namespace) -> Pipeline:
    from .loading import load_pipeline

    pipeline = load_pipeline(args.spec, args.pipeline_name)
    pipeline.validate()
    return pipeline


__all__ = ["HANDLERS", "main", "parse_args"]
