"""The book's labelled image sets by name, with their splits: a cached synthetic set, the embedded AVA sample, full AVA.

``labelled_set(dataset, ...) -> (label frame, image folder or None, {"train", "val", "test": ids})``:

* ``"synthetic"``: ``make_synthetic(n_synthetic, <run_dir>/synthetic_<size>_<n>_<seed>/generator_v<version>)``,
  generated once and reused (its frame is pickled next to the images), split ``synthetic_ratios`` with ``random_split``;
* ``"ava_sample"``: the 77 embedded AVA photos with their fixed 46/16/15 split;
* ``"ava"``: a full AVA copy, images ``<data_root>/<image_id>.jpg``, labels from data/labels/ava_votes.csv.gz,
  test = the ids of ``test_list`` (one per line: e.g. the official ``generic_test.jpgl``, or ILGnet's list),
  val = a seeded 5 % of the rest. Ids without an image file are left out. With ``manifest`` (written by
  ``python -m iaa_lib data check --dataset ava``) the user's own AVA.txt, images and official test list are used
  instead, only the images the check found readable (the check's report lists every other one).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, Sequence

import pandas as pd

from iaa_lib.data.check import labelled_from_manifest
from iaa_lib.data.labels import read_ava_votes
from iaa_lib.data.sample import load_ava_sample, sample_splits
from iaa_lib.data.splits import random_split, read_id_list, split_from_id_lists
from iaa_lib.data.synthetic import GENERATOR_VERSION, make_synthetic
from iaa_lib.files import atomic_pickle, atomic_write_json, read_pickle_cache
from iaa_lib.paths import DATA_DIR, resolve

AVA_VOTES_FILE = DATA_DIR / "labels" / "ava_votes.csv.gz"
DEFAULT_SYNTHETIC_RATIOS = (0.6, 0.2, 0.2)


def cached_synthetic(n: int, out_dir: str | os.PathLike, image_size: int = 96, seed: int = 0) -> pd.DataFrame:
    """make_synthetic(n, out_dir/generator_v<GENERATOR_VERSION>, image_size, seed), generated once: later calls read
    the pickled frame back. The generator version is part of the folder (so of every image path, which feature and
    checkpoint caches key on) and of the recorded parameters."""
    out_dir = resolve(out_dir) / f"generator_v{GENERATOR_VERSION}"
    frame_file, params_file = out_dir / "frame.pkl", out_dir / "params.json"
    params = {"n": n, "image_size": image_size, "seed": seed, "generator_version": GENERATOR_VERSION}
    if params_file.is_file() and json.loads(params_file.read_text()) == params:
        frame = read_pickle_cache(frame_file)
        if frame is not None and all(Path(p).is_file() for p in frame["path"]):
            return frame
    frame = make_synthetic(n, out_dir, image_size=image_size, seed=seed)
    atomic_pickle(frame, frame_file)
    atomic_write_json(params_file, params)
    return frame


def labelled_set(
    dataset: Literal["synthetic", "ava_sample", "ava"],
    *,
    run_dir: str | os.PathLike = "runs",
    n_synthetic: int = 300,
    synthetic_size: int = 96,
    data_root: str | os.PathLike | None = None,
    test_list: str | os.PathLike | None = None,
    seed: int = 0,
    synthetic_ratios: Sequence[float] = DEFAULT_SYNTHETIC_RATIOS,
    manifest: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, Path | None, dict[str, list[str]]]:
    """(label frame, image folder or None when the frame has paths, splits train/val/test) of a named set (module
    docstring). ValueError before any work when a split comes out empty or full AVA finds no image."""
    if dataset == "synthetic":
        folder = resolve(run_dir) / f"synthetic_{synthetic_size}_{n_synthetic}_{seed}"
        frame = cached_synthetic(n_synthetic, folder, image_size=synthetic_size, seed=seed)
        splits = random_split(frame["image_id"], synthetic_ratios, seed=seed)
        return frame, None, _non_empty(splits, f"synthetic set (n_synthetic={n_synthetic}, ratios {tuple(synthetic_ratios)})")
    if dataset == "ava_sample":
        frame, image_dir = load_ava_sample(data_root or None)
        return frame, image_dir, _non_empty(sample_splits(data_root or None), f"AVA sample in {image_dir}")
    if dataset == "ava" and manifest:
        frame, _, checked = labelled_from_manifest(resolve(manifest))
        if "test" not in checked:
            raise ValueError(f"{manifest}: no readable image of the official test list; see its data check report")
        splits = split_from_id_lists(frame["image_id"], checked["test"], val_fraction=0.05, seed=seed)
        return frame, None, _non_empty(splits, f"AVA manifest {manifest}")
    if dataset == "ava":
        if not data_root or not test_list:
            raise ValueError("dataset='ava' needs data_root (your folder of AVA <image_id>.jpg files) and test_list "
                             "(a file of test ids, one per line, e.g. AVA's aesthetics_image_lists/generic_test.jpgl)")
        image_dir = resolve(data_root)
        if not image_dir.is_dir():
            raise FileNotFoundError(f"dataset='ava': data_root {image_dir} is not a folder; pass your folder of AVA "
                                    "<image_id>.jpg files")
        votes = read_ava_votes(AVA_VOTES_FILE)
        frame = votes[[(image_dir / f"{i}.jpg").is_file() for i in votes["image_id"]]].reset_index(drop=True)
        if frame.empty:
            raise ValueError(f"dataset='ava': none of the {len(votes)} AVA images "
                             f"(<image_id>.jpg) is in data_root {image_dir}; is it the folder that holds the .jpg files?")
        splits = split_from_id_lists(frame["image_id"], read_id_list(resolve(test_list)), val_fraction=0.05,
                                     seed=seed, unknown="drop")
        return frame, image_dir, _non_empty(splits, f"AVA in {image_dir} with test list {resolve(test_list)}")
    raise ValueError(f"dataset must be 'synthetic', 'ava_sample' or 'ava', got {dataset!r}")


def _non_empty(splits: dict[str, list[str]], what: str) -> dict[str, list[str]]:
    """The splits, or ValueError naming the set when one of train/val/test has no image."""
    empty = [name for name in ("train", "val", "test") if not splits.get(name)]
    if empty:
        sizes = ", ".join(f"{name} {len(ids)}" for name, ids in splits.items())
        raise ValueError(f"{what}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty "
                         f"({sizes}); training and evaluation need images in each")
    return splits
