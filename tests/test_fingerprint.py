"""Fingerprint alone: input globs, file stamps (stat first, content when it moved)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import little_pipelines as lp
from little_pipelines.fingerprint import FileDigests, changed_since, digest_file, expand_inputs


def test_paths_folders_and_globs_expand_to_sorted_files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("data/b.csv", "data/a.csv", "data/sub/c.csv", "notes.txt"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(name)
    assert expand_inputs(["data/*.csv", "notes.txt"], task="t") == [
        "data/a.csv", "data/b.csv", "notes.txt"]
    assert expand_inputs(["data"], task="t") == [
        "data/a.csv", "data/b.csv", os.path.join("data", "sub", "c.csv")]
    with pytest.raises(lp.MissingInputError, match=r"input glob 'nothing/\*.csv' matches no"):
        expand_inputs(["nothing/*.csv"], task="t")


def test_a_stamp_reads_the_file_only_when_its_stat_moved(tmp_path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("one")
    first = FileDigests().stamp(str(path))
    assert first == (3, path.stat().st_mtime_ns, digest_file(str(path)))
    # Same size and mtime: trusted without reading (the cheap check first).
    os.utime(path, ns=(first.mtime_ns, first.mtime_ns))
    assert FileDigests().stamp(str(path), first) == first
    path.write_text("two")
    os.utime(path, ns=(first.mtime_ns + 1_000_000_000,) * 2)
    assert changed_since({str(path): first}) == [str(path)]
    second = FileDigests().stamp(str(path), first)
    assert second.digest != first.digest and second.size == 3
