"""Demo tasks and pipelines shared by the test modules (one copy, not one per file).

`task` builds a classic task that notes it ran; `add_diamond` the diamond most
execution tests start from; `write` rewrites a file so that its mtime moves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import little_pipelines as lp


def write(path: Path | str, text: str) -> None:
    """Rewrite a file and make sure its mtime moves (filesystem clocks can be coarse)."""
    path = Path(path)
    before = path.stat().st_mtime_ns if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if before is not None:
        later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
        os.utime(path, ns=(later, later))


def task(name: str, deps: Any = (), ran: list[str] | None = None, *, value: Any = None,
         fail: bool = False, reads: str | None = None, **options: Any) -> lp.Task:
    """A classic task: notes that it ran, may read a file, fail, or return `value`;
    by default it returns its name and its dependencies' results."""
    t = lp.Task(name, dependencies=list(deps), input_files=[reads] if reads else None,
                **options)

    @t.process
    def run(this: lp.Task) -> Any:
        if ran is not None:
            ran.append(this.name)
        if fail:
            raise ZeroDivisionError(f"{this.name} divided by zero")
        if reads:
            with open(reads) as f:
                return f.read()
        if value is not None:
            return value() if callable(value) else value
        assert this.pipeline is not None
        return [name, *(this.pipeline.get_result(d) for d in deps)]

    return t


def diamond_tasks(ran: list[str] | None = None) -> list[lp.Task]:
    """A reads a.txt (written here); B and C need A; D needs B and C; Side stands alone."""
    write("a.txt", "1")
    return [task("A", ran=ran, reads="a.txt"), task("B", ["A"], ran), task("C", ["A"], ran),
            task("D", ["B", "C"], ran), task("Side", ran=ran)]
