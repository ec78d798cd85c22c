"""Finished runs by configuration hash, so a run trained in one folder serves an identical configuration elsewhere.

`fit_or_load` registers every finished run as <runs_dir>/_by_config/<config hash>.txt (the folder that holds it)
and, when its own out_dir has no finished run of that hash, looks the hash up here: the comparison chapter then
loads the checkpoint a paper's chapter trained with the same recipe, data and seed instead of training it again.
An entry is only trusted after the folder's last.pt is read back and holds a finished run of that very hash.
"""
from __future__ import annotations

import os
from pathlib import Path

from iaa_lib.files import atomic_write_text
from iaa_lib.paths import runs_dir
from iaa_lib.training.checkpoints import CheckpointError, read_checkpoint

INDEX_FOLDER = "_by_config"


def _entry(hash_: str) -> Path:
    return runs_dir() / INDEX_FOLDER / f"{hash_}.txt"


def register_run(hash_: str, out_dir: str | os.PathLike) -> Path:
    """Record that `out_dir` holds the finished run of config `hash_` (the latest folder wins); the entry's path."""
    return atomic_write_text(_entry(hash_), str(Path(out_dir).expanduser().resolve()))


def finished_run_elsewhere(hash_: str, out_dir: str | os.PathLike) -> tuple[Path, dict] | None:
    """(folder, its last.pt) of a registered finished run of config `hash_` other than `out_dir`, else None.

    A stale entry (folder gone, retrained with another configuration, unreadable) counts as none."""
    entry = _entry(hash_)
    if not entry.is_file():
        return None
    folder = Path(entry.read_text().strip())
    if folder == Path(out_dir).expanduser().resolve() or not (folder / "last.pt").is_file():
        return None
    try:
        state = read_checkpoint(folder / "last.pt")
    except CheckpointError:
        return None
    if state.get("config_hash") != hash_ or not state.get("finished"):
        return None
    return folder, state
