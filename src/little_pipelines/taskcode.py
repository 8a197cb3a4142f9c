"""What counts as a task's code, in both modes, in scripts, packages and notebooks.

`code="module"` (the default): a task's code is the whole file defining each of
its functions. `code="function"`: its own functions plus, transitively, what they
reference. In a notebook (a function whose code lives in an IPython cell, not in
a file) both modes read it as function mode does, from the source IPython keeps
for each cell, so a new kernel with unchanged cells reuses everything.

The soundness rule (a fingerprint may cover too much, never too little):

- functions and classes of the user's code count by their normalised source
  (parsed and unparsed without docstrings: comments, docstrings and formatting
  change nothing), and what they reference is followed: names, `module.attr`
  chains, closures, a decorator's `__wrapped__`, and default arguments (evaluated
  where the function is defined, so absent from its code's names: they count by
  value, as below);
- functions and classes of the standard library or installed packages count by
  the package's version;
- any other object referenced (a constant of any type, a container, a
  `functools.partial`, an instance, `np.vectorize(...)`) counts by value, with
  the digest used for results, where every function and class met inside it
  (a container's elements, a partial's `func`, an instance's class) is followed
  as above instead of being taken by name;
- when neither is possible (`getattr` with a computed name, `exec`, `eval`,
  `globals()`, a value that cannot be pickled), the whole defining module counts
  — and for a dynamic lookup also every module it may look into — and the piece's
  note says which reference forced it. So does a user module used as a value
  (`use(helpers)`: what `use` reads of it is not in this source); an import by a
  computed name (`importlib.import_module(name)`, `__import__(name)`) counts every
  user module loaded. Nothing is ever left out silently, except loggers, which
  never change a result.

In module mode, the file is the code only while the process runs what the file
says: a file modified since this library was imported is compared with its loaded
module (`codeloaded`), and a stale module counts by its loaded bytecode instead.

Each piece is `key -> Piece(digest, source, note, kind)`: the key names the
function, class, value or package (`etl.helpers.clean`, `pandas==2.2.3`); the
source is the normalised text kept so `explain` can show a diff.
"""

from __future__ import annotations

import ast
import inspect
import marshal
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .codeloaded import loaded_key
from .coderefs import (
    Value,
    WholeModule,
    classify,
    closure_refs,
    dynamic_refs,
    is_ignored,
    is_task,
    pickle_refs,
    resolve_names,
    wrapped_function,
)
from .codesource import (
    HasCode,
    Source,
    cell_texts,
    closure_vars,
    code_names,
    is_interactive,
    is_user_file,
    is_user_module,
    load_source,
    normalised,
    version_of,
    without_places,
)
from .fingerprint import (
    CodeStamp,
    FileDigests,
    FileStamp,
    digest_bytes,
    short_repr,
    stamp_digest,
    value_digest,
)

#: IPython's own names in a notebook's namespace (history, not definitions).
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


@dataclass(frozen=True)
class Piece:
    """One part of a task's code fingerprint."""

    digest: str
    source: str = ""
    #: why a piece is coarser than asked (e.g. "whole module x.py: dynamic getattr() ...")
    note: str = ""
    kind: str = "function"


class CodeIndex:
    """Per-run memo of code pieces, parsed sources and module-mode file stamps."""

    def __init__(self, files: FileDigests | None = None) -> None:
        self.files = files if files is not None else FileDigests()
        self._closures: dict[int, dict[str, Piece]] = {}
        self._sources: dict[str, Source | None] = {}
        self._stamps: dict[Any, tuple[str, FileStamp | CodeStamp]] = {}
        self._interactive: dict[str, bool] = {}
        self._in_files: dict[Any, tuple[str, FileStamp | CodeStamp] | None] = {}
        # Each object's pieces once per run, however many tasks reach it (the object is
        # held, so its id cannot be reused within the run).
        self._visits: dict[Any, tuple[Any, list[tuple[str, Piece]], list[Any]]] = {}

    def pieces(self, functions: list[Callable[..., Any]]) -> dict[str, Piece]:
        """Every piece the functions depend on, transitively."""
        out: dict[str, Piece] = {}
        for fn in functions:
            out.update(self._closure(fn))
        return out

    def stamp(self, fn: Callable[..., Any], old: Mapping[str, Any]
              ) -> tuple[str, FileStamp | CodeStamp]:
        """`code_stamp`, once per function per run: imported code cannot change under a
        run, so its file is stat'ed (or hashed) once, however many tasks share it."""
        memo = self._stamps.get(fn)
        if memo is None:
            # Many tasks' functions share a file (a task per loop turn): once per file.
            path = getattr(getattr(fn, "__code__", None), "co_filename", None)
            memo = self._stamps.get(("file", path))
            if memo is None:
                memo = code_stamp(fn, self.files, old)
                if memo[0] == path:  # the file's stamp, not this function's own code
                    self._stamps[("file", path)] = memo
            self._stamps[fn] = memo
        return memo

    def file_stamp(self, fn: Callable[..., Any], old: Mapping[str, Any]
                   ) -> tuple[str, FileStamp | CodeStamp] | None:
        """Module mode: `stamp` of a function defined in a file, None for a notebook
        cell's (it counts by its own code: `pieces`); one look-up a task."""
        try:
            return self._in_files[fn]
        except KeyError:
            memo = self._in_files[fn] = None if self.interactive(fn) else self.stamp(fn, old)
            return memo

    def interactive(self, fn: Callable[..., Any]) -> bool:
        """`is_interactive`, once per file per run (it looks for the file on disk)."""
        path = getattr(getattr(fn, "__code__", None), "co_filename", "")
        memo = self._interactive.get(path)
        if memo is None:
            memo = self._interactive[path] = is_interactive(fn)
        return memo

    def _load(self, path: str) -> Source | None:
        if path not in self._sources:
            self._sources[path] = load_source(path)
        return self._sources[path]

    # -- the walk -----------------------------------------------------------------
    def _closure(self, root: Any) -> dict[str, Piece]:
        if id(root) in self._closures:
            return self._closures[id(root)]
        found: dict[str, Piece] = {}
        stack: list[Any] = [root]
        seen: set[Any] = set()
        keep: list[Any] = []  # holds visited objects so their ids stay unique
        while stack:
            obj = stack.pop()
            # A value by its name and identity: two closures' `n` are two pieces.
            ident: Any = ("value", obj.key, id(obj.value)) if isinstance(obj, Value) else (
                ("module", id(obj.module)) if isinstance(obj, WholeModule) else id(obj))
            if ident in seen:
                continue
            seen.add(ident)
            keep.append(obj)
            memo = self._visits.get(ident)
            if memo is None:
                memo = self._visits[ident] = (obj, *self._visit(obj))
            _, pieces, refs = memo
            for key, piece in pieces:
                known = found.get(key)
                if known is not None and known.digest != piece.digest:
                    # one name, two pieces (`helpers.g` the lru_cache wrapper taken by value,
                    # and `helpers.g` its function): both count
                    piece = Piece(digest_bytes(f"{known.digest} {piece.digest}".encode()),
                                  f"{known.source}\n{piece.source}", known.note or piece.note,
                                  known.kind)
                found[key] = piece
            stack.extend(refs)
        self._closures[id(root)] = found
        return found

    def _visit(self, obj: Any) -> tuple[list[tuple[str, Piece]], list[Any]]:
        """The pieces for one object, and the objects it references."""
        if isinstance(obj, Value):
            return self._value_piece(obj)
        if isinstance(obj, WholeModule):
            return self._whole_module(obj)
        if isinstance(obj, types.ModuleType):
            if is_user_module(obj):
                return self._whole_module(WholeModule(obj, "a module used as a value"))
            return [_package_piece(obj.__name__)], []
        if is_task(obj):
            return [], list(obj.code_functions())
        refs = [w] if (w := wrapped_function(obj)) is not None else []
        if inspect.isfunction(obj):
            if not is_user_file(obj.__code__.co_filename):
                return [_package_piece(obj.__module__ or "")], refs + closure_refs(obj)
            piece, more = self._function_piece(obj)
            return [piece], refs + more
        if inspect.isclass(obj):
            module = sys.modules.get(obj.__module__)
            if module is None or not is_user_module(module):
                return [_package_piece(obj.__module__)], refs
            piece, more = self._class_piece(obj, module)
            return [piece], refs + more
        module_name = getattr(obj, "__module__", None)
        if isinstance(module_name, str):  # a builtin function, a ufunc
            return [_package_piece(module_name)], refs
        return [], refs

    def _function_piece(self, fn: Any) -> tuple[tuple[str, Piece], list[Any]]:
        # The code's own qualified name: @functools.wraps copies the wrapped function's
        # __qualname__ onto a wrapper, whose code is another function's.
        name = f"{fn.__module__}.{fn.__code__.co_qualname}"
        module = sys.modules.get(fn.__module__ or "")
        # Default arguments are evaluated where the function is defined, not read by its
        # code: they count by value (and what they hold is followed).
        defaults = [Value(f"{name}.{k}", module, v) for k in ("__defaults__", "__kwdefaults__")
                    if (v := getattr(fn, k, None))]
        src = self._load(fn.__code__.co_filename)
        node = src.function(fn) if src is not None else None
        if node is None:  # no source (built by exec): its bytecode, and every name it uses
            refs = [classify(f"{fn.__module__}.{n}", module, fn.__globals__[n])
                    for n in code_names(fn.__code__) if n in fn.__globals__]
            digest = digest_bytes(marshal.dumps(without_places(fn.__code__)))
            return (name, Piece(digest, kind="code")), [r for r in refs if r is not None
                                                        ] + defaults
        source = normalised(node)
        # What the code loads as globals (not its locals), and what its decorators name.
        names = code_names(fn.__code__) | set(fn.__code__.co_freevars) | {
            n.id for d in getattr(node, "decorator_list", []) for n in ast.walk(d)
            if isinstance(n, ast.Name)}
        refs = resolve_names(node, fn.__globals__, closure_vars(fn), fn.__module__, module,
                              names)
        return (name, Piece(digest_bytes(source.encode()), source)), refs + defaults + (
            dynamic_refs(node, name, fn.__globals__, module))

    def _class_piece(self, cls: type, module: types.ModuleType
                     ) -> tuple[tuple[str, Piece], list[Any]]:
        name = f"{cls.__module__}.{cls.__qualname__}"
        methods = [getattr(m, "__func__", m) for m in vars(cls).values()]
        codes = [m.__code__ for m in methods if inspect.isfunction(m)]
        path = getattr(module, "__file__", None) or (codes[0].co_filename if codes else "")
        src = self._load(path) if path else None
        node = src.node_of(cls.__qualname__) if src is not None else None
        bases = [b for b in cls.__bases__ if b is not object]
        if node is None:  # no source: every member, by code and by value
            members = [classify(f"{name}.{k}", module, v) for k, v in vars(cls).items()
                       if not k.startswith("__")]
            digest = value_digest(sorted(k for k in vars(cls) if not k.startswith("__")))
            return (name, Piece(digest, kind="class")), bases + [m for m in members if m]
        source = normalised(node)
        local = {n for code in codes for n in code.co_varnames if n not in code_names(code)}
        refs = resolve_names(node, vars(module), {}, cls.__module__, module,
                              {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - local)
        return (name, Piece(digest_bytes(source.encode()), source, kind="class")), (
            bases + refs + dynamic_refs(node, name, vars(module), module))

    def _value_piece(self, ref: Value) -> tuple[list[tuple[str, Piece]], list[Any]]:
        if is_ignored(ref.value):
            return [], []
        refs: list[Any] = []
        try:
            digest = value_digest(ref.value, persistent_id=pickle_refs(refs))
        except Exception as e:
            why = f"{ref.key} (a {type(ref.value).__qualname__}) cannot be fingerprinted: {e}"
            return [], [WholeModule(ref.module, why)]
        short = ref.key.rpartition(".")[2]
        return [(ref.key, Piece(digest, f"{short} = {short_repr(ref.value)}", kind="value"))], refs

    def _whole_module(self, whole: WholeModule) -> tuple[list[tuple[str, Piece]], list[Any]]:
        module = whole.module
        if module is None:
            return [], []
        path = getattr(module, "__file__", None)
        src = self._load(path) if path else None
        if src is not None:
            label, text = path, src.normalised
        else:  # a notebook's __main__: every cell this kernel ran
            label, text = "(every cell run in this kernel)", "\n\n".join(cell_texts())
        piece = Piece(digest_bytes(text.encode("utf-8", "surrogatepass")), text,
                      f"whole module {label}: {whole.why}", kind="module")
        refs = [r for name, value in vars(module).items()
                if not name.startswith("_") and name not in _IPYTHON_NAMES
                and not isinstance(value, types.ModuleType)
                if (r := classify(f"{module.__name__}.{name}", module, value)) is not None]
        return [(f"module {module.__name__}", piece)], refs



def _package_piece(module_name: str) -> tuple[str, Piece]:
    top = module_name.partition(".")[0]
    key = f"{top}=={version_of(top)}"
    return key, Piece(digest_bytes(key.encode()), key, kind="package")


# -- a task's code part of its state ---------------------------------------------------
class TaskCode(HasCode, Protocol):
    """What the code state reads of a task."""

    code: str | None
    version: str | None
    pipeline: Any


def code_mode(task: TaskCode) -> str:
    """The task's own `code=` choice, else its pipeline's, else "module"."""
    return task.code or getattr(task.pipeline, "code", None) or "module"


def code_state(task: TaskCode, index: CodeIndex, old: Mapping[str, Any]
               ) -> tuple[dict[str, FileStamp | CodeStamp], dict[str, str], dict[str, str]]:
    """The code part of a task's state: (stamps, texts for explain, notes) by key."""
    stamps: dict[str, FileStamp | CodeStamp] = {}
    texts: dict[str, str] = {}
    notes: dict[str, str] = {}
    if task.version is not None:
        stamps["version"] = CodeStamp("version", digest_bytes(task.version.encode()))
        texts["version"] = task.version
        return stamps, texts, notes
    functions = task.code_functions()
    if code_mode(task) != "function":  # the defining files, except for notebook cells
        cells = []
        for fn in functions:
            found = index.file_stamp(fn, old)
            if found is None:
                cells.append(fn)
            else:
                stamps[found[0]] = found[1]
        if not cells:
            return stamps, texts, notes
        functions = cells
    for key, piece in index.pieces(functions).items():
        stamps[key] = CodeStamp(piece.kind, piece.digest)
        texts[key] = piece.source
        if piece.note:
            notes[key] = piece.note
    return stamps, texts, notes


def code_stamp(fn: Callable[..., Any], files: FileDigests, old: Mapping[str, Any]
               ) -> tuple[str, FileStamp | CodeStamp]:
    """Module mode: the whole defining file, as the original promised. A function with
    no file on disk (defined by exec) counts by its compiled code instead."""
    code = getattr(fn, "__code__", None)
    path = getattr(code, "co_filename", None)
    if path and not path.startswith("<"):
        try:
            stamp = files.stamp(path, old.get(path))
        except OSError:
            pass
        else:  # edited since imported? then the code that runs is the loaded one
            return loaded_key(fn, path, stamp, files) or (path, stamp)
    name = f"<code of {getattr(fn, '__qualname__', repr(fn))}>"
    blob = marshal.dumps(without_places(code)) if code is not None else repr(fn).encode()
    return name, CodeStamp("code", digest_bytes(blob))


def code_texts(state: Any, seen: set[str]) -> dict[str, str]:
    """The source each new code digest stands for (`seen` digests are skipped and grown),
    kept apart from records so `explain` can diff later: many tasks share a module."""
    out = {}
    for key, stamp in state.code.items():
        digest = stamp_digest(stamp)
        if digest in seen:
            continue
        seen.add(digest)
        source = state.code_text.get(key)
        if source is None and isinstance(stamp, FileStamp):  # a module file: its raw text
            try:
                with open(key, encoding="utf-8", errors="replace") as f:
                    source = f.read()
            except OSError:
                continue
        if source is not None:
            out[digest] = source
    return out
