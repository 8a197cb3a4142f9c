"""Where a task's code comes from, and its text.

Whether a function or module is the user's (not the standard library, not an
installed package, not this library), the version of an installed package
(looked up once per process), the source of a definition — from its file, or for
a notebook cell from the copy IPython keeps in `linecache` — parsed and
normalised (comments, docstrings and formatting dropped), and what tells a
notebook cell's re-run from a second task of the same name. `taskcode` decides
what counts; this module only reads.
"""

from __future__ import annotations

import ast
import importlib.metadata
import linecache
import os
import site
import sys
import sysconfig
import types
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol


class HasCode(Protocol):
    """What these modules ask of a task (they sit below `task`: no import of it)."""

    def code_functions(self) -> list[Any]: ...


class Source:
    """A parsed module file or cell: its definitions by qualified name."""

    def __init__(self, tree: ast.Module) -> None:
        strip_docstrings(tree)
        self.defs: dict[str, list[ast.AST]] = {}
        self._index(tree, "")
        self.tree = tree

    @property
    def normalised(self) -> str:
        return normalised(self.tree)

    def _index(self, node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = f"{prefix}{child.name}"
                self.defs.setdefault(qual, []).append(child)
                inner = f"{qual}." if isinstance(child, ast.ClassDef) else f"{qual}.<locals>."
                self._index(child, inner)
            else:
                self._index(child, prefix)

    def function(self, fn: Any) -> ast.AST | None:
        """The definition of `fn`, matched by its code's qualified name and first line
        (no guess: a file edited since it was imported gives None, and the bytecode)."""
        candidates = [n for n in self.defs.get(fn.__code__.co_qualname, [])
                      if not isinstance(n, ast.ClassDef)]
        line = fn.__code__.co_firstlineno
        for node in candidates:
            decorators = getattr(node, "decorator_list", [])
            first = min([node.lineno, *(d.lineno for d in decorators)])  # type: ignore[attr-defined]
            if first <= line <= node.lineno:  # type: ignore[attr-defined]
                return node
        return None

    def node_of(self, qualname: str) -> ast.AST | None:
        nodes = [n for n in self.defs.get(qualname, []) if isinstance(n, ast.ClassDef)]
        return nodes[-1] if len(nodes) == 1 else None  # two classes of one name: no guess


def load_source(path: str) -> Source | None:
    """The parsed source of a file, or of an IPython cell (kept in linecache), or None."""
    text = None
    if not path.startswith("<") and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, ValueError):
            text = None
    else:  # an IPython cell: its source is kept in linecache
        text = "".join(linecache.getlines(path)) or None
    try:
        return Source(ast.parse(text)) if text else None
    except (SyntaxError, ValueError):
        return None


def normalised(node: ast.AST) -> str:
    """Source text without comments or formatting (docstrings: see `strip_docstrings`)."""
    return ast.unparse(node)


def strip_docstrings(tree: ast.AST) -> ast.AST:
    """Drop docstrings in place (once per parsed file: the tree is this run's own)."""
    for sub in ast.walk(tree):
        body = getattr(sub, "body", None)
        if (isinstance(sub, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            sub.body = body[1:] or [ast.Pass()]
    return tree




def is_interactive(fn: Any) -> bool:
    """Whether a function was defined in an IPython cell (a notebook, a console)."""
    path = getattr(getattr(fn, "__code__", None), "co_filename", "")
    if not path or path.startswith("<frozen"):
        return False
    if path.startswith("<ipython-input-"):
        return True
    return not os.path.exists(path) and bool(linecache.getlines(path))


def redefines(old: HasCode, new: HasCode) -> bool:
    """Whether `new` is a notebook cell's re-run redefining `old` (the same function,
    by qualified name, of the interactive `__main__`), not a second task of one name."""
    old_fns, new_fns = old.code_functions(), new.code_functions()
    if not old_fns or not new_fns:
        return False
    a, b = old_fns[0], new_fns[0]
    return (a.__module__ == b.__module__ == "__main__" and a.__qualname__ == b.__qualname__
            and is_interactive(a) and is_interactive(b))


def cell_texts() -> list[str]:
    """Every cell IPython ran in this kernel (kept in linecache), in a stable order."""
    return sorted({"".join(entry[2]) for name, entry in list(linecache.cache.items())
                   if len(entry) == 4 and entry[1] is None
                   and ("ipykernel_" in name or name.startswith("<ipython-input-"))})


def is_user_file(path: str) -> bool:
    if path.startswith("<frozen"):
        return False
    if path.startswith("<"):
        return True  # exec'd or typed in: the user's
    real = os.path.realpath(path)
    return not any(real.startswith(root) for root in _library_roots())


def is_user_module(module: types.ModuleType) -> bool:
    """A module of the user's project: not built in, not stdlib, not an installed package."""
    if module.__name__ in sys.builtin_module_names:
        return False
    path = getattr(module, "__file__", None)
    if not path:
        return module.__name__ == "__main__"  # a notebook's or console's namespace
    return is_user_file(path)


def is_stdlib(module_name: str) -> bool:
    top = module_name.partition(".")[0]
    return top in sys.stdlib_module_names or top in sys.builtin_module_names


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = paths.get(key)
        if path:
            roots.add(os.path.realpath(path) + os.sep)
    for path in [*site.getsitepackages(), site.getusersitepackages()]:
        roots.add(os.path.realpath(path) + os.sep)
    roots.add(os.path.realpath(os.path.dirname(os.__file__)) + os.sep)
    roots.add(os.path.realpath(os.path.dirname(__file__)) + os.sep)  # this library itself
    return tuple(sorted(roots))


@lru_cache(maxsize=1)
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module -> distributions, for packages not named like their module
    (`yaml` of PyYAML). Built once per process, and only then: it reads every installed
    distribution's file list (~0.3 s in a dev environment); done once per package it
    made function mode ~30x slower than module mode."""
    return importlib.metadata.packages_distributions()


@lru_cache(maxsize=256)
def version_of(top: str) -> str:
    if is_stdlib(top):
        return f"python{sys.version_info.major}.{sys.version_info.minor}"
    module = sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if path:  # its folder's `<name>-<version>.dist-info`, listed once per folder
        is_package = os.path.basename(path).startswith("__init__.")
        folder = os.path.dirname(os.path.dirname(path) if is_package else path)
        version = _dist_infos(folder).get(top.lower())
        if version:
            return version
    try:  # most packages' distribution is named after them: one lookup, no scan
        return importlib.metadata.version(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    for dist in _distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return str(getattr(module, "__version__", "unknown"))


@lru_cache(maxsize=64)
def _dist_infos(folder: str) -> dict[str, str]:
    """Normalised distribution name -> version, from a site folder's dist-info names."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return {}
    out = {}
    for entry in entries:
        if entry.endswith(".dist-info"):
            name, _, version = entry[: -len(".dist-info")].partition("-")
            out[name.lower().replace("-", "_").replace(".", "_")] = version
    return out


def attr_chain(node: ast.Attribute) -> list[str]:
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name):
        return []
    parts.append(value.id)
    return parts[::-1]


def closure_vars(fn: Any) -> dict[str, Any]:
    out = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        try:
            out[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return out


def code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= code_names(const)
    return names


def without_places(code: types.CodeType) -> types.CodeType:
    """Code without its file name and first line, which differ between kernels."""
    consts = tuple(without_places(c) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename="", co_firstlineno=1, co_consts=consts)
