"""Folders: where a pipeline's store and logs live, and making them owner-only.

`pipeline_folders` and `check_pipeline_name` say where a pipeline's files go;
`defining_file` which script a pipeline (and so its store) belongs to.

The store (whose values are unpickled, which runs code) and the log folders
(whose files another user could redirect with a symlink) both use `secure_dir`.
It lives on the lowest floor so `log` and `store` can share it without `log`
importing the store.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import types
from pathlib import Path
from typing import Any

from .errors import InvalidOptionError, UnsafeStoreError

# A name is one folder: no separator (':' is a drive on Windows), no NUL or control character.
_UNSAFE_CHARS = re.compile(r"[/\\:\x00-\x1f\x7f]")
_HOME_ENV = "LITTLE_PIPELINES_HOME"
_LOG_ENV = "LOG_DIR"


def pipeline_folders(name: str, cache_dir: str | os.PathLike[str] | None,
                     log_dir: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """A pipeline's store folder and log folder (see `Pipeline` for the defaults)."""
    if cache_dir is not None:
        folder = Path(cache_dir).expanduser()
    else:
        home = os.environ.get(_HOME_ENV) or Path.home() / ".little_pipelines"
        folder = Path(home).expanduser() / name
    if log_dir is not None:
        return folder, Path(log_dir).expanduser()
    if os.environ.get(_LOG_ENV):
        # The folder itself, as the original (shared by pipelines sharing it).
        return folder, Path(os.environ[_LOG_ENV]).expanduser()
    return folder, folder / "logs"


def check_pipeline_name(name: Any) -> str:
    """The name, if it names one folder (any such name, as in the original), else an error."""
    # Any other name is one folder, as in the original (".little-pipelines-tests").
    if not isinstance(name, str) or name in ("", ".", "..") or _UNSAFE_CHARS.search(name):
        raise InvalidOptionError(
            f"Pipeline name {name!r} is not a safe folder name: it must name one folder, "
            f"so not '.' or '..', no '/', '\\' or ':' and no control characters "
            f"(e.g. 'sales_etl' or '.hidden')."
        )
    return name


def defining_file() -> str | None:
    """The file whose code created the pipeline (the first frame outside this package);
    None in a notebook or an interactive session, whose "files" change every session."""
    frame: types.FrameType | None = sys._getframe(2)
    package = os.path.dirname(os.path.abspath(__file__))
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
    if frame is None:
        return None
    name = frame.f_code.co_filename
    if not name.endswith(".py") or "ipykernel_" in name or not os.path.isfile(name):
        return None
    return os.path.realpath(name)


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
