"""The embedded real data: 77 AVA photographs with true vote histograms, their comments and a fixed split."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from iaa_lib.data.labels import read_ava_votes
from iaa_lib.data.splits import random_split, read_splits_csv, write_splits_csv
from iaa_lib.paths import DATA_DIR

SAMPLE_DIR = DATA_DIR / "ava_sample"
DPC_COMMENTS_FILE = DATA_DIR / "labels" / "dpc_impression_and_subject.json"
SAMPLE_SPLIT_RATIOS = (0.6, 0.2, 0.2)
SAMPLE_SPLIT_SEED = 0
_RESTORE_HINT = "restore it with `git checkout -- data/` (see data/README.md for its provenance)"


def _sample_dir(data_dir: str | os.PathLike | None) -> Path:
    """The sample folder (default data/ava_sample), FileNotFoundError with the fix when absent."""
    folder = Path(data_dir) if data_dir is not None else SAMPLE_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"AVA sample folder not found: {folder}; {_RESTORE_HINT}")
    return folder


def _required_file(path: Path) -> Path:
    """The path, or FileNotFoundError naming it and the fix."""
    if not path.is_file():
        raise FileNotFoundError(f"missing embedded data file {path}; {_RESTORE_HINT}")
    return path


def load_ava_sample(data_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, Path]:
    """(label frame of the 77 embedded AVA photos, their image folder); errors name any missing file."""
    folder = _sample_dir(data_dir)
    frame = read_ava_votes(_required_file(folder / "labels.csv"))
    image_dir = folder / "images"
    if not image_dir.is_dir():
        raise FileNotFoundError(f"AVA sample image folder not found: {image_dir}; {_RESTORE_HINT}")
    missing = [i for i in frame["image_id"] if not (image_dir / f"{i}.jpg").is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} AVA sample image(s) missing from {image_dir}: {missing[:5]}; {_RESTORE_HINT}")
    return frame, image_dir


def load_sample_comments(data_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Real DPChallenge comments of the sample images that have them: {image_id: [comment, ...]}."""
    path = _required_file(_sample_dir(data_dir) / "comments.jsonl")
    comments: dict[str, list[str]] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            image_id, texts = str(record["image_id"]), record["comments"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: line {line_number} is not a {{'image_id', 'comments'}} JSON object: {error}") from error
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{path}: line {line_number}: 'comments' must be a list of strings")
        if image_id in comments:
            raise ValueError(f"{path}: line {line_number}: duplicate image_id {image_id}")
        comments[image_id] = texts
    return comments


def make_sample_splits(image_ids) -> dict[str, list[str]]:
    """The sample's split: random_split(ids, ratios=(0.6, 0.2, 0.2), seed=0)."""
    return random_split(image_ids, ratios=SAMPLE_SPLIT_RATIOS, seed=SAMPLE_SPLIT_SEED)


def write_sample_splits(data_dir: str | os.PathLike | None = None) -> Path:
    """(Re)generate <sample>/splits.csv (image_id,split) from the sample's labels with make_sample_splits."""
    frame, _ = load_ava_sample(data_dir)
    return write_splits_csv(make_sample_splits(frame["image_id"]), _sample_dir(data_dir) / "splits.csv")


def sample_splits(data_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """The fixed split of the sample from splits.csv: {'train': ids, 'val': ids, 'test': ids} (46/16/15 images)."""
    folder = _sample_dir(data_dir)
    path = folder / "splits.csv"
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}; regenerate it with iaa_lib.data.sample.write_sample_splits()")
    splits = read_splits_csv(path)
    frame, _ = load_ava_sample(data_dir)
    listed = {i for ids in splits.values() for i in ids}
    if listed != set(frame["image_id"]):
        raise ValueError(f"{path} does not cover exactly the sample's images; regenerate it with write_sample_splits()")
    return splits


def load_dpc_comments(path: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """DPC-Captions 'impression and subject' critiques: {image_id: [comment, ...]} ('<id>.jpg' keys -> '<id>')."""
    path = _required_file(Path(path) if path is not None else DPC_COMMENTS_FILE)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object {{'<id>.jpg': [comment, ...]}}, got {type(raw).__name__}")
    comments = {}
    for key, texts in raw.items():
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{path}: value of {key!r} must be a list of strings")
        image_id = key[: -len(".jpg")] if key.endswith(".jpg") else key
        if image_id in comments:
            raise ValueError(f"{path}: image id {image_id} appears twice")
        comments[image_id] = texts
    return comments
