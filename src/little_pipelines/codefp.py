"""Function-level code fingerprints (`code="function"`).

A task's code is its own functions plus, transitively, every function, class
and module-level constant they reference, in the same module and in the user's
own modules (not the standard library or installed packages, which count by
their version instead). Each piece is normalised before hashing — parsed and
unparsed without docstrings — so comments, docstrings and formatting change
nothing, while any change of meaning changes the digest.

Where a function's references cannot be resolved statically (`getattr` with a
computed name, `exec`, `eval`, `globals()`, `__import__`), its whole module file
counts instead, and the piece says why.

Each piece is `key -> Piece(digest, source, note)`: the key names the function,
class, constant or package (`etl.helpers.clean`, `pandas==2.2.3`); the source is
the normalised text kept in the record so `explain` can show a diff.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import os
import site
import sys
import sysconfig
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .fingerprint import digest_bytes, short_repr, value_digest

_DYNAMIC_CALLS = frozenset({"getattr", "exec", "eval", "globals", "__import__", "vars"})
_CONSTANT_TYPES = (int, float, complex, str, bytes, bool, type(None), frozenset, tuple, list,
                   dict, set, range)


@dataclass(frozen=True)
class Piece:
    """One part of a task's code fingerprint."""

    digest: str
    source: str = ""
    #: why a piece is coarser than asked (e.g. "whole module: dynamic getattr at line 12")
    note: str = ""


class CodeIndex:
    """Memo of parsed modules and resolved functions, for one run."""

    def __init__(self) -> None:
        self._pieces: dict[int, dict[str, Piece]] = {}
        self._modules: dict[str, _ModuleInfo | None] = {}

    def pieces(self, functions: list[Callable[..., Any]]) -> dict[str, Piece]:
        """Every piece the functions depend on, transitively."""
        out: dict[str, Piece] = {}
        for fn in functions:
            out.update(self._closure(fn))
        return out

    # -- the walk -----------------------------------------------------------------
    def _closure(self, root: Callable[..., Any]) -> dict[str, Piece]:
        key = id(root)
        if key in self._pieces:
            return self._pieces[key]
        found: dict[str, Piece] = {}
        stack: list[Any] = [root]
        seen: set[int] = set()
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            for name, piece, refs in self._visit(obj):
                found.setdefault(name, piece)
                stack.extend(refs)
        self._pieces[key] = found
        return found

    def _visit(self, obj: Any) -> list[tuple[str, Piece, list[Any]]]:
        """The piece(s) for one object and the objects it references."""
        if isinstance(obj, _Constants):
            return [(k, p, []) for k, p in constant_pieces(obj).items()]
        if isinstance(obj, types.ModuleType):
            return [self._package_piece(obj)] if not _is_user_module(obj) else []
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        if module is None or not _is_user_module(module):
            return [self._package_piece(module)] if module is not None else []
        if inspect.isfunction(obj):
            return [self._function_piece(obj, module)]
        if inspect.isclass(obj):
            return [self._class_piece(obj, module)]
        return []

    def _function_piece(self, fn: Any, module: types.ModuleType) -> tuple[str, Piece, list[Any]]:
        name = f"{module.__name__}.{fn.__qualname__}"
        info = self._module(module)
        node = info.function(fn) if info is not None else None
        if node is None:  # no source (built by exec, or a lambda in a list): use its bytecode
            import marshal

            return name, Piece(digest_bytes(marshal.dumps(fn.__code__))), []
        dynamic = _dynamic_access(node)
        if dynamic:
            assert info is not None
            note = f"whole module {info.path}: {dynamic}"
            return name, Piece(info.digest, info.normalised, note), []
        source = _normalised(node)
        refs = _references(node, fn, module)
        return name, Piece(digest_bytes(source.encode()), source), refs

    def _class_piece(self, cls: type, module: types.ModuleType) -> tuple[str, Piece, list[Any]]:
        name = f"{module.__name__}.{cls.__qualname__}"
        info = self._module(module)
        node = info.node_of(cls.__qualname__, ast.ClassDef) if info is not None else None
        if node is None:
            return name, Piece(digest_bytes(repr(sorted(vars(cls))).encode())), []
        dynamic = _dynamic_access(node)
        if dynamic:
            assert info is not None
            return name, Piece(info.digest, info.normalised,
                               f"whole module {info.path}: {dynamic}"), []
        source = _normalised(node)
        refs: list[Any] = []
        for member in vars(cls).values():
            fn = getattr(member, "__func__", member)  # staticmethod / classmethod
            if inspect.isfunction(fn):
                refs += _references_in(fn, module, skip_self=True)
        refs += [b for b in cls.__bases__ if b is not object]
        return name, Piece(digest_bytes(source.encode()), source), refs

    @staticmethod
    def _package_piece(module: types.ModuleType) -> tuple[str, Piece, list[Any]]:
        top = module.__name__.partition(".")[0]
        version = _version_of(top)
        key = f"{top}=={version}"
        return key, Piece(digest_bytes(key.encode()), key), []

    def _module(self, module: types.ModuleType) -> _ModuleInfo | None:
        path = getattr(module, "__file__", None)
        if not path:
            return None
        if path not in self._modules:
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                self._modules[path] = _ModuleInfo(path, ast.parse(text))
            except (OSError, SyntaxError, ValueError):
                self._modules[path] = None
        return self._modules[path]


class _ModuleInfo:
    """A parsed module file: its definitions by qualified name, and its normalised text."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = path
        self.tree = tree
        self.defs: dict[str, list[ast.AST]] = {}
        self._index(tree, "")
        self.normalised = _normalised(tree)
        self.digest = digest_bytes(self.normalised.encode())

    def _index(self, node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = f"{prefix}{child.name}"
                self.defs.setdefault(qual, []).append(child)
                inner = f"{qual}.<locals>." if not isinstance(child, ast.ClassDef) else f"{qual}."
                self._index(child, inner)
            else:
                self._index(child, prefix)

    def function(self, fn: Any) -> ast.AST | None:
        """The definition of `fn`, matched by qualified name and first line."""
        candidates = self.defs.get(fn.__qualname__, [])
        line = fn.__code__.co_firstlineno
        for node in candidates:
            decorators = getattr(node, "decorator_list", [])
            first = min([node.lineno, *(d.lineno for d in decorators)])  # type: ignore[attr-defined]
            if first <= line <= node.lineno:  # type: ignore[attr-defined]
                return node
        return candidates[-1] if len(candidates) == 1 else None

    def node_of(self, qualname: str, kind: type) -> ast.AST | None:
        nodes = [n for n in self.defs.get(qualname, []) if isinstance(n, kind)]
        return nodes[-1] if nodes else None


def _normalised(node: ast.AST) -> str:
    """Source text without comments, docstrings, decorators' formatting or blank lines."""
    tree = _strip_docstrings(ast.parse(ast.unparse(node)))
    return ast.unparse(tree)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _dynamic_access(node: ast.AST) -> str:
    """Why a definition's references cannot be resolved statically ("" if they can)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            name = sub.func.id
            if name in _DYNAMIC_CALLS:
                if name == "getattr" and len(sub.args) >= 2 and isinstance(
                        sub.args[1], ast.Constant):
                    continue  # getattr(obj, "literal") is static
                return f"dynamic {name}() at line {getattr(sub, 'lineno', '?')}"
    return ""


def _references(node: ast.AST, fn: Any, module: types.ModuleType) -> list[Any]:
    return _resolve_names(node, fn.__globals__, _closure_vars(fn), module)


def _references_in(fn: Any, module: types.ModuleType, *, skip_self: bool) -> list[Any]:
    try:
        src = inspect.getsource(fn)
        tree = ast.parse(_dedent(src))
    except (OSError, TypeError, SyntaxError):
        return []
    return _resolve_names(tree, fn.__globals__, _closure_vars(fn), module)


def _dedent(src: str) -> str:
    import textwrap

    return textwrap.dedent(src)


def _closure_vars(fn: Any) -> dict[str, Any]:
    names = fn.__code__.co_freevars
    cells = fn.__closure__ or ()
    out = {}
    for name, cell in zip(names, cells, strict=False):
        try:
            out[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return out


def _resolve_names(node: ast.AST, globals_: dict[str, Any], closure: dict[str, Any],
                   module: types.ModuleType) -> list[Any]:
    """Objects the code refers to by global/closure name or by `module.attr` chains."""
    refs: list[Any] = []
    consts: dict[str, Any] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            chain = _attr_chain(sub)
            if chain:
                obj = _lookup(chain, globals_, closure)
                if obj is not None and not isinstance(obj, types.ModuleType):
                    refs.append(obj)
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            name = sub.id
            if name in closure:
                value = closure[name]
            elif name in globals_:
                value = globals_[name]
            else:
                continue  # a local, or a builtin
            if isinstance(value, types.ModuleType):
                continue  # its attributes are followed through `module.attr` chains
            if _is_constant(value) or (_in_user_module(value) and not _is_definition(value)):
                consts[name] = value  # a module-level value: counts by its content
            else:
                refs.append(value)
    if consts:
        refs.append(_Constants(module.__name__, consts))
    return refs


def _attr_chain(node: ast.Attribute) -> list[str]:
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name):
        return []
    parts.append(value.id)
    return parts[::-1]


def _lookup(chain: list[str], globals_: dict[str, Any], closure: dict[str, Any]) -> Any:
    head = chain[0]
    obj = closure.get(head, globals_.get(head))
    if not isinstance(obj, types.ModuleType):
        return None
    for part in chain[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
        if not isinstance(obj, types.ModuleType):
            return obj
    return obj


def _is_constant(value: Any) -> bool:
    if isinstance(value, (tuple, list, frozenset, set)):
        return all(_is_constant(v) for v in value)
    if isinstance(value, dict):
        return all(_is_constant(k) and _is_constant(v) for k, v in value.items())
    return isinstance(value, _CONSTANT_TYPES)


class _Constants:
    """Module-level constants referenced by one function (visited like a definition)."""

    __module__ = "little_pipelines.codefp"

    def __init__(self, module: str, values: dict[str, Any]) -> None:
        self.module = module
        self.values = values


def constant_pieces(refs: _Constants) -> dict[str, Piece]:
    """Module-level values by content; runtime objects that cannot be pickled (a logger,
    a connection) are not part of a fingerprint."""
    out = {}
    for name, value in refs.values.items():
        try:
            digest = value_digest(value)
        except Exception:
            continue
        out[f"{refs.module}.{name}"] = Piece(digest, f"{name} = {short_repr(value)}")
    return out


def _is_definition(value: Any) -> bool:
    return inspect.isfunction(value) or inspect.isclass(value)


def _in_user_module(value: Any) -> bool:
    module = sys.modules.get(getattr(type(value), "__module__", "") or "")
    return module is not None and _is_user_module(module)


def _is_user_module(module: types.ModuleType) -> bool:
    """A module of the user's project: not built in, not stdlib, not an installed package."""
    path = getattr(module, "__file__", None)
    if not path or module.__name__ in sys.builtin_module_names:
        return False
    real = os.path.realpath(path)
    return not any(real.startswith(root) for root in _library_roots())


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path) + os.sep)
    for path in [*site.getsitepackages(), site.getusersitepackages()]:
        roots.add(os.path.realpath(path) + os.sep)
    roots.add(os.path.realpath(os.path.dirname(os.__file__)) + os.sep)
    roots.add(os.path.realpath(os.path.dirname(__file__)) + os.sep)  # this library itself
    return tuple(sorted(roots))


@lru_cache(maxsize=256)
def _version_of(top: str) -> str:
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"python{sys.version_info.major}.{sys.version_info.minor}"
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    module = sys.modules.get(top)
    return str(getattr(module, "__version__", "unknown"))

