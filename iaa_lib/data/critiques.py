"""Real DPChallenge critiques of AVA images joined with their true vote histograms, and a leak-free split.

The critique set: every id of ``data/labels/dpc_impression_and_subject.json`` that has a vote histogram in
``data/labels/ava_votes.csv.gz`` (10,200 of 13,432 ids). AVA's official test list (``generic_test.jpgl``) is not
among the shipped files, so the split is seeded, not official. The leak guard works on ids and on text: some
critiques were pasted under several images (e.g. "I already voted, now back for comments. I gave you a 9 ..."),
so images that share a critique (after lower-casing and collapsing whitespace) are kept in the same split.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from iaa_lib.data.labels import read_ava_votes
from iaa_lib.data.sample import DPC_COMMENTS_FILE, load_dpc_comments
from iaa_lib.data.splits import SPLIT_NAMES, SplitLeakError, assert_disjoint
from iaa_lib.paths import DATA_DIR

AVA_VOTES_FILE = DATA_DIR / "labels" / "ava_votes.csv.gz"
CRITIQUE_SPLIT_FRACTIONS = {"test": 0.2, "val": 0.1}
_MAX_LISTED = 3


def normalise_critique(text: str) -> str:
    """The form under which two critiques count as identical: lower case, runs of whitespace -> one space, trimmed."""
    return " ".join(text.lower().split())


def join_critiques(comments: Mapping[str, Sequence[str]], votes: pd.DataFrame) -> pd.DataFrame:
    """Label frame rows of the ids that have both critiques and votes (sorted by id), plus `comments` (list of str),
    `n_comments` and `n_words` (whitespace words of all the image's critiques)."""
    by_id = votes.assign(image_id=votes["image_id"].astype(str)).set_index("image_id")
    ids = sorted((str(i) for i in comments if str(i) in by_id.index), key=lambda i: (len(i), i))
    if not ids:
        raise ValueError("join_critiques: no image id has both critiques and votes")
    frame = by_id.loc[ids].reset_index()
    texts = [list(comments[i]) for i in ids]
    frame["comments"] = texts
    frame["n_comments"] = [len(t) for t in texts]
    frame["n_words"] = [sum(len(c.split()) for c in t) for t in texts]
    return frame


def load_critique_set(comments_path: str | os.PathLike | None = None,
                      votes_path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The shipped critiques joined with the shipped AVA votes (10,200 images; see join_critiques for the columns)."""
    comments = load_dpc_comments(comments_path if comments_path is not None else DPC_COMMENTS_FILE)
    return join_critiques(comments, read_ava_votes(votes_path if votes_path is not None else AVA_VOTES_FILE))


def _shared_text_groups(frame: pd.DataFrame) -> list[list[str]]:
    """Connected groups of image ids linked by an identical (normalised) critique, each sorted, in id order."""
    ids = frame["image_id"].astype(str).tolist()
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_owner: dict[str, int] = {}
    for row, texts in enumerate(frame["comments"]):
        for text in texts:
            owner = first_owner.setdefault(normalise_critique(text), row)
            parent[root(row)] = root(owner)
    groups: dict[int, list[str]] = {}
    for row, image_id in enumerate(ids):
        groups.setdefault(root(row), []).append(image_id)
    return list(groups.values())


def critique_split(frame: pd.DataFrame, seed: int = 0,
                   fractions: Mapping[str, float] = CRITIQUE_SPLIT_FRACTIONS) -> dict[str, list[str]]:
    """Seeded train/val/test split of a critique frame by groups of images sharing a critique text.

    The groups are shuffled with numpy.random.default_rng(seed); test takes groups until it holds at least
    fractions["test"] of the images, then val up to fractions["val"], train the rest. Each list is sorted.
    """
    test, val = fractions.get("test", 0.0), fractions.get("val", 0.0)
    if set(fractions) - {"test", "val"} or not (test > 0 and val >= 0 and test + val < 1):
        raise ValueError(f"fractions must give test (> 0) and optionally val, summing below 1; got {dict(fractions)}")
    groups = sorted(_shared_text_groups(frame), key=lambda g: (len(g[0]), g[0]))
    order = np.random.default_rng(seed).permutation(len(groups))
    n = len(frame)
    targets = [("test", test * n), ("val", val * n)]
    splits: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    stage = 0
    for index in order:
        while stage < len(targets) and len(splits[targets[stage][0]]) >= targets[stage][1]:
            stage += 1
        splits[targets[stage][0] if stage < len(targets) else "train"].extend(groups[index])
    splits = {name: sorted(ids, key=lambda i: (len(i), i)) for name, ids in splits.items()}
    assert_no_shared_critiques(frame, splits)
    return splits


def assert_no_shared_critiques(frame: pd.DataFrame, splits: Mapping[str, Sequence[str]]) -> None:
    """SplitLeakError when two splits share an image id or an identical (normalised) critique text."""
    assert_disjoint(splits)
    comments = dict(zip(frame["image_id"].astype(str), frame["comments"]))
    owner: dict[str, tuple[str, str]] = {}
    problems = []
    for name, ids in splits.items():
        for image_id in ids:
            for text in comments[str(image_id)]:
                key = normalise_critique(text)
                other = owner.setdefault(key, (name, str(image_id)))
                if other[0] != name:
                    problems.append(f"{other[1]} ({other[0]}) and {image_id} ({name}): {key[:60]!r}")
    if problems:
        shown = "; ".join(problems[:_MAX_LISTED])
        raise SplitLeakError(f"split leak: {len(problems)} critique(s) on both sides of a split, e.g. {shown}")


def _score_summary(mos: np.ndarray) -> dict[str, float]:
    q05, q50, q95 = np.quantile(mos, [0.05, 0.5, 0.95])
    return {"mos_mean": float(mos.mean()), "mos_std": float(mos.std()), "mos_q05": q05, "mos_median": q50,
            "mos_q95": q95, "share_high": float(np.mean(mos > 5.0))}


def critique_summary(frame: pd.DataFrame, splits: Mapping[str, Sequence[str]], full_ava: pd.DataFrame) -> pd.DataFrame:
    """One row per split, the whole critique set and full AVA: images, critiques, words per image (median, 90th
    percentile) and the mean-score distribution (mean, std, 5/50/95 % quantiles, share with mos > 5)."""
    indexed = frame.set_index(frame["image_id"].astype(str))
    parts = {**{name: indexed.loc[list(ids)] for name, ids in splits.items()}, "all critiqued": indexed}
    rows = {}
    for name, part in parts.items():
        rows[name] = {"n_images": len(part), "n_critiques": int(part["n_comments"].sum()),
                      "words_median": float(part["n_words"].median()),
                      "words_p90": float(part["n_words"].quantile(0.9)),
                      **_score_summary(part["mos"].to_numpy(np.float64))}
    rows["full AVA"] = {"n_images": len(full_ava), "n_critiques": np.nan, "words_median": np.nan,
                        "words_p90": np.nan, **_score_summary(full_ava["mos"].to_numpy(np.float64))}
    return pd.DataFrame(rows).T
