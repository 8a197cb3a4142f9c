"""Folders the library makes for itself: owner-only, checked before they are trusted.

The store (whose values are unpickled, which runs code) and the log folders
(whose files another user could redirect with a symlink) both use `secure_dir`.
It lives on the lowest floor so `log` and `store` can share it without `log`
importing the store.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import UnsafeStoreError


def secure_dir(path: Path) -> Path:
    """Create `path` (and parents) readable and writable by its owner only, or check it.

    Loading a stored value unpickles it, which runs code: a folder that someone
    else owns or could write to is refused rather than trusted. Every folder made
    here is made owner-only, parents included: `Path.mkdir(parents=True)` gives
    the parents the umask's mode, and under `umask 000` that made
    `~/.little_pipelines` itself world-writable.
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:  # another run made it meanwhile: theirs to set
            continue
        os.chmod(folder, 0o700)  # the umask can only take bits away; this is exact
    if not path.is_dir():  # a log folder is refused with a warning, not a traceback
        raise NotADirectoryError(f"{str(path)!r} exists and is not a folder.")
    st = path.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise UnsafeStoreError(
            f"Refusing to use {str(path)!r}: it is owned by user id {st.st_uid}, not by you "
            f"({os.getuid()}), and loading its results would run code they wrote. Use a folder "
            f"of your own (cache_dir= or LITTLE_PIPELINES_HOME)."
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStoreError(
            f"Refusing to use {str(path)!r}: it is writable by group or others "
            f"(mode {stat.filemode(st.st_mode)}), so anyone could plant results that run code "
            f"when loaded. Fix it with: chmod go-w {str(path)!r}"
        )
    return path


__all__ = ["secure_dir"]
