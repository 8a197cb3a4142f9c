"""Whether the code a process runs is still the code in its file (module mode).

`code="module"` stamps a task's defining file on disk, but a long-lived process (a
notebook, a shell) keeps running the module as it was imported: a user who edits
tasks.py without reloading it would run the OLD code and, without this check, record
its result under the NEW file's digest, which a fresh process would then reuse.

The normal path stays as cheap as today (the file's stat, already taken): a file whose
mtime is before this library was imported (`IMPORTED_AT_NS`) is taken to be what its
module was imported from. Only a file modified since then is compiled (from its text,
once per file and module per run) and compared with the loaded module: every
module-level function and class method by bytecode (`without_places`), both ways; the
task's own function (it may be older than its module, held across
`importlib.reload`); and every module-level `NAME = <literal>` of an immutable literal
(a number, a string, a tuple of them) by value. When they differ, the task's code
key is `<loaded code of PATH>` with a digest of the loaded bytecode, so a fresh
process that stamps the file reruns the task, and one warning per file per process
says to reload the module.

Not covered: a module-level statement that is neither a definition nor an immutable
literal assignment (`RATE = compute(3)` edited to `compute(4)`, `NAMES = ["a"]` to
`["b"]`: a list the running code may have appended to) cannot be compared with what
the import made; such an edit alone, in a module not reloaded, goes unseen. Nor does
an edit made after the module was imported but before this library was.
"""

from __future__ import annotations

import ast
import functools
import inspect
import marshal
import time
import types
import weakref
from typing import Any

from loguru import logger

from .coderefs import is_task, wrapped_function
from .codesource import without_places
from .fingerprint import CodeStamp, FileStamp, digest_bytes

#: When this library was imported: a code file not modified since cannot be stale.
IMPORTED_AT_NS = time.time_ns()

_warned: set[str] = set()
#: Per run (keyed by the run's FileDigests), per file and module namespace: the file's
#: compiled functions, and a digest of the loaded code if it is stale, else None.
_Compared = tuple[dict[str, set[str]], str | None]
_runs: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], _Compared]] = (
    weakref.WeakKeyDictionary())


def loaded_key(fn: Any, path: str, stamp: FileStamp, run: Any
               ) -> tuple[str, CodeStamp] | None:
    """`(<loaded code of path>, stamp)` when the code `fn` runs (it, and the module
    namespace it reads) differs from its file on disk, else None (the file's stamp
    is the code's)."""
    if stamp[1] < IMPORTED_AT_NS:  # its mtime (old records hold plain tuples)
        return None
    namespace = getattr(fn, "__globals__", None)
    code = getattr(fn, "__code__", None)
    if namespace is None or code is None:
        return None
    memo = _runs.setdefault(run, {})
    key = (path, id(namespace))  # a module popped and imported again is another one
    if key not in memo:
        memo[key] = _compare(path, namespace)
    on_disk, stale = memo[key]
    if stale is None and _digest(code) not in on_disk.get(code.co_qualname, set()):
        # `fn` itself is older than its module (held across an importlib.reload)
        stale = digest_bytes(f"{_digest(code)} {path}".encode())
    if stale is None:
        return None
    if path not in _warned:
        _warned.add(path)
        logger.warning(f"{path} changed on disk since its module was imported: tasks "
                       "run the code loaded earlier, and their results are recorded "
                       "under that code, not the file's. Reload it (importlib.reload, or "
                       "restart the kernel) to run the new code.")
    return f"<loaded code of {path}>", CodeStamp("code", stale)


def _compare(path: str, namespace: dict[str, Any]) -> _Compared:
    """The file's compiled functions, and None if the loaded namespace matches them,
    else a digest of the loaded code."""
    loaded = _loaded_codes(namespace, path)
    stale = digest_bytes(marshal.dumps(sorted(loaded.items())) + path.encode())
    try:
        with open(path, "rb") as f:
            text = f.read()
        # From the text, as the import did (compiling a parsed tree can differ).
        code = compile(text, path, "exec", dont_inherit=True)
        tree = ast.parse(text, path)
    except (OSError, SyntaxError, ValueError):
        return {}, stale
    on_disk = _file_codes(code)
    for qualname, digests in loaded.items():
        if not set(digests) <= on_disk.get(qualname, set()):
            return on_disk, stale
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name not in loaded:
                return on_disk, stale  # a definition the loaded module lacks
        elif isinstance(node, ast.ClassDef):
            methods = [f"{node.name}.{m.name}" for m in node.body
                       if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
            if any(m not in loaded for m in methods):
                return on_disk, stale
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            try:
                literal = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            name = node.targets[0].id
            if not _immutable(literal):
                continue  # a list or dict the running code may have changed since
            if name not in namespace or type(namespace[name]) is not type(literal) or not (
                    _same(namespace[name], literal)):
                return on_disk, stale
    return on_disk, None


def _immutable(value: Any) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(v) for v in value)
    return isinstance(value, (str, bytes, int, float, complex, bool, type(None)))


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def _digest(code: types.CodeType) -> str:
    return digest_bytes(marshal.dumps(without_places(code)))


def _file_codes(code: types.CodeType) -> dict[str, set[str]]:
    """Every function's code compiled from the file: qualified name -> digests."""
    out: dict[str, set[str]] = {}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out.setdefault(const.co_qualname, set()).add(_digest(const))
            for key, digests in _file_codes(const).items():
                out.setdefault(key, set()).update(digests)
    return out


def _loaded_codes(namespace: dict[str, Any], path: str) -> dict[str, list[str]]:
    """A module's functions and methods defined in `path`, as loaded: qualified name
    -> digests (tasks and decorators with `__wrapped__` are looked through)."""
    out: dict[str, list[str]] = {}
    stack: list[Any] = list(namespace.values())
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if is_task(obj):
            stack.extend(obj.code_functions())
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            stack.append(obj.__func__)
            continue
        if isinstance(obj, (functools.cached_property, functools.partialmethod)):
            stack.append(obj.func)
            continue
        if isinstance(obj, property):
            stack.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
            continue
        if (wrapped := wrapped_function(obj)) is not None:
            stack.append(wrapped)
        if inspect.isfunction(obj) and obj.__code__.co_filename == path:
            code = obj.__code__
            out.setdefault(code.co_qualname, []).append(_digest(code))
        elif inspect.isclass(obj):  # any class: `__module__` may be set to another name
            stack.extend(vars(obj).values())
    return out
