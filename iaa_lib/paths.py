"""Where the repository, its embedded data and its run outputs live."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


def runs_dir() -> Path:
    """Folder for checkpoints, caches and metrics: $IAA_RUNS_DIR, else <repo>/runs."""
    return Path(os.environ.get("IAA_RUNS_DIR") or REPO_ROOT / "runs")


def resolve(path: str | os.PathLike) -> Path:
    """Absolute path for a notebook parameter: `runs/...` goes under runs_dir(), other relative paths
    are taken from the repository root, so notebooks behave the same from any working directory."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    if path.parts and path.parts[0] == "runs":
        return runs_dir().joinpath(*path.parts[1:])
    return REPO_ROOT / path
