"""A miniature AVA copy in the original file formats, built from the 77 embedded photos, with deliberate defects.

``build_mini_ava(out_dir)`` writes ``AVA.txt``, ``images/<id>.jpg`` and ``aesthetics_image_lists/`` as AVA is
distributed, so the data check and the full profiles can run on a real layout without the 255k-image download:

* ``AVA.txt``: one 15-column row per embedded photo with its true vote histogram (from
  ``data/ava_sample/labels.csv``, which agrees with ``data/labels/ava_votes.csv.gz`` where both have the id), in
  AVA's original row order (ids 953619, 953958, 954184 are AVA's rows 1-3; the rest follow their order in
  ``ava_votes.csv.gz``). The index column is the row's number in this file (AVA's own index is a running count
  that the shipped labels do not keep). Semantic tags and challenge ids are not shipped with the book, so they
  are written as 0, the value AVA uses for a missing tag.
* ``aesthetics_image_lists/generic_test.jpgl``: the sample's 15 test ids; ``generic_ls_train.jpgl``: the other ids.

Deliberate defects (each recorded in the returned ``MiniAva``): three rows whose image is missing, two images that
do not decode (a truncated JPEG, a text file), a train image whose file holds a test image's bytes (a content leak),
a test id also listed in ``generic_ls_train.jpgl`` (an id leak), one row repeated verbatim, and one row cut short
(14 fields) whose image is therefore in the folder without a readable label row.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from iaa_lib.data.labels import VOTE_COLUMNS
from iaa_lib.data.sample import SAMPLE_DIR, sample_splits
from iaa_lib.paths import DATA_DIR

AVA_FIRST_ROWS = ("953619", "953958", "954184")  # AVA.txt rows 1-3, absent from ava_votes.csv.gz
TRUNCATED_FRACTION = 0.4  # the truncated JPEG keeps this share of its bytes


@dataclass(frozen=True)
class MiniAva:
    """Where the miniature copy is and which defects it holds (ids as str)."""

    root: Path
    ids: tuple[str, ...]  # ids with a readable AVA.txt row, in file order
    test_ids: tuple[str, ...]  # generic_test.jpgl
    missing: tuple[str, ...]  # rows without an image file
    corrupt: tuple[str, ...]  # image files that do not decode
    content_leak: tuple[str, str]  # (train id, test id): the train file is a byte copy of the test image
    id_leak: str  # test id that generic_ls_train.jpgl also lists
    repeated_row: str  # id whose row appears twice, identical
    cut_row: str  # id whose only row has 14 fields (its image is unlabelled)
    cut_line: int  # that row's line number in AVA.txt


def _ava_order(ids: list[str]) -> list[str]:
    """Ids in AVA.txt's original order: its first three rows, then the order of ava_votes.csv.gz."""
    votes = pd.read_csv(DATA_DIR / "labels" / "ava_votes.csv.gz", usecols=["image_id"], dtype=str)
    position = {image_id: k for k, image_id in enumerate(votes["image_id"])}
    first = [i for i in AVA_FIRST_ROWS if i in ids]
    rest = sorted((i for i in ids if i not in AVA_FIRST_ROWS), key=lambda i: position[i])
    return first + rest


def _ava_line(index: int, image_id: str, votes: list[int]) -> str:
    """One AVA.txt line: index, id, 10 vote counts, semantic tags 0 0, challenge id 0."""
    return " ".join(str(v) for v in (index, image_id, *votes, 0, 0, 0))


def build_mini_ava(out_dir: str | os.PathLike, sample_dir: str | os.PathLike | None = None) -> MiniAva:
    """Write the miniature AVA (module docstring) into out_dir (created; must be empty) and describe its defects."""
    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; build the miniature AVA into a new folder")
    sample = Path(sample_dir) if sample_dir is not None else SAMPLE_DIR
    labels = pd.read_csv(sample / "labels.csv", dtype={"image_id": str}).set_index("image_id")
    splits = sample_splits(sample_dir)
    test = sorted(splits["test"])
    train = sorted(i for name, ids in splits.items() if name != "test" for i in ids)
    missing = (train[0], train[1], test[0])
    corrupt = (train[2], test[1])
    content_leak, id_leak, repeated, cut = (train[3], test[2]), test[3], train[4], train[5]

    lines: list[str] = []
    cut_line = 0
    for image_id in _ava_order(list(labels.index)):
        votes = [int(v) for v in labels.loc[image_id, VOTE_COLUMNS]]
        line = _ava_line(len(lines) + 1, image_id, votes)
        if image_id == cut:
            line, cut_line = line.rsplit(" ", 1)[0], len(lines) + 1
        lines.append(line)
        if image_id == repeated:
            lines.append(_ava_line(len(lines) + 1, image_id, votes))
    (root / "aesthetics_image_lists").mkdir(parents=True)
    (root / "AVA.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "aesthetics_image_lists" / "generic_test.jpgl").write_text("".join(f"{i}\n" for i in test))
    (root / "aesthetics_image_lists" / "generic_ls_train.jpgl").write_text("".join(f"{i}\n" for i in [*train, id_leak]))

    images = root / "images"
    images.mkdir()
    for image_id in labels.index:
        if image_id not in missing:
            shutil.copyfile(sample / "images" / f"{image_id}.jpg", images / f"{image_id}.jpg")
    jpeg = (images / f"{corrupt[0]}.jpg").read_bytes()
    (images / f"{corrupt[0]}.jpg").write_bytes(jpeg[: int(len(jpeg) * TRUNCATED_FRACTION)])
    (images / f"{corrupt[1]}.jpg").write_text("not an image: a text file saved under a .jpg name\n")
    shutil.copyfile(images / f"{content_leak[1]}.jpg", images / f"{content_leak[0]}.jpg")
    readable_ids = tuple(dict.fromkeys(i for i in _ava_order(list(labels.index)) if i != cut))
    return MiniAva(root, readable_ids, tuple(test), missing, corrupt, content_leak, id_leak, repeated, cut, cut_line)
