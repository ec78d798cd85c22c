"""BAID (Boosting Artwork Aesthetics, CVPR 2023): labels from data/labels, images supplied by the user.

Scores are on BAID's native 0..10 scale (the shipped files range 2.70..10; train mean 4.57, sd 1.65);
the BAID accuracy rule is "score > 5 is positive". Official split `baid_official`: 50,737 / 3,200 / 6,400.
Images are not shipped (CC BY-NC-ND 4.0, downloaded from BAID's URL list): pass the folder holding
<image_id>.jpg as `data_root` (an `images/` sub-folder is also accepted).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from iaa_lib.data.labels import read_baid
from iaa_lib.paths import DATA_DIR, resolve

BAID_SPLITS = ("train", "val", "test")
BAID_COUNTS = {"train": 50_737, "val": 3_200, "test": 6_400}


def baid_labels(split: str, labels_dir: str | os.PathLike = DATA_DIR / "labels") -> pd.DataFrame:
    """Label frame (image_id, mos 0..10, file_name) of one official BAID split from labels_dir/baid_<split>.csv."""
    if split not in BAID_SPLITS:
        raise ValueError(f"BAID split must be one of {BAID_SPLITS}, got {split!r}")
    path = resolve(labels_dir) / f"baid_{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"BAID labels not found: {path}; copy Dreemurr-T/BAID dataset/{split}_set.csv there")
    return read_baid(path)


def baid_image_dir(data_root: str | os.PathLike) -> Path:
    """The folder holding BAID's <id>.jpg images: data_root itself or data_root/images."""
    root = resolve(data_root)
    for folder in (root, root / "images"):
        if folder.is_dir() and any(folder.glob("*.jpg")):
            return folder
    raise FileNotFoundError(
        f"no BAID images (*.jpg) in {root} or {root / 'images'}; download them with BAID's script "
        "(github.com/Dreemurr-T/BAID, downloading/download.py) and pass that folder as data_root"
    )


def load_baid(
    split: str, data_root: str | os.PathLike, labels_dir: str | os.PathLike = DATA_DIR / "labels", check_images: bool = True
) -> pd.DataFrame:
    """BAID label frame with an absolute `path` column; FileNotFoundError listing missing images when check_images."""
    frame = baid_labels(split, labels_dir)
    image_dir = baid_image_dir(data_root)
    frame["path"] = [str(image_dir / name) for name in frame["file_name"]]
    if check_images:
        missing = [p for p in frame["path"] if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(frame)} BAID {split} images are missing from {image_dir} "
                f"(first: {Path(missing[0]).name}); re-run BAID's download script or pass check_images=False "
                "and drop those rows"
            )
    return frame
