"""The `lpipe` command line's grammar: its commands, their arguments, and parsing.

What each command does is in `cli`; this room holds only what `lpipe --help`
needs, so it stays quick (no Rich, no pipeline machinery).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .report import HISTORY_DEFAULT  # plain data: --help needs no Rich


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("tasks", nargs="*", metavar="TASK", help="run these and their upstream "
                   "(default: every task)")
    p.add_argument("--force", action="store_true", help="rerun every selected task")
    p.add_argument("--force-task", action="append", metavar="T", default=[],
                   help="rerun T even if cached (repeatable)")
    p.add_argument("--skip", action="append", metavar="T", default=[],
                   help="do not run T; tasks below use its stored result (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="say what would run, run nothing")
    p.add_argument("--executor", metavar="NAME",
                   help="where tasks run: sequential (default), threads, processes, dask")
    p.add_argument("--workers", type=_positive, metavar="N", help="size of the worker pool")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run on an existing Dask cluster, e.g. tcp://127.0.0.1:8786")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true",
                      help="no progress and no table: the summary line and failures only")
    loud.add_argument("-v", "--verbose", action="store_true",
                      help="also print the library's and tasks' log lines (DEBUG)")


def _add_tasks(p: argparse.ArgumentParser) -> None:
    p.add_argument("tasks", nargs="*", metavar="TASK", help="these tasks and their upstream "
                   "(default: every task)")


def _add_status(p: argparse.ArgumentParser) -> None:
    _add_tasks(p)
    p.add_argument("--explain", action="append", metavar="TASK", default=[],
                   help="show the evidence for TASK's decision: diffs, file stamps, tokens")


def _add_accept(p: argparse.ArgumentParser) -> None:
    p.add_argument("tasks", nargs="+", metavar="TASK")


def _add_graph(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("tree", "mermaid", "dot"), default="tree",
                   help="tree (coloured, the default), mermaid or dot (Graphviz) text")


def _add_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK")


def _add_forget(p: argparse.ArgumentParser) -> None:
    p.add_argument("tasks", nargs="*", metavar="TASK")
    p.add_argument("--all", action="store_true", help="forget every stored result")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _add_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--last", type=_positive, default=HISTORY_DEFAULT, metavar="N",
                   help=f"show the last N runs (default {HISTORY_DEFAULT})")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--timeline", action="store_true",
                       help="draw the last run's tasks as bars over time")
    shape.add_argument("--html", type=Path, metavar="FILE",
                       help="write one self-contained HTML file: the last run's table and "
                            "timeline, and the run history")


def _add_nothing(p: argparse.ArgumentParser) -> None:
    pass


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


#: name -> (help, how to add its arguments); what each does is `cli.HANDLERS`
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run tasks (all, or the named ones and their upstream)", _add_run),
    "list": ("tasks in execution order, their dependencies and state", _add_nothing),
    "status": ("would each task run, and why (runs nothing)", _add_status),
    "accept": ("count tasks' current code and inputs as matching their stored results",
               _add_accept),
    "graph": ("the dependency graph (tree, mermaid, dot)", _add_graph),
    "show": ("a summary and preview of a task's stored result", _add_show),
    "forget": ("delete stored results", _add_forget),
    "history": ("past runs: what ran, what was reused, time saved", _add_history),
    "shell": ("an interactive shell on the pipeline", _add_nothing),
}

_EPILOG = """\
PIPELINE is a .py file (its one Pipeline, or --pipeline NAME among several, or a
pipeline made of its Tasks) or module:attribute.

examples:
  lpipe run examples/quickstart.py
  lpipe run examples/quickstart.py report --force-task rows
  lpipe status examples/quickstart.py
  lpipe status examples/quickstart.py --explain report
  lpipe graph examples/quickstart.py --format mermaid
  lpipe shell examples/quickstart.py
"""


def _command_parser(name: str) -> argparse.ArgumentParser:
    help_text, add = COMMANDS[name]
    p = argparse.ArgumentParser(prog=f"lpipe {name}", description=help_text[:1].upper()
                                + help_text[1:] + ".")
    p.add_argument("spec", metavar="PIPELINE", help="a .py file, or module:attribute")
    p.add_argument("--pipeline", dest="pipeline_name", metavar="NAME",
                   help="which pipeline, when PIPELINE defines several")
    add(p)
    return p


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lpipe", description="Run and inspect Little Pipelines.", epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"lpipe {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line; argparse exits (status 2) on a bad one, 0 on --help."""
    if argv and argv[0] in COMMANDS:
        # Each command parses on its own, intermixed, so options may come between
        # task names: `lpipe run etl.py a --skip b c`.
        args = _command_parser(argv[0]).parse_intermixed_args(argv[1:])
        args.command = argv[0]
        return args
    return _top_parser().parse_args(argv)  # --help, --version, or an error


__all__ = ["COMMANDS", "parse_args"]
