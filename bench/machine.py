"""What machine and software produced the numbers (written at the top of the report)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("little-pipelines", "diskcache", "loguru", "rich", "doit", "joblib", "luigi",
            "apache-hamilton", "prefect", "matplotlib", "xxhash", "blake3")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(python: str) -> dict[str, Any]:
    dirty = [ln[3:] for ln in _git("status", "--porcelain", "--", "src").splitlines()]
    return {
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_path": python,
        "filesystem": _fs_type(),
        "versions": {p: _version(p) for p in PACKAGES},
        "git_commit": _git("rev-parse", "--short", "HEAD").strip(),
        "src_uncommitted": dirty,
    }


def _fs_type() -> str:
    try:
        out = subprocess.run(["df", "-T", "/tmp"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[-1].split()[1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"
