"""`lp.Shell`: an interactive shell on a pipeline, kept in the original's shape.

A `cmd.Cmd` with a Rich console (its loop is `richcmd.RichCmd`). Subclass it to
add commands as `do_*` methods, set `prompt`, `title` and an optional `header`, and define
`startup()` / `shutdown()` to replace the default banner and goodbye::

    class MyShell(lp.Shell):
        title = "Sales ETL"

        def do_hello(self, arg):
            \"\"\"Say hello.\"\"\"
            self.console.print("hello")

    MyShell().set_pipeline(pipeline).cmdloop()

No error inside a command ends the loop: it is shown and the prompt returns.
Ctrl-C during a run stops it and returns to the prompt; the tasks that had
finished are stored (each result is written the moment its task finishes).
"""

from __future__ import annotations

import shlex
from typing import IO, TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from . import render
from .log import set_log_level
from .report import HISTORY_DEFAULT
from .richcmd import Args, CommandError, RichCmd

if TYPE_CHECKING:
    from rich.console import Console

    from .pipeline import Pipeline
    from .report import TaskOutcome

_RUN_OPTIONS = ("--force", "--skip=", "--no-deps")


class Shell(RichCmd):
    """An interactive shell on a pipeline; subclass it to add `do_*` commands.

    Parameters:
        pipeline: the pipeline to work on (or call `set_pipeline` later); default None.
        console: the Rich console to print on; default a themed one on `stdout`.
        completekey, stdin, stdout: as for `cmd.Cmd`; given a `stdin`, lines are
            read from it (no readline).
    """

    prompt = "> "
    title = "Little Pipelines Shell"
    header: Any = None  # an optional string or Rich renderable shown under the title
    powered_by = True
    pipeline: Pipeline | None = None

    def __init__(self, pipeline: Pipeline | None = None, *, console: Console | None = None,
                 completekey: str = "tab", stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None) -> None:
        super().__init__(console=console, completekey=completekey, stdin=stdin, stdout=stdout)
        if pipeline is not None:
            self.set_pipeline(pipeline)

    def set_pipeline(self, pipeline: Pipeline) -> Shell:
        """Work on this pipeline; returns the shell, so `.set_pipeline(p).cmdloop()` reads well."""
        self.pipeline = pipeline
        return self

    @property
    def p(self) -> Pipeline:
        """The pipeline, or a clear error when none was set."""
        if self.pipeline is None:
            raise CommandError("No pipeline: call shell.set_pipeline(pipeline) first.")
        return self.pipeline

    def introduce(self) -> None:
        if self.powered_by:
            self.out.print(Text("powered by Little Pipelines", style="lp.dim"))
        if self.pipeline is not None:
            self.out.print(Text.assemble("Loaded pipeline: ", (self.pipeline.name, "lp.path"),
                                         f" ({self.pipeline.ntasks} tasks)"))

    # -- completion -----------------------------------------------------------------------
    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        """Task names (and run options), for every command taking them."""
        if text.startswith("--skip="):
            return [f"--skip={n}" for n in self._task_names() if f"--skip={n}".startswith(text)]
        if text.startswith("-"):
            return [o for o in _RUN_OPTIONS if o.startswith(text)]
        return [n for n in self._task_names() if n.startswith(text)]

    def _task_names(self) -> list[str]:
        return list(self.pipeline.tasks_by_name()) if self.pipeline is not None else []

    # -- looking ---------------------------------------------------------------------------
    def do_list_tasks(self, arg: str) -> None:
        """Tasks in execution order, each cached or not cached."""
        plan = {o.name: o for o in self.p.plan()}
        for task in self.p.tasks:
            o = plan[task.name]
            if o.status == "cached":
                state, why = Text("cached", style="lp.state.cached"), ""
            elif o.status == "waiting":
                state, why = Text("cached", style="lp.state.cached"), "may rerun: "
            else:
                state, why = Text("not cached", style="lp.state.not_cached"), ""
            line = Text.assemble("- ", task.name, " (", state, ")")
            if o.status != "cached":
                line.append(f"  {why}{render.reason_text(o.reasons)}", style="lp.dim")
            self.out.print(line)
        self.out.print(Text(f"Total: {self.p.ntasks}", style="lp.dim"))

    do_tasks = do_list_tasks  # the original's name

    def do_status(self, arg: str) -> None:
        """Would each task run, and why: status [NAME ...]; with names, the evidence too."""
        names = shlex.split(arg) or None
        plan = self.p.plan(targets=names)
        self.out.print(render.status_table(plan, {o.name: self.p.record(o.name) for o in plan}))
        for name in names or ():  # diffs, file stamps, tokens
            self.out.print(self.p.explain(name))

    def do_graph(self, arg: str) -> None:
        """The dependency graph: graph [tree|mermaid|dot]."""
        from .diagram import FORMATS, draw

        fmt = arg.strip() or "tree"
        if fmt not in FORMATS:
            raise CommandError(f"graph takes {', '.join(FORMATS)}; got {fmt!r}.")
        drawing, note = draw(self.p, fmt)
        if note:
            self.out.print(Text(note, style="lp.warn"))
        self.out.print(drawing, soft_wrap=fmt != "tree")

    def do_peek(self, arg: str) -> None:
        """Preview a task's stored result: peek NAME."""
        from .store import MISSING

        name = self._one_task(arg, "peek")
        stored = self.p.stored_preview(name)
        if stored is not None:
            self.out.print(render.stored(stored))  # kept with the value: nothing loaded
            return
        value = self.p.get_result(name, default=MISSING)
        if value is MISSING:
            record = self.p.record(name)
            what = (f"No stored result for {name!r}" if record is None else
                    f"The stored result of {name!r} has expired (it expires "
                    f"{render.expiry_text(record)})")
            self.out.print(Text(f"{what}; run: execute {name}"))
            return
        self.out.print(render.preview(value))

    def do_info(self, arg: str) -> None:
        """What a task is: its documentation, dependencies, inputs, expiry and stored result."""
        task = self.p.get_task(self._one_task(arg, "info"))
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="lp.dim")
        facts.add_row("task", Text(task.name, style="lp.task"))
        if getattr(task, "description", None):
            facts.add_row("about", Text(str(task.description)))
        facts.add_row("depends on", Text(", ".join(task.dependency_names(self.p.tasks_by_name()))
                                         or "-"))
        facts.add_row("input files", Text(", ".join(task.input_paths) or "-"))
        facts.add_row("expiry", Text(repr(task.expire_results)))
        record = self.p.record(task.name)
        facts.add_row("stored", Text("-" if record is None else
                                     f"{record.get('type', '?')}, created "
                                     f"{render.fmt_time(record.get('created_at'))}, expires "
                                     f"{render.expiry_text(record)}"))
        self.out.print(facts)
        if task.info:  # the function's docstring; a classic task's module's (or processes')
            self.out.print(Text(task.info, style="yellow"))

    def do_history(self, arg: str) -> None:
        """Past runs: history [--last N]."""
        parser = Args("history")
        parser.add_argument("--last", type=int, default=HISTORY_DEFAULT)
        runs = self.p.history()[-max(parser.parse(arg).last, 1):]
        if not runs:
            self.out.print(f"No runs of {self.p.name!r} yet.")
            return
        self.out.print(render.history_table(runs, self.p.name))

    def do_validate(self, arg: str) -> None:
        """Check the pipeline's definition; every problem is listed at once."""
        self.p.validate()
        self.out.print(Text(f"✓ {self.p.name!r} is valid ({self.p.ntasks} tasks).",
                            style="lp.ok"))

    # -- the cache ---------------------------------------------------------------------------
    def do_list_cache(self, arg: str) -> None:
        """Stored results: list_cache [--all].

        --all also lists results stored under names that are no longer tasks.
        """
        parser = Args("list_cache")
        parser.add_argument("--all", action="store_true")
        show_all = parser.parse(arg).all
        names = self.p.task_names()
        known = self.p.tasks_by_name()
        if show_all:
            names += [n for n in self.p.stored_names() if n not in known]
        rows = [(n, rec, n in known) for n in names
                for rec in (self.p.stored_record(n),) if rec is not None]
        self.out.print(render.cache_table(rows))

    def do_clear_cache(self, arg: str) -> None:
        """Forget stored results: clear_cache NAME [NAME ...], or clear_cache . for all."""
        names = shlex.split(arg)
        if not names:
            raise CommandError("clear_cache needs a task name, or . for every stored result.")
        gone = self.p.clear(None if names == ["."] else names)
        self.out.print(f"Cleared {len(gone)} stored result{'s' * (len(gone) != 1)}"
                       + (f": {', '.join(gone)}" if gone else "") + ".")

    do_cachelist, do_cacheclear = do_list_cache, do_clear_cache  # the original's names

    # -- running ---------------------------------------------------------------------------------
    def do_execute(self, arg: str) -> None:
        """Run the pipeline, reusing what is cached.

        execute                    every task
        execute --force            rerun every task
        execute --skip=NAME ...    do not run NAME; tasks below use its stored result
        execute NAME [NAME ...]    these tasks and their upstream
        execute NAME --force       rerun NAME even if cached (upstream reused)
        """
        parser = Args("execute")
        parser.add_argument("names", nargs="*")
        parser.add_argument("--force", action="store_true")
        parser.add_argument("--skip", action="append", default=[])
        a = parser.parse(arg)
        if a.names:
            self._run(targets=a.names, force_tasks=a.names if a.force else None,
                      skip_tasks=a.skip or None)
        else:
            self._run(force=a.force, skip_tasks=a.skip or None)

    def do_executeone(self, arg: str) -> None:
        """Run one task alone, without its upstream: executeone NAME --no-deps."""
        parser = Args("executeone")
        parser.add_argument("name")
        parser.add_argument("--no-deps", action="store_true")
        self._run(single_task=parser.parse(arg).name)

    def _run(self, **options: Any) -> None:
        finished: list[str] = []

        def progress(event: str, name: str, outcome: TaskOutcome | None) -> None:
            if outcome is not None and outcome.status == "executed":
                finished.append(name)

        try:
            report = self.p.execute(progress=progress, **options)
        except KeyboardInterrupt:
            kept = f": {', '.join(finished)}" if finished else ""
            self.out.print(Text.assemble(
                ("Interrupted. ", "lp.warn"),
                f"{len(finished)} finished task(s) are stored{kept}; execute resumes the run."))
            return
        self.out.print(render.summary_table(report))
        if report.failed:
            for part in render.failure_report(self.p, report):
                self.out.print(part)
            self.out.print(Text("Fix the failing task, then execute again: finished tasks "
                                "are reused.", style="lp.hint"))

    # -- logging ----------------------------------------------------------------------------------
    def do_log(self, arg: str) -> None:
        """Set the console's log level: log DEBUG|PERF|INFO|WARNING|ERROR|CRITICAL."""
        level = arg.strip()
        if not level:
            raise CommandError("log needs a level, e.g. log DEBUG.")
        set_log_level(int(level) if level.isdigit() else level)
        self.out.print(f"Log level set to {level.upper()}.")

    def do_quiet(self, arg: str) -> None:
        """Show only errors from the running tasks (log ERROR)."""
        self.do_log("ERROR")

    # -- helpers -------------------------------------------------------------------------------
    def _one_task(self, arg: str, command: str) -> str:
        names = shlex.split(arg)
        if len(names) != 1:
            raise CommandError(f"{command} takes one task name, e.g. {command} "
                                  f"{next(iter(self._task_names()), 'NAME')}.")
        return self.p.get_task(names[0]).name



__all__ = ["Shell"]
