"""Find the pipeline a command line names: a `.py` file or `module:attribute`.

`load_pipeline("etl.py")` imports the file as a module and looks in its
namespace: one `Pipeline` is the one; several need a name (`--pipeline`); Tasks
without a Pipeline are gathered into one (`find_tasks`). `"pkg.etl:pipeline"`
imports the module and takes the attribute (a Pipeline, or a function taking no
arguments that returns one).

Everything a user can get wrong raises `LoadError` with one clear sentence; when
the user's own code failed to import, `details` holds *its* traceback, with the
importing machinery's frames cut off.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from .errors import LoadError, did_you_mean
from .pipeline import Pipeline
from .task import Task

__all__ = ["LoadError", "load_pipeline"]


def load_pipeline(spec: str, name: str | None = None) -> Pipeline:
    """The pipeline named by `spec` (a `.py` file, `module:attribute` or `module`).

    Parameters:
        spec: a path to a Python file, or an importable module with an optional
            `:attribute` (dots allowed: `pkg.mod:ns.pipeline`).
        name: which pipeline, when the module defines several (matches the
            pipeline's name or the variable holding it); default None.
    """
    kind, target, attr = _split(spec)
    module = _import_path(target) if kind == "file" else _import_module(target)
    if attr:
        return _from_attribute(module, attr, spec)
    return _from_namespace(module, spec, name)


def _split(spec: str) -> tuple[str, str, str]:
    """("file" or "module", what to import, attribute or "")."""
    head, sep, tail = spec.rpartition(":")
    # rpartition and an identifier check: a Windows drive (C:\\x.py) is no attribute.
    target, attr = (head, tail) if sep and _dotted(tail) else (spec, "")
    is_path = os.sep in target or bool(os.altsep and os.altsep in target)
    if target.endswith(".py") or is_path or os.path.isfile(target):
        return "file", target, attr
    if not _dotted(target):
        raise LoadError(
            f"PIPELINE {spec!r} is neither a .py file nor module:attribute. Give a path "
            f"(pipelines/etl.py) or a module and attribute (pipelines.etl:pipeline)."
        )
    return "module", target, attr


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


# -- importing ----------------------------------------------------------------------
def _import_path(spec: str) -> ModuleType:
    # abspath, not resolve(): Python names a script's code by its absolute path
    # without following symlinks, and the code fingerprint is keyed by that name;
    # resolving would make `python etl.py` and `lpipe run etl.py` disagree.
    path = Path(os.path.abspath(spec))
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise LoadError(f"No such file: {spec!r}{hint}. Give the path of a Python file that "
                        f"defines a pipeline, e.g. lpipe run examples/quickstart.py.")
    package = _package_name(path)
    if package is not None:
        return _import_in_package(spec, path, package)
    folder = str(path.parent)
    if folder not in sys.path:  # as `python etl.py` does: its neighbours are importable
        sys.path.insert(0, folder)
    name = _module_name(path)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise LoadError(f"Cannot import {spec!r}: Python does not load files of this kind; "
                        f"give a .py file.")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # so pickled results of classes defined there load again
    try:
        module_spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        sys.modules.pop(name, None)
        raise _import_failed(spec, e) from None
    return module


def _package_name(path: Path) -> tuple[str, Path] | None:
    """(dotted module name, folder above the top package) for a file inside a package.

    Walks up while the folder holds an `__init__.py`, as pytest does, so that
    `lpipe run mypipe/tasks.py` imports `mypipe.tasks`: the name `python run.py`
    and `lpipe run mypipe.tasks:pipeline` give it, so relative imports work and
    all three share one cache (a task's code is known by its module's name).
    """
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    if len(parts) == 1 or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts), folder


def _import_in_package(spec: str, path: Path, package: tuple[str, Path]) -> ModuleType:
    name, root = package
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(name)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise _import_failed(spec, e, hint=f" It was imported as {name!r} (from {str(root)!r}); "
                             f"you can also give it as {name}:ATTRIBUTE.") from None
    found = Path(os.path.abspath(getattr(module, "__file__", "") or ""))
    if found != path:
        raise LoadError(
            f"{spec!r} is module {name!r} of a package, but importing {name!r} gives "
            f"{str(found)!r} (another copy earlier on sys.path). Run lpipe from "
            f"{str(root)!r}, or give it as {name}:ATTRIBUTE."
        )
    return module


def _module_name(path: Path) -> str:
    """The file's stem, unless that would shadow a module (then a private name)."""
    stem = path.stem
    if stem.isidentifier() and stem not in sys.modules and stem not in sys.stdlib_module_names:
        return stem
    return "lpipe_" + re.sub(r"\W", "_", stem)


def _import_module(name: str) -> ModuleType:
    if os.getcwd() not in sys.path:  # as `python -m` does
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except KeyboardInterrupt:
        raise
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            raise LoadError(
                f"No module named {e.name!r} (looked in the current folder and sys.path). "
                f"Give a .py file, or run from the folder that holds the module."
            ) from None
        raise _import_failed(name, e) from None
    except BaseException as e:
        raise _import_failed(name, e) from None


def _import_failed(what: str, error: BaseException, hint: str = "") -> LoadError:
    if isinstance(error, SystemExit):
        return LoadError(f"{what} called sys.exit({error.code!r}) while being imported; "
                         f"keep command-line handling under `if __name__ == '__main__':`.")
    if not hint and isinstance(error, ImportError) and what.endswith(".py"):
        hint = (" If the file belongs to a package, give it as module:attribute from the "
                "folder above the package (e.g. lpipe run mypackage.tasks:pipeline).")
    text = f"{what} failed to import: {type(error).__name__}: {error}"
    if hint:
        text = (text if text.endswith(".") else text + ".") + hint
    return LoadError(text, details=_user_traceback(error))


def _user_traceback(error: BaseException) -> str:
    """The traceback from the user's first frame on (not this module's nor importlib's)."""
    tb: TracebackType | None = error.__traceback__
    while tb is not None and _is_machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def _is_machinery(filename: str) -> bool:
    return filename == __file__ or filename.startswith("<frozen importlib")


# -- finding the pipeline -----------------------------------------------------------------
def _from_attribute(module: ModuleType, attr: str, spec: str) -> Pipeline:
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            candidates = [n for n in dir(value) if not n.startswith("_")]
            hint = did_you_mean(part, candidates, listing=False) or (
                "Pipelines there: " + (", ".join(_pipeline_vars(module)) or "none") + ".")
            raise LoadError(f"{spec!r}: {module.__name__!r} has no attribute {part!r}. {hint}")
        value = getattr(value, part)
    if isinstance(value, Pipeline):
        return value
    if isinstance(value, Task):
        return _gather([value], _safe_name(value.name), spec)
    if callable(value):
        try:
            made = value()
        except Exception as e:
            raise LoadError(f"{spec!r}: calling {attr}() failed: {type(e).__name__}: {e}",
                            details=_user_traceback(e)) from None
        if isinstance(made, Pipeline):
            return made
        raise LoadError(f"{spec!r}: {attr}() returned {made!r}, not a Pipeline.")
    raise LoadError(f"{spec!r}: {attr} is {value!r}, not a Pipeline (nor a function "
                    f"returning one).")


def _from_namespace(module: ModuleType, spec: str, name: str | None) -> Pipeline:
    found = _pipelines(module)
    if name is not None:
        if not found:  # tasks only: the name is the pipeline's to be
            return _gather_module(module, spec, _safe_name(name))
        for var, p in found.items():
            if name in (var, p.name):
                return p
        known = sorted({p.name for p in found.values()} | set(found))
        hint = did_you_mean(name, known, listing=False)
        raise LoadError(f"{spec!r} defines no pipeline named {name!r}. {hint} Pipelines "
                        f"there: {_listing(found)}.".replace(".  ", ". "))
    pipelines = list({id(p): p for p in found.values()}.values())
    if len(pipelines) == 1:
        return pipelines[0]
    if len(pipelines) > 1:
        raise LoadError(f"{spec!r} defines {len(pipelines)} pipelines ({_listing(found)}); "
                        f"pick one with --pipeline NAME.")
    return _gather_module(module, spec, _safe_name(Path(module.__file__ or spec).stem))


def _pipelines(module: ModuleType) -> dict[str, Pipeline]:
    return {var: v for var, v in vars(module).items() if isinstance(v, Pipeline)}


def _pipeline_vars(module: ModuleType) -> list[str]:
    return list(_pipelines(module))


def _listing(found: dict[str, Pipeline]) -> str:
    return ", ".join(f"{p.name!r}" if p.name == var else f"{p.name!r} as {var}"
                     for var, p in found.items())


def _gather_module(module: ModuleType, spec: str, name: str) -> Pipeline:
    """A pipeline of the module's Tasks, in the order the module defines them."""
    tasks = find_tasks(vars(module))
    position = {id(v): i for i, v in enumerate(vars(module).values())}
    ordered = sorted(tasks, key=lambda t: (position.get(id(t), len(position)), t.name))
    owners = {id(t.pipeline): t.pipeline for t in ordered if t.pipeline is not None}
    if len(owners) == 1 and all(t.pipeline is not None for t in ordered):
        only = next(iter(owners.values()))
        if isinstance(only, Pipeline):
            return only  # the tasks' own pipeline, made out of sight (inside a function)
    return _gather(ordered, name, spec)


def _gather(tasks: list[Task], name: str, spec: str) -> Pipeline:
    if not tasks:
        raise LoadError(
            f"{spec!r} defines no pipeline and no tasks. Define one at module level, e.g. "
            f"pipeline = lp.Pipeline('etl'), and add tasks to it."
        )
    return Pipeline(name).add(*tasks)


def find_tasks(namespace: Mapping[str, Any], nested: bool = True) -> set[Task]:
    """The Tasks among a namespace's values (e.g. `globals()`), one level into modules."""
    found: set[Task] = set()
    for value in list(namespace.values()):
        if isinstance(value, Task):
            found.add(value)
        elif nested and isinstance(value, ModuleType):
            found.update(v for v in vars(value).values() if isinstance(v, Task))
    return found


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_. -]", "_", name).replace("..", "_")
    return safe if safe and (safe[0].isalnum() or safe[0] == "_") else f"_{safe}"
