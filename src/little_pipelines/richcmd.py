"""A `cmd.Cmd` that prints through a Rich console and survives its commands' errors.

The machinery of `lp.Shell`, apart from anything about pipelines: a loop
where no error inside a command ends the session (it is shown, the prompt
returns), Ctrl-C at the prompt or in a command returns to the prompt, dashes in
command names work as underscores, `help` lists the commands with their
docstrings, and readline gives tab completion and history while it runs.
`startup()` / `shutdown()`, when a subclass defines them, replace the default
banner and goodbye.
"""

from __future__ import annotations

import argparse
import cmd
import inspect
import re
import shlex
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import CommandError, LittlePipelinesError, did_you_mean
from .render import make_console, themed


class Args(argparse.ArgumentParser):
    """argparse for one shell command: errors raise instead of exiting the program."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog=prog, add_help=False, exit_on_error=False)

    def error(self, message: str) -> Any:
        raise CommandError(f"{self.prog}: {message} (see: help {self.prog})")

    def parse(self, arg: str) -> argparse.Namespace:
        try:
            return self.parse_intermixed_args(shlex.split(arg))
        except argparse.ArgumentError as e:  # with exit_on_error=False argparse raises this
            self.error(str(e))
            raise  # pragma: no cover - error() raises


class RichCmd(cmd.Cmd):
    """A command loop printing on a Rich console.

    Parameters:
        console: the console to print on; default a themed one on `stdout`.
        completekey, stdin, stdout: as for `cmd.Cmd`; given a `stdin`, lines are
            read from it (no readline).
    """

    prompt = "> "
    title = "Shell"
    header: Any = None  # an optional string or Rich renderable shown under the title
    console: Console | None = None  # a subclass may set one for all its instances

    def __init__(self, *, console: Console | None = None, completekey: str = "tab",
                 stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
        super().__init__(completekey, stdin, stdout)
        if stdin is not None and stdin is not sys.stdin:
            self.use_rawinput = False
        if console is not None or self.console is None:
            self.console = themed(console) if console is not None else make_console(file=stdout)
        else:
            themed(self.console)

    @property
    def out(self) -> Console:
        assert self.console is not None
        return self.console

    # -- the loop -------------------------------------------------------------------
    def cmdloop(self, intro: Any = None) -> None:
        """Read and run commands until `exit`, `quit`, `q` or end of input (Ctrl-D)."""
        self.preloop()
        restore = self._install_readline()
        try:
            if intro is not None:
                self.out.print(intro)
            stop: Any = False
            while not stop:
                try:
                    line = self.cmdqueue.pop(0) if self.cmdqueue else self._read_line()
                    line = self.precmd(line)
                    stop = self.onecmd(line)
                    stop = self.postcmd(stop, line)
                except KeyboardInterrupt:  # at the prompt, or in a command that let it out
                    self.out.print(Text("^C (type exit to leave)", style="lp.dim"))
            self.postloop()
        finally:
            restore()

    def _read_line(self) -> str:
        if self.use_rawinput:
            try:
                return input(self.prompt)
            except EOFError:
                return "EOF"
        self.stdout.write(self.prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        return line.rstrip("\r\n") if line else "EOF"

    def _install_readline(self) -> Callable[[], None]:
        """Tab completion and in-memory history through readline, where there is one."""
        if not (self.use_rawinput and self.completekey):
            return lambda: None
        try:
            import readline
        except ImportError:
            return lambda: None
        old_completer, old_delims = readline.get_completer(), readline.get_completer_delims()
        # typeshed types cmd.Cmd.complete's result too loosely (list[str] | None).
        readline.set_completer(self.complete)  # type: ignore[arg-type]
        readline.set_completer_delims(" \t\n")  # task and command names may hold - and .
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind(f"{self.completekey}: complete")

        def restore() -> None:
            readline.set_completer(old_completer)
            readline.set_completer_delims(old_delims)

        return restore

    def onecmd(self, line: str) -> bool:
        try:
            return bool(super().onecmd(line))
        except (LittlePipelinesError, KeyError, ValueError, OSError) as e:
            self.out.print(Text.assemble(("error: ", "lp.error"), message(e)))
        except Exception as e:  # a bug in a command: show where, keep the shell
            self.out.print(Text(traceback.format_exc().rstrip(), style="lp.dim"))
            self.out.print(Text.assemble(("error: ", "lp.error"), f"{type(e).__name__}: {e}"))
        return False

    def precmd(self, line: str) -> str:
        """Dashes in a command name work as underscores: `list-tasks`, `help clear-cache`."""
        line = re.sub(r"^\S+", lambda m: m.group(0).replace("-", "_"), line.strip())
        return re.sub(r"^help \S+", lambda m: m.group(0).replace("-", "_"), line)

    def emptyline(self) -> bool:
        return False  # cmd's default repeats the last command: not with `execute`

    def default(self, line: str) -> None:
        name = line.split()[0] if line.split() else line
        hint = did_you_mean(name, self._command_names(), listing=False)
        raise CommandError(f"Unknown command {name!r}. {hint + ' ' if hint else ''}Type help for "
                           f"the commands.")

    def preloop(self) -> None:
        self._hook("startup", self._default_startup)

    def postloop(self) -> None:
        self._hook("shutdown", self._default_shutdown)

    def _hook(self, name: str, default: Callable[..., None]) -> None:
        hook = getattr(self, name, None)
        if not callable(hook):
            default()
            return
        try:
            hook()
        except Exception as e:
            default(err=e)

    def _default_startup(self, err: Exception | None = None) -> None:
        self.out.rule(Text(self.title, style="lp.title"), style="yellow")
        if self.header is not None:
            self.out.print(self.header)
        self.introduce()
        self.out.print(Text("Type help for the commands, exit to leave.", style="lp.dim"))
        if err is not None:
            self.out.print(Text(f"An error in startup(): {message(err)}", style="lp.error"))

    def introduce(self) -> None:
        """Lines shown under the title by the default banner (a subclass says more)."""

    def _default_shutdown(self, err: Exception | None = None) -> None:
        if err is not None:
            self.out.print(Text(f"An error in shutdown(): {message(err)}", style="lp.error"))
        self.out.print(Text("Bye.", style="lp.dim"))

    # -- leaving and help ----------------------------------------------------------------
    def do_exit(self, arg: str = "") -> bool:
        """Leave the shell (also: quit, q, Ctrl-D)."""
        return True

    def do_quit(self, arg: str = "") -> bool:
        """Leave the shell."""
        return self.do_exit(arg)

    def do_q(self, arg: str = "") -> bool:
        """Leave the shell."""
        return self.do_exit(arg)

    def do_EOF(self, arg: str = "") -> bool:
        """Leave the shell (Ctrl-D)."""
        self.out.print()
        return self.do_exit(arg)

    def do_help(self, arg: str) -> None:
        """List the commands, or show how to use one: help execute."""
        if arg.strip():
            name = arg.strip().replace("-", "_")
            method = getattr(self, f"do_{name}", None)
            if method is None:
                self.default(name)
                return
            self.out.print(Text(inspect.getdoc(method) or f"{name}: no help written."))
            return
        table = Table.grid(padding=(0, 2))
        for name in self._command_names():
            doc = inspect.getdoc(getattr(self, f"do_{name}")) or ""
            table.add_row(Text(name, style="lp.task"), Text(doc.splitlines()[0] if doc else ""))
        self.out.print(table)

    def _command_names(self) -> list[str]:
        return sorted(n[3:] for n in self.get_names() if n.startswith("do_") and n != "do_EOF")


    # -- completion -----------------------------------------------------------------------
    def completenames(self, text: str, *ignored: Any) -> list[str]:
        dashed = "-" in text
        names = [n.replace("_", "-") if dashed else n for n in self._command_names()]
        return [n for n in names if n.startswith(text)]

    def complete_help(self, text: str, *ignored: Any) -> list[str]:
        return self.completenames(text)


def message(error: BaseException) -> str:
    """An error as one readable line (KeyError would quote its message)."""
    if isinstance(error, KeyError) and not isinstance(error, LittlePipelinesError):
        return f"no such name: {error}"
    return str(error) or type(error).__name__


__all__ = ["Args", "CommandError", "RichCmd", "message"]
