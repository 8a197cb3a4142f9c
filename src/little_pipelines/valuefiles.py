"""Pickled values as files: written and read in one pass, digested on the way.

A 400 MB array pickled with `pickle.dumps` first becomes a 400 MB bytes object
beside the array, and reading it back with `read()` + `pickle.loads` holds the
blob and the value at once: twice the memory of `pickle.dump`/`pickle.load` on a
file, and a second pass to hash. Here the pickler writes into a writer that
hashes each chunk as it goes by; a small value stays in memory (it is stored in
SQLite), a large one is spilled to its file as soon as it passes `SPOOL_BYTES`.
Reading streams the file into the unpickler through a reader that hashes what
it hands over, so the check costs no second copy. Protocol 5 lets numpy arrays
and DataFrames hand their buffers to the writer, and the unpickler read them
straight into their final memory (`readinto`), so in-band is already one copy.

The digest is that of the pickled bytes (`fingerprint.HASH`, as `digest_bytes`),
so the same value gives the same digest whichever way it was written.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from .fingerprint import HASH, digest_bytes

#: Pickles up to this size stay in memory and go to SQLite (diskcache keeps bytes
#: under 32 KB in the database and writes the rest to a file of its own); larger
#: ones are written straight to their value file. 1 MiB bounds the extra copy.
SPOOL_BYTES = 1 << 20
PROTOCOL = pickle.HIGHEST_PROTOCOL
PREVIEW_CHARS = 2000
PREVIEW_ROWS = 5


class _Missing:
    """The sentinel for "no stored value": a cached `None` is a real result."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class DamagedValue(ValueError):
    """A value whose bytes no longer match the digest recorded when it was stored."""


class UnpicklableValue(Exception):
    """A result that pickle refused: `kind` is its type, `error` what pickle said."""

    def __init__(self, kind: str, error: str) -> None:
        super().__init__(f"{kind}: {error}")
        self.kind = kind
        self.error = error


@dataclass
class Pickled:
    """A value pickled and digested: its bytes if small, else the file it was written to."""

    digest: str
    size: int
    blob: bytes | None = None
    path: str | None = None
    preview: str = ""
    head: dict[str, Any] = field(default_factory=dict)  # preview_head(): for DataFrames

    def discard(self) -> None:
        """Remove the written file (the value was not stored after all)."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            self.path = None


class _DigestingWriter:
    """A write-only file that hashes every chunk, keeping it in memory until it is large."""

    def __init__(self, open_file: Callable[[], tuple[str, IO[bytes]]], limit: int) -> None:
        self._open_file = open_file
        self._limit = limit
        self._hash = HASH()
        self._buf: io.BytesIO | None = io.BytesIO()
        self.file: IO[bytes] | None = None
        self.path: str | None = None
        self.size = 0
        self.io_error: OSError | None = None

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self._hash.update(data)
        self.size += n
        try:
            if self._buf is not None and self.size > self._limit:
                # Spill before this write: a 400 MB array's buffer comes in one
                # call and must go straight to the file, not through memory.
                self.path, self.file = self._open_file()
                self.file.write(self._buf.getbuffer())
                self._buf = None
            if self._buf is not None:
                self._buf.write(data)
            else:
                assert self.file is not None
                self.file.write(data)
        except OSError as e:  # a full disk: the store's failure, not the value's
            self.io_error = e
            raise
        return n

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def blob(self) -> bytes | None:
        return None if self._buf is None else self._buf.getvalue()


#: Types whose pickle is short, made in one call when the value is small (see `dump`).
_SIMPLE = frozenset({bool, float, complex, type(None)})
_SIZED = frozenset({int, str, bytes})  # ... and these when their size is under _SHORT
_SHORT = 4096


def dump(value: Any, open_file: Callable[[], tuple[str, IO[bytes]]], *,
         limit: int = SPOOL_BYTES) -> Pickled:
    """Pickle `value` once: into memory if small, else into the file `open_file()` makes.

    Raises `UnpicklableValue` if pickle refuses the value and OSError if the file
    cannot be written; either way no file is left behind.

    A number, a short string or bytes (a few KB at most, never a file) is pickled in
    one `pickle.dumps`, ~0.9 us less than through the digesting writer: the same bytes
    (the pickler's output is the same whatever it is written to), the same digest.
    """
    kind = type(value)
    if kind in _SIMPLE or (kind in _SIZED and (
            value.bit_length() if kind is int else len(value)) < _SHORT):
        blob = pickle.dumps(value, protocol=PROTOCOL)
        return Pickled(digest_bytes(blob), len(blob), blob)
    writer = _DigestingWriter(open_file, limit)
    try:
        try:
            pickle.dump(value, writer, protocol=PROTOCOL)
            if writer.file is not None:
                writer.file.close()
        finally:
            if writer.file is not None and not writer.file.closed:
                writer.file.close()
    except BaseException as e:
        if writer.path is not None:
            os.remove(writer.path)
        if writer.io_error is not None or isinstance(e, (OSError, KeyboardInterrupt)):
            raise
        raise UnpicklableValue(type_name(value), f"{type(e).__name__}: {e}") from e
    return Pickled(writer.hexdigest(), writer.size, writer.blob(), writer.path)


def from_bytes(blob: bytes, digest: str, preview: str = "") -> Pickled:
    """Bytes pickled elsewhere (a remote worker), as a `Pickled`."""
    return Pickled(digest, len(blob), blob=blob, preview=preview)


class _DigestingReader:
    """A read-only file that hashes what it hands to the unpickler."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._hash = HASH()

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._hash.update(data)
        return data

    def readinto(self, buf: Any) -> int:
        # The unpickler reads a protocol-5 buffer (an array's data) straight into
        # its final bytearray through this: no intermediate bytes object.
        n = self._f.readinto(buf)  # type: ignore[attr-defined]
        self._hash.update(memoryview(buf)[:n])
        return n

    def readline(self) -> bytes:
        data = self._f.readline()
        self._hash.update(data)
        return data

    def finish(self) -> str:
        """Hash whatever the unpickler left unread; the digest of the whole file."""
        while chunk := self._f.read(1 << 22):
            self._hash.update(chunk)
        return self._hash.hexdigest()


def load_file(path: str, digest: str | None) -> Any:
    """Unpickle a value file in one pass, checking it against `digest` (None: unchecked).

    Raises `DamagedValue` if the bytes do not match (the value is not returned),
    FileNotFoundError if the file is gone, another OSError if it cannot be read
    (nothing is known about its content then), or the unpickling error of an
    intact file (a class that no longer exists, say).
    """
    with open(path, "rb") as f:
        reader = _DigestingReader(f)
        error: Exception | None = None
        try:
            value = pickle.load(reader)
        except OSError:
            raise  # the disk or the descriptor failed: says nothing about the bytes
        except Exception as e:  # judged below, once the whole file is hashed
            error = e
        actual = reader.finish()
    if digest is not None and actual != digest:
        raise DamagedValue(f"{path}: its content does not match its recorded digest")
    if error is not None:
        raise error
    return value


@dataclass(frozen=True)
class ValueFile:
    """A stored value's file, sent to a worker process on this machine instead of its bytes."""

    path: str
    digest: str | None

    def load(self) -> Any:
        return load_file(self.path, self.digest)

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as f:
            return check_bytes(f.read(), self.digest)


def check_bytes(blob: bytes, digest: str | None) -> bytes:
    """The integrity check of pickled bytes held in memory (`load_file` streams its own)."""
    if digest is not None and digest_bytes(blob) != digest:
        raise DamagedValue("the stored bytes do not match their recorded digest")
    return blob


def load_bytes(blob: bytes, digest: str | None) -> Any:
    """Unpickle bytes kept in the database, checking them against `digest` first."""
    return pickle.loads(check_bytes(blob, digest))


def type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


_REPR = reprlib.Repr()
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 20
_REPR.maxdict = 20
_REPR.maxstring = 200
_REPR.maxother = PREVIEW_CHARS
_REPR.maxlevel = 4


PREVIEW_HEAD_BYTES = 64 * 1024  # records are read on every run: keep them small


def preview_head(value: Any, rows: int = PREVIEW_ROWS) -> dict[str, Any]:
    """For a DataFrame-like value, its first rows pickled (at most 64 KB) and its shape,
    kept with the record so `lpipe show` can lay them out for the terminal it prints
    on without loading the value; {} for anything else (or if that fails)."""
    if not (callable(getattr(value, "head", None)) and hasattr(value, "shape")
            and hasattr(value, "columns") and not isinstance(value, type)):
        return {}
    try:
        head = pickle.dumps(value.head(rows), protocol=PROTOCOL)
        shape = [int(n) for n in tuple(value.shape)]
    except Exception:  # a frame-like object that is not quite one: the text preview serves
        return {}
    return {"preview_head": head, "shape": shape} if len(head) <= PREVIEW_HEAD_BYTES else {}


def preview(value: Any, rows: int = PREVIEW_ROWS) -> str:
    """A short text look at a value, kept with its record so `lpipe show` need not load it.

    The first rows of a DataFrame-like value, else a repr bounded for containers
    (reprlib: at most 20 items a level) and cut to `PREVIEW_CHARS`. Never raises.
    """
    try:
        if callable(getattr(value, "head", None)) and hasattr(value, "shape") and not isinstance(
                value, type):
            head = value.head(rows)
            text = head.to_string() if hasattr(head, "to_string") else repr(head)
            shape = " × ".join(str(n) for n in tuple(value.shape))
            text = f"{text}\n[{shape}; first {rows} rows]"
        else:
            text = _REPR.repr(value)
    except Exception as e:  # a broken __repr__ must not fail the task
        return f"<{type(value).__qualname__} whose repr failed: {type(e).__name__}: {e}>"
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + f"… ({len(text)} characters)"
    return text
