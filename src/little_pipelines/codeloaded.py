"""Whether the code a process runs is still the code in its file (module mode).

`code="module"` stamps a task's defining file on disk, but a long-lived process (a
notebook, a shell) keeps running the module as it was imported: a user who edits
tasks.py without reloading it would run the OLD code and, without this check, record
its result under the NEW file's digest, which a fresh process would then reuse.

The normal path stays as cheap as a stat: a file not modified since this library was
imported (`IMPORTED_AT_NS`) cannot differ from a module imported after it... or before
it, unless it was edited later. Only a file modified since then is compiled (once per
file per run) and compared with the loaded module: every module-level function (and
class method) by bytecode, both ways, and every module-level `NAME = <literal>` by
value. When they differ, the task's code key is `<loaded code of PATH>` with a digest
of the loaded bytecode, so a fresh process that stamps the file reruns the task, and
one warning per file per process says to reload the module.

Not covered: a module-level statement that is neither a definition nor a literal
assignment (`RATE = compute(3)` edited to `compute(4)`) cannot be compared with what
the import computed; such an edit alone goes unseen until the module is reloaded.
"""

from __future__ import annotations

import ast
import inspect
import marshal
import sys
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
#: Per run (keyed by the run's FileDigests): path -> digest of stale loaded code, or None.
_runs: weakref.WeakKeyDictionary[Any, dict[str, str | None]] = weakref.WeakKeyDictionary()


def loaded_key(fn: Any, path: str, stamp: FileStamp, run: Any
               ) -> tuple[str, CodeStamp] | None:
    """`(<loaded code of path>, stamp)` when the module `fn` runs from differs from its
    file on disk, else None (the file's stamp is the code's)."""
    if stamp.mtime_ns < IMPORTED_AT_NS:
        return None
    memo = _runs.setdefault(run, {})
    if path not in memo:
        module = sys.modules.get(getattr(fn, "__module__", None) or "")
        memo[path] = _stale_digest(path, module) if module is not None else None
        if memo[path] is not None and path not in _warned:
            _warned.add(path)
            logger.warning(f"{path} changed on disk since its module was imported: tasks "
                           "run the code loaded earlier, and their results are recorded "
                           "under that code, not the file's. Reload it "
                           "(importlib.reload, or restart the kernel) to run the new code.")
    digest = memo[path]
    return None if digest is None else (f"<loaded code of {path}>", CodeStamp("code", digest))


def _stale_digest(path: str, module: types.ModuleType) -> str | None:
    loaded = _loaded_codes(module, path)
    blob = marshal.dumps(sorted(loaded.items()))
    stale = digest_bytes(blob)
    try:
        with open(path, "rb") as f:
            text = f.read()
        tree = ast.parse(text, path)
        code = compile(tree, path, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        return stale
    on_disk = _file_codes(code)
    for qualname, digests in loaded.items():
        if not set(digests) <= on_disk.get(qualname, set()):
            return stale
    names = vars(module)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name not in loaded or not loaded[node.name]:
                return stale  # a new or undecorated-away definition the module lacks
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            try:
                literal = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            name = node.targets[0].id
            if name not in names or type(names[name]) is not type(literal) or not _same(
                    names[name], literal):
                return stale
    return None


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


def _loaded_codes(module: types.ModuleType, path: str) -> dict[str, list[str]]:
    """The module's functions and methods defined in `path`, as loaded: qualified name
    -> digests (tasks and decorators with `__wrapped__` are looked through)."""
    out: dict[str, list[str]] = {}
    stack: list[Any] = list(vars(module).values())
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
        if isinstance(obj, property):
            stack.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
            continue
        if (wrapped := wrapped_function(obj)) is not None:
            stack.append(wrapped)
        if inspect.isfunction(obj) and obj.__code__.co_filename == path:
            code = obj.__code__
            out.setdefault(code.co_qualname, []).append(_digest(code))
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            stack.extend(vars(obj).values())
    return out
