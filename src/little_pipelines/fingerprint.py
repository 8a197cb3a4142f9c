"""Fingerprints: of code files, of input files, of values, and their combination.

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
import os
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import xxhash

from .errors import MissingInputError

#: One place chooses the hash, by measurement (docs/benchmarks.md): on a
#: page-cached 1 GiB file xxh3_128 ran at ~8 GB/s against ~9-10 GB/s for a plain
#: read (about 80%), sha256 at ~1.5 GB/s (16%), blake3 ~4 GB/s, blake2b ~0.9 GB/s.
#: Fingerprints guard against accidents, not adversaries (the store is the
#: user's own folder), so a fast non-cryptographic 128-bit hash is enough; it
#: is why xxhash is the one runtime dependency beyond diskcache, loguru and rich.
_HASH = xxhash.xxh3_128
_GLOB_CHARS = frozenset("*?[")

#: What the store keeps per input file: (size, mtime_ns, content digest).
FileStamp = tuple[int, int, str]

#: The digest recorded for an input that changed while its task ran: it matches
#: no content, so the next run does the task again (see `changed_since`).
CHANGED_WHILE_RUNNING = "<changed while the task ran>"


def digest_bytes(data: bytes | memoryview) -> str:
    """The hex digest of some bytes (used for pickled values)."""
    return xxhash.xxh3_128_hexdigest(data)


def digest_file(path: str) -> str:
    """The hex digest of a file's content, read in large chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, _HASH).hexdigest()


def value_digest(value: Any) -> str:
    """The digest of a param value or source token, equal across processes.

    Containers are made canonical first (dicts and sets sorted), because their
    pickles depend on insertion order and, for sets of strings, on the
    per-process hash seed. Anything else counts by its pickle; what cannot be
    pickled raises, so it is never silently left out.
    """
    return digest_bytes(pickle.dumps(_canonical(value), protocol=4))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        return ("dict", tuple(sorted(items, key=repr)))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((_canonical(v) for v in value), key=repr)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_canonical(v) for v in value))
    return value


def short_repr(value: Any, limit: int = 200) -> str:
    """A repr for messages and records, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def combine(*parts: Any) -> str:
    """The digest of tagged parts: tuples of strings, numbers and nested tuples."""
    return _HASH(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


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
            stamp = (st.st_size, st.st_mtime_ns, digest_file(path))
        self._stamps[path] = stamp
        return stamp
