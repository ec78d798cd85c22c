"""Train/val/test splits by image id: seeded random splits, id-list splits, split files and the leak guard."""
from __future__ import annotations

import math
import os
import warnings
from itertools import combinations
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from iaa_lib.data.images import content_hash

SPLIT_NAMES = ("train", "val", "test")
_MAX_LISTED = 5


class SplitLeakError(ValueError):
    """Two splits share an image (same id, or byte-identical image files under different ids)."""


def _examples(values: Iterable[object]) -> str:
    """Up to a handful of values (sorted) as text, with a count of the rest."""
    values = sorted(values, key=str)
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
    return shown + (f" ... ({len(values)} in total)" if len(values) > _MAX_LISTED else "")


def _unique_ids(ids: Iterable[object], what: str) -> list[str]:
    """Ids as str; ValueError naming duplicates."""
    text = [str(i) for i in ids]
    seen: set[str] = set()
    duplicated = {i for i in text if i in seen or seen.add(i)}
    if duplicated:
        raise ValueError(f"{what}: duplicate ids {_examples(duplicated)}")
    return text


def random_split(ids: Iterable[object], ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[str]]:
    """Seeded random split into train/val/test (3 ratios) or train/test (2 ratios); ratios must sum to 1.

    Deterministic for a given seed and id *set* (ids are sorted before shuffling, so input order does not
    matter). Split sizes come from rounding the cumulative ratios times the number of ids; each list is sorted.
    """
    ids = sorted(_unique_ids(ids, "random_split(ids)"))
    ratios = [float(r) for r in ratios]
    if len(ratios) not in (2, 3) or min(ratios) < 0 or not math.isclose(sum(ratios), 1.0, abs_tol=1e-9):
        raise ValueError(f"ratios must be 2 or 3 non-negative fractions summing to 1 (train, [val,] test), got {ratios}")
    names = SPLIT_NAMES if len(ratios) == 3 else ("train", "test")
    order = np.random.default_rng(seed).permutation(len(ids))
    bounds = np.rint(np.cumsum(ratios) * len(ids)).astype(int)
    starts = np.concatenate([[0], bounds[:-1]])
    return {name: sorted(ids[i] for i in order[a:b]) for name, a, b in zip(names, starts, bounds)}


def split_from_id_lists(
    all_ids: Iterable[object],
    test_ids: Iterable[object],
    val_fraction: float = 0.05,
    seed: int = 0,
    unknown: str = "raise",
) -> dict[str, list[str]]:
    """Official-test-list style split: test = the listed ids, val = a seeded `val_fraction` of the rest, train = the rest.

    Listed ids absent from all_ids raise ValueError naming them (unknown="raise"), or are dropped with a
    warning giving their count and examples (unknown="drop", e.g. AVA's list vs a cleaned label set).
    """
    if unknown not in ("raise", "drop"):
        raise ValueError(f"unknown must be 'raise' or 'drop', got {unknown!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    all_ids = _unique_ids(all_ids, "split_from_id_lists(all_ids)")
    test_ids = _unique_ids(test_ids, "split_from_id_lists(test_ids)")
    known = set(all_ids)
    missing = [i for i in test_ids if i not in known]
    if missing and unknown == "raise":
        raise ValueError(
            f"{len(missing)} of {len(test_ids)} test ids are not in all_ids, e.g. {_examples(missing)}; "
            "pass unknown='drop' to drop them with a warning"
        )
    if missing:
        warnings.warn(f"dropped {len(missing)} of {len(test_ids)} test ids not in all_ids, e.g. {_examples(missing)}", stacklevel=2)
    test = set(test_ids) & known
    rest = sorted(i for i in all_ids if i not in test)
    n_val = int(round(val_fraction * len(rest)))
    chosen = set(np.random.default_rng(seed).permutation(len(rest))[:n_val].tolist())
    return {
        "train": [i for k, i in enumerate(rest) if k not in chosen],
        "val": [i for k, i in enumerate(rest) if k in chosen],
        "test": sorted(test),
    }


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Ids from a text file with one id per line (e.g. AVA's .jpgl lists); blank lines skipped, '.jpg' stripped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"id list not found: {path}")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = [i[: -len(".jpg")] if i.lower().endswith(".jpg") else i for i in ids]
    if not ids:
        raise ValueError(f"{path}: empty id list")
    bad = [i for i in ids if any(c.isspace() for c in i) or "," in i]
    if bad:
        raise ValueError(f"{path}: expected one id per line, found lines with several fields: {_examples(bad)}")
    return _unique_ids(ids, str(path))


def assert_disjoint(splits: Mapping[str, Sequence[str]], image_paths: Mapping[str, str | os.PathLike] | None = None) -> None:
    """Raise SplitLeakError when any two splits share an id, or (with image_paths: id -> file) a byte-identical image.

    Content hashes are sha256 of the file bytes: re-encoded or resized near-duplicates are not detected.
    """
    members = {name: set(_unique_ids(ids, f"split '{name}'")) for name, ids in splits.items()}
    problems = []
    for (a, ids_a), (b, ids_b) in combinations(members.items(), 2):
        shared = ids_a & ids_b
        if shared:
            problems.append(f"'{a}' and '{b}' share {len(shared)} id(s): {_examples(shared)}")
    if image_paths is not None:
        unmapped = set().union(*members.values()) - set(map(str, image_paths))
        if unmapped:
            raise ValueError(f"assert_disjoint: image_paths has no file for ids {_examples(unmapped)}")
        paths = {str(k): v for k, v in image_paths.items()}
        owners: dict[str, set[tuple[str, str]]] = {}
        for name, ids in members.items():
            for image_id in ids:
                owners.setdefault(content_hash(paths[image_id]), set()).add((name, image_id))
        for digest, owned in owners.items():
            if len({name for name, _ in owned}) > 1 and len({i for _, i in owned}) > 1:
                listing = ", ".join(f"{i} ({name})" for name, i in sorted(owned))
                problems.append(f"identical image file (sha256 {digest[:12]}) under ids {listing}")
    if problems:
        raise SplitLeakError("split leak: " + "; ".join(problems))


def split_counts(splits: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Count report: one row per split with n_images and fraction of the total."""
    counts = pd.DataFrame({"split": list(splits), "n_images": [len(v) for v in splits.values()]})
    total = counts["n_images"].sum()
    counts["fraction"] = counts["n_images"] / total if total else 0.0
    return counts


def apply_split(frame: pd.DataFrame, splits: Mapping[str, Sequence[str]]) -> dict[str, pd.DataFrame]:
    """Label frame -> {split: rows of that split, in the split's id order}; ValueError naming ids not in the frame."""
    if "image_id" not in frame.columns:
        raise ValueError(f"apply_split: frame has no 'image_id' column; columns are {list(frame.columns)}")
    indexed = frame.assign(image_id=frame["image_id"].astype(str)).set_index("image_id", drop=False)
    if indexed.index.has_duplicates:
        raise ValueError(f"apply_split: frame has duplicate image ids {_examples(indexed.index[indexed.index.duplicated()].unique())}")
    result = {}
    for name, ids in splits.items():
        ids = _unique_ids(ids, f"split '{name}'")
        unknown = [i for i in ids if i not in indexed.index]
        if unknown:
            raise ValueError(f"apply_split: split '{name}' has {len(unknown)} id(s) not in the label frame: {_examples(unknown)}")
        result[name] = indexed.loc[ids].reset_index(drop=True)
    return result


def read_splits_csv(path: str | os.PathLike) -> dict[str, list[str]]:
    """Splits from a CSV with columns image_id,split -> {split: ids in file order}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{path}: empty split file") from error
    missing = [c for c in ("image_id", "split") if c not in table.columns]
    if missing or table.empty:
        raise ValueError(f"{path}: need columns image_id,split and at least one row; found {list(table.columns)}, {len(table)} rows")
    _unique_ids(table["image_id"], str(path))
    return {name: group["image_id"].tolist() for name, group in table.groupby("split", sort=False)}


def write_splits_csv(splits: Mapping[str, Sequence[str]], path: str | os.PathLike) -> Path:
    """Write splits as CSV image_id,split (splits in the given order, ids in list order, '\\n' line ends)."""
    assert_disjoint(splits)
    path = Path(path)
    rows = [f"{image_id},{name}" for name, ids in splits.items() for image_id in ids]
    path.write_text("image_id,split\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path
