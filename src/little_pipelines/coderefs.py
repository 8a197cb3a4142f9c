"""What a definition refers to, for a task's code fingerprint (see `taskcode`).

Names it loads, `module.attr` chains, closures, a decorator's `__wrapped__`, and the
functions and classes met inside a value while it is pickled (a container's
elements, a partial's `func`, an instance's class) are followed; any other object
referenced counts by value (`Value`); a dynamic lookup (`getattr` with a computed
name, `exec`, `eval`, `globals()`) makes whole modules count (`WholeModule`).
"""

from __future__ import annotations

import ast
import inspect
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .codesource import attr_chain, closure_vars, is_stdlib, is_user_module

_DYNAMIC_CALLS = frozenset({"getattr", "exec", "eval", "globals", "__import__", "vars",
                            "import_module"})
_IMPORTS = frozenset({"__import__", "import_module", "importlib.import_module"})
#: Runtime objects that never change a result (matched by type name: never imported).
_IGNORED_TYPES = frozenset({"loguru._logger.Logger", "logging.Logger", "logging.RootLogger",
                            "logging.LoggerAdapter"})


@dataclass(frozen=True)
class Value:
    """A module-level value referenced by name (`config.THRESHOLD`, `OPS`)."""

    key: str
    module: Any
    value: Any


@dataclass(frozen=True)
class WholeModule:
    """A module counted whole, and why."""

    module: Any
    why: str


def dynamic_refs(node: ast.AST, name: str, globals_: Mapping[str, Any],
                  module: types.ModuleType | None) -> list[Any]:
    """The whole modules a definition may reach without naming what it reads."""
    found: dict[int, WholeModule] = {}
    modules: list[Any]
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call):
            continue
        call = _dynamic_call(sub)
        if call is None:
            continue
        line = getattr(sub, "lineno", "?")
        if call in _IMPORTS:
            literal = _imported_name(sub)
            if literal is not None:  # the module named, and the packages it sits in
                why = f"{call}({literal!r}) at line {line} in {name}"
                parts = literal.split(".")
                named = [sys.modules.get(".".join(parts[:i])) for i in range(1, len(parts) + 1)]
                modules = [m for m in named if m is not None and is_user_module(m)]
            else:
                # A computed name: any module may be the one imported, so every user
                # module loaded counts.
                why = (f"computed import {call}() at line {line} in {name}: it may import "
                       "any module")
                modules = [m for m in list(sys.modules.values())
                           if isinstance(m, types.ModuleType) and is_user_module(m)]
        else:
            why = f"dynamic {call}() at line {line} in {name}"
            modules = [module, *(v for n in ast.walk(node) if isinstance(n, ast.Name)
                                 if isinstance(v := globals_.get(n.id), types.ModuleType))]
        for m in modules:
            found.setdefault(id(m), WholeModule(m, why))
    return list(found.values())


def _dynamic_call(call: ast.Call) -> str | None:
    """The name of a call that reads what it does not name, or None."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in ("import_module", "__import__"):
        name = "importlib.import_module" if func.attr == "import_module" else "__import__"
    elif isinstance(func, ast.Name) and func.id in _DYNAMIC_CALLS:
        name = func.id
    else:
        return None
    if name == "getattr" and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant):
        return None  # getattr(obj, "literal") is static
    return name


def _imported_name(call: ast.Call) -> str | None:
    """The absolute module name an import call names literally, else None."""
    arg = call.args[0] if call.args else None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value \
            and not arg.value.startswith("."):
        return arg.value
    return None


def resolve_names(node: ast.AST, globals_: Mapping[str, Any], closure: Mapping[str, Any],
                   module_name: str, module: types.ModuleType | None, names: set[str]
                   ) -> list[Any]:
    """What the code refers to by global or closure name, or by `module.attr` chains
    (only `names`: a parameter named like a task is the task's result, not its code)."""
    refs: list[Any] = []
    # Names that are only the base of a `module.attr` chain: that chain is followed.
    bases = {id(sub.value) for sub in ast.walk(node)
             if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in names:
            continue
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and id(sub) not in bases:
            # A module passed as a value (`use(helpers)`): whatever is read from it is
            # not in this source, so all of it counts (a package: by its version).
            value = closure.get(sub.id, globals_.get(sub.id))
            if isinstance(value, types.ModuleType):
                refs.append(WholeModule(value, f"module {sub.id} used as a value")
                            if is_user_module(value) else value)
                continue
        if isinstance(sub, ast.Attribute):
            chain = attr_chain(sub)
            found = _lookup(chain, globals_, closure) if chain and chain[0] in names else None
            if found is not None:
                refs.append(classify(*found))
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            if sub.id in closure:
                refs.append(classify(f"{module_name}.<closure>.{sub.id}", module,
                                      closure[sub.id]))
            elif sub.id in globals_:
                refs.append(classify(f"{module_name}.{sub.id}", module, globals_[sub.id]))
    return [r for r in refs if r is not None]


def classify(key: str, module: Any, value: Any) -> Any:
    """A referenced object as the walk takes it: a definition, or a value by content."""
    if isinstance(value, types.ModuleType):
        return None  # its attributes are followed through `module.attr` chains
    if (inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value)
            or is_task(value)):
        return value
    return Value(key, module, value)


def _lookup(chain: list[str], globals_: Mapping[str, Any], closure: Mapping[str, Any]
            ) -> tuple[str, Any, Any] | None:
    """(key, module, object) for the first non-module along `mod.sub.NAME.attr`."""
    if not chain:
        return None
    obj = closure.get(chain[0], globals_.get(chain[0]))
    if not isinstance(obj, types.ModuleType):
        return None
    for part in chain[1:]:
        parent = obj
        obj = getattr(obj, part, None)
        if obj is None:
            return None
        if not isinstance(obj, types.ModuleType):
            return f"{parent.__name__}.{part}", parent, obj
    return None


def pickle_refs(refs: list[Any]) -> Callable[[Any], Any]:
    """For pickling a value: take every function and non-stdlib class inside it by
    reference to a piece that is followed, not by its name alone."""

    def persistent_id(obj: Any) -> Any:
        if isinstance(obj, (str, int, float, bytes, tuple, list, dict)):
            return None
        if inspect.isfunction(obj) or is_task(obj) or isinstance(obj, types.ModuleType):
            refs.append(obj)
            return f"ref {getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}" \
                   f"{getattr(obj, 'name', '')}"
        kind = type(obj)
        if is_ignored(obj):
            return "ignored"
        wrapped = wrapped_function(obj)
        if wrapped is not None:  # @lru_cache and kin pickle by name: follow the function
            refs.append(wrapped)
            return f"wrapped {getattr(obj, '__qualname__', kind.__qualname__)}"
        if (inspect.isclass(obj) or inspect.isbuiltin(obj)) and not is_stdlib(
                getattr(obj, "__module__", None) or ""):
            refs.append(obj)
            return f"ref {obj.__module__}.{obj.__qualname__}"
        return None

    return persistent_id


def wrapped_function(obj: Any) -> Any:
    try:
        wrapped = inspect.getattr_static(obj, "__wrapped__", None)
        if wrapped is None and not isinstance(obj, type):
            wrapped = vars(obj).get("__wrapped__") if hasattr(obj, "__dict__") else None
        if wrapped is None and not isinstance(obj, type):
            wrapped = getattr(obj, "__wrapped__", None)  # C wrappers (lru_cache) hold it in a slot
    except Exception:
        return None
    return wrapped if callable(wrapped) else None


def is_ignored(value: Any) -> bool:
    """Loggers, and this library's own objects (a `@p.task` decorator names the pipeline;
    what a pipeline gives a task — params, upstream results — is fingerprinted apart)."""
    kind = type(value)
    return (f"{kind.__module__}.{kind.__qualname__}" in _IGNORED_TYPES
            or (kind.__module__.startswith("little_pipelines.") and not is_task(value)))


def is_task(obj: Any) -> bool:
    return type(obj).__module__ == "little_pipelines.task" and hasattr(obj, "code_functions")


def closure_refs(fn: Any) -> list[Any]:
    """A library function's closure may hold the user's function (a decorator without
    functools.wraps): follow what it holds."""
    module = sys.modules.get(fn.__module__ or "")
    found = [classify(f"{fn.__module__}.{fn.__qualname__}.<closure>.{k}", module, v)
             for k, v in closure_vars(fn).items()]
    return [r for r in found if r is not None and not isinstance(r, Value)]
