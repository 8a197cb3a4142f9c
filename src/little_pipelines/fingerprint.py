"""Fingerprints: of code files, of input files, of values, and their combination.

Value digests are canonical: equal values have equal digests in every process
(see `value_digest`), which is what lets a rerun that returns an equal result
stop the tasks below it (early cutoff).

Everything hashed is tagged with its kind (`("file", path, digest)`, not a bare
concatenation), so two different things can never collide by lining up.

Input files take the cheap path first: a file whose size and mtime (ns) equal
what was recorded keeps its recorded digest without being read; only a file
whose stat changed is hashed, and if its content is the same the task stays
cached. A `FileDigests` object lives for one run, so a file shared by many
tasks is hashed once per version of its content; it is stat'ed for each task,
because a task that ran earlier in the run may have rewritten it.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from .errors import MissingInputError

#: One place chooses the hash, by measurement (docs/benchmarks.md): on a
#: page-cached 1 GiB file xxh3_128 ran at ~8 GB/s against ~9-10 GB/s for a plain
#: read (about 80%), sha256 at ~1.5 GB/s (16%), blake3 ~4 GB/s, blake2b ~0.9 GB/s.
#: Fingerprints guard against accidents, not adversaries (the store is the
#: user's own folder), so a fast non-cryptographic 128-bit hash is enough; it
#: is why xxhash is the one runtime dependency beyond diskcache, loguru and rich.
HASH = xxhash.xxh3_128
_GLOB_CHARS = frozenset("*?[")


class FileStamp(NamedTuple):
    """What the store keeps per input or code file. A plain tuple, so stamps written
    before it was named (plain `(size, mtime_ns, digest)` tuples) compare equal."""

    size: int
    mtime_ns: int
    digest: str


class CodeStamp(NamedTuple):
    """A code piece that is not a file: a function, class or constant (code="function"),
    a notebook cell's function, or a task's `version`. Its digest is last, as in a
    `FileStamp`, so `stamp[-1]` reads both; records written before it existed hold
    `(0, 0, digest)` for these, which `stamp_digest` reads the same way."""

    kind: str  # "function", "class", "value", "module", "package", "version", "code"
    digest: str


def stamp_digest(stamp: tuple[Any, ...]) -> str:
    """The digest of any stamp: a FileStamp, a CodeStamp, or an old record's tuple."""
    return str(stamp[-1])

#: The digest recorded for an input that changed while its task ran: it matches
#: no content, so the next run does the task again (see `changed_since`).
CHANGED_WHILE_RUNNING = "<changed while the task ran>"


def digest_bytes(data: bytes | memoryview) -> str:
    """The hex digest of some bytes (used for pickled values)."""
    return xxhash.xxh3_128_hexdigest(data)


def digest_file(path: str) -> str:
    """The hex digest of a file's content, read in large chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, HASH).hexdigest()


Digester = Callable[[Any], "bytes | str"]
_DIGESTERS: dict[type, Digester] = {}
_ATOMIC = (str, bytes, int, float, bool, type(None), complex)


def register_digest(cls: type, fn: Digester) -> None:
    """Teach value digests a type: `fn(value)` returns bytes or a str that are equal
    exactly when two values of `cls` are equal (and so interchangeable for the tasks
    that read them). Used for results (early cutoff), params and code constants.

    >>> lp.register_digest(Money, lambda m: f"{m.currency}:{m.cents}")
    """
    if not isinstance(cls, type) or not callable(fn):
        raise TypeError(
            f"register_digest expects a type and a function of one value, received "
            f"{cls!r} and {fn!r}. Call it as lp.register_digest(MyType, lambda v: bytes(...))."
        )
    _DIGESTERS[cls] = fn


def value_digest(value: Any, persistent_id: Callable[[Any], Any] | None = None) -> str:
    """The canonical digest of a value: equal values give equal digests in any process.

    Builtin containers are digested by their elements (sets and frozensets by their
    elements' digests, sorted: their pickles depend on the per-process hash seed;
    dicts by their items' digests, sorted, as `==` ignores their order: a dict built
    from a set has a seed-dependent order too). numpy arrays and
    pandas/polars frames count by their content, and types given to
    `register_digest` by their function. Anything else counts by its pickle; what
    cannot be pickled raises, so it is never silently left out.

    `persistent_id` (code fingerprints) may take objects met while pickling by
    reference instead, as `pickle.Pickler.persistent_id` does.
    """
    h = HASH()
    _feed(h, value, set(), persistent_id)
    return h.hexdigest()


def content_digest(value: Any) -> str | None:
    """A result's digest for early cutoff, or None where its pickle's digest serves as
    well (a plain object with no canonical form: digesting it again would only cost)."""
    if type(value) in _ATOMIC or not (
            isinstance(value, (dict, list, tuple, set, frozenset)) or _digester(value)):
        return None
    try:
        return value_digest(value)
    except Exception:
        return None  # its pickle digest stands in, as before


class _Pickler(pickle.Pickler):
    def __init__(self, file: Any, pid: Callable[[Any], Any]) -> None:
        super().__init__(file, protocol=4)
        self._pid = pid

    def persistent_id(self, obj: Any) -> Any:
        return self._pid(obj)


def _pickled(value: Any, pid: Callable[[Any], Any] | None) -> bytes:
    if pid is None:
        return pickle.dumps(value, protocol=4)
    buf = io.BytesIO()
    _Pickler(buf, pid).dump(value)
    return buf.getvalue()


def _feed(h: Any, value: Any, path: set[int], pid: Callable[[Any], Any] | None) -> None:
    kind = type(value)
    if kind in _ATOMIC:
        data = value if kind is bytes else repr(value).encode("utf-8", "surrogatepass")
        h.update(b"a%s %d:" % (kind.__name__.encode(), len(data)) + data)  # length: no overlap
        return
    if kind in (list, tuple, dict, set, frozenset):
        if id(value) in path:
            raise ValueError("a container that contains itself")
        path.add(id(value))
        h.update(b"(%s %d:" % (kind.__name__.encode(), len(value)))
        if kind is dict and all(type(k) in _ATOMIC and type(v) in _ATOMIC
                                for k, v in value.items()):  # fast path for flat data
            h.update(repr(sorted((type(k).__name__, repr(k), repr(v)) for k, v in value.items())
                          ).encode("utf-8", "surrogatepass"))
        elif kind is dict:  # by its items, sorted: == ignores order, and so does the digest
            for pair in sorted(value_digest(k, pid) + value_digest(v, pid)
                               for k, v in value.items()):
                h.update(pair.encode())
        elif kind in (set, frozenset):
            for digest in sorted(value_digest(v, pid) for v in value):
                h.update(digest.encode())
        elif all(type(v) in _ATOMIC for v in value):
            # fast path for flat data; repr, not pickle: a pickle shares repeated objects
            # by identity, so equal lists built differently would pickle differently
            h.update(repr(value).encode("utf-8", "surrogatepass"))
        else:
            for v in value:
                _feed(h, v, path, pid)
        h.update(b")")
        path.discard(id(value))
        return
    fn = _digester(value)
    if fn is not None:
        try:
            out = fn(value)
        except Exception:
            if fn in _DIGESTERS.values():
                raise  # the user's own: say so rather than guess
            h.update(b"p" + _pickled(value, pid))  # a library changed its API: by pickle
            return
        data = out.encode("utf-8", "surrogatepass") if isinstance(out, str) else bytes(out)
        name = f"{kind.__module__}.{kind.__qualname__}".encode()
        h.update(b"t%s %d:" % (name, len(data)) + data)
        return
    h.update(b"p" + _pickled(value, pid))


def _digester(value: Any) -> Digester | None:
    """The content digest for the value's type: registered, or a known library's.

    numpy, pandas and polars are looked up only when already imported: a value of
    their types cannot exist otherwise, so they are never imported here.
    """
    for cls in type(value).__mro__:
        if cls in _DIGESTERS:
            return _DIGESTERS[cls]
    top = type(value).__module__.partition(".")[0]
    if top == "numpy" and "numpy" in sys.modules:
        np = sys.modules["numpy"]
        if isinstance(value, np.ndarray):
            return _numpy_digest
    if top == "pandas" and "pandas" in sys.modules:
        pd = sys.modules["pandas"]
        if isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
            return _pandas_digest
    if top == "polars" and "polars" in sys.modules:
        pl = sys.modules["polars"]
        if isinstance(value, (pl.DataFrame, pl.Series)):
            return _polars_digest
    return None


def _numpy_digest(a: Any) -> bytes:
    head = f"{a.dtype.str}{a.dtype.descr!r}{a.shape}".encode()
    if a.dtype.hasobject:  # the bytes are pointers: digest the elements instead
        return head + value_digest(a.tolist()).encode()
    # A C-contiguous array is hashed in place: tobytes() would copy a 400 MB array
    # (issue 14: storing a value must hold one copy). Same bytes, same digest.
    data = a.data if a.flags.c_contiguous else a.tobytes(order="C")
    return head + HASH(data).digest()


_ROWS_AT_ONCE = 1 << 20


def _pandas_digest(obj: Any) -> bytes:
    import numpy as np  # pandas imports it
    import pandas as pd  # already imported: `_digester` checked

    h = HASH()

    def hash_rows(values: Any) -> None:
        dtype = values.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
            # Plain numbers, booleans and times: their bytes, hashed in place (~8x
            # faster than pandas' row hashes). Equal bytes are equal values; the
            # converse may fail (-0.0 and 0.0), which costs a rerun, never a stale result.
            whole = None if isinstance(values, pd.RangeIndex) else values.to_numpy()
            for start in range(0, len(values), _ROWS_AT_ONCE):
                part = (values[start:start + _ROWS_AT_ONCE].to_numpy() if whole is None
                        else whole[start:start + _ROWS_AT_ONCE])
                h.update(np.ascontiguousarray(part).view(np.uint8).data)  # times too
            return
        # Row hashes are elementwise, so hashing in slices feeds the same bytes as
        # hashing whole; a whole 10M-row column made ~250 MB of temporaries (issue 14:
        # storing a 400 MB DataFrame must not hold much beside it).
        for start in range(0, len(values), _ROWS_AT_ONCE):
            part = values[start:start + _ROWS_AT_ONCE]
            if _mixed_objects(pd, part):
                # pandas hashes an object that is not a string by its str(): 1 and "1",
                # (1, 2) and "(1, 2)" would collide, and unequal frames share a digest.
                h.update(value_digest(part.tolist()).encode())
                continue
            h.update(pd.util.hash_pandas_object(part, index=False, categorize=False)
                     .to_numpy().tobytes())

    def index(ix: Any) -> None:
        h.update(repr((list(ix.names), str(ix.dtype))).encode())  # RangeIndex == Index
        hash_rows(ix)

    if isinstance(obj, pd.Index):
        index(obj)
        return h.digest()
    index(obj.index)
    columns = [obj] if isinstance(obj, pd.Series) else [obj.iloc[:, i]
                                                        for i in range(obj.shape[1])]
    if isinstance(obj, pd.DataFrame):
        index(obj.columns)
    else:
        h.update(repr(obj.name).encode())
    for col in columns:
        h.update(repr(col.dtype).encode())
        hash_rows(col)
    if obj.attrs:
        h.update(value_digest(obj.attrs).encode())
    return h.digest()


def _mixed_objects(pd: Any, values: Any) -> bool:
    """Whether pandas' row hash would take some of these values by their str():
    object (or categorical) data that is not all strings."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _mixed_objects(pd, dtype.categories)
    return dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=False) != "string"


def _polars_digest(obj: Any) -> bytes:
    pl = sys.modules["polars"]
    frame = obj.to_frame() if isinstance(obj, pl.Series) else obj
    head = repr((type(obj).__name__, list(frame.schema.items()), frame.shape)).encode()
    rows = frame.hash_rows(seed=0, seed_1=1, seed_2=2, seed_3=3).to_numpy().tobytes()
    return head + HASH(rows).digest()


def short_repr(value: Any, limit: int = 200) -> str:
    """A repr for messages and records, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def combine(*parts: Any) -> str:
    """The digest of tagged parts: tuples of strings, numbers and nested tuples."""
    return combine_repr(repr(parts))


def combine_repr(text: str) -> str:
    """`combine`'s digest of the parts whose repr is `text`, built by hand: a state's
    parts were built as tuples only for their repr (~2 µs a task, most of it the
    recursion guard `repr` takes for each tuple). Same text, same digest."""
    return HASH(text.encode("utf-8", "surrogatepass")).hexdigest()


def pairs_repr(pairs: Mapping[Any, Any]) -> str:
    """`repr(tuple(sorted(pairs.items())))` for keys that sort alone (a dict's: unique)."""
    if not pairs:
        return "()"
    if len(pairs) == 1:
        for key, value in pairs.items():
            return f"(({key!r}, {value!r}),)"
    return "(" + ", ".join([f"({key!r}, {pairs[key]!r})" for key in sorted(pairs)]) + ")"


def expand_inputs(specs: Iterable[str | os.PathLike[str]], *, task: str) -> list[str]:
    """Turn paths, folders and globs into a sorted list of files; every spec must match.

    Relative paths are taken from the current working directory, the same place
    the task's own `open(...)` calls resolve them.
    """
    files: set[str] = set()
    for spec in specs:
        text = os.fspath(spec)
        if _GLOB_CHARS.intersection(text):
            matched = [m for m in glob.glob(text, recursive=True) if os.path.isfile(m)]
        elif os.path.isdir(text):
            matched = [str(p) for p in Path(text).rglob("*") if p.is_file()]
        elif os.path.isfile(text):
            matched = [text]
        else:
            matched = []
        if not matched:
            what = "glob" if _GLOB_CHARS.intersection(text) else "path"
            raise MissingInputError(
                f"Task {task!r}: input {what} {text!r} matches no file "
                f"(looked from {os.getcwd()!r}). Create the file, fix the path in "
                f"input_files=, or remove it from the task."
            )
        files.update(os.path.normpath(m) for m in matched)
    return sorted(files)


def changed_since(stamps: Mapping[str, FileStamp]) -> list[str]:
    """The paths whose size or mtime differ from their stamps now, or that are gone.

    Only stats (no hashing): called after each task that ran, on its inputs.
    """
    changed = []
    for path, stamp in stamps.items():
        try:
            st = os.stat(path)
        except OSError:
            changed.append(path)
            continue
        if st.st_size != stamp[0] or st.st_mtime_ns != stamp[1]:
            changed.append(path)
    return changed


class FileDigests:
    """Per-run memo of file digests, using recorded stamps to avoid re-reading files."""

    def __init__(self) -> None:
        self._stamps: dict[str, FileStamp] = {}

    def stamp(self, path: str, previous: FileStamp | None = None) -> FileStamp:
        """(size, mtime_ns, digest) of `path`, reading it only if its stat changed.

        A stamp memoised earlier in the run is trusted only while the stat still
        matches it (returning it unchecked was rejected: a task that writes a file
        other tasks read would leave them recording the old content's digest).
        """
        st = os.stat(path)
        for known in (self._stamps.get(path), previous):
            if known is not None and known[0] == st.st_size and known[1] == st.st_mtime_ns:
                stamp = known
                break
        else:
            stamp = FileStamp(st.st_size, st.st_mtime_ns, digest_file(path))
        self._stamps[path] = stamp
        return stamp
