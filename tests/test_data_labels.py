"""Label readers: hand-worked golden values, the shipped label files, malformed inputs."""
from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest

from iaa_lib.data.labels import (
    AADB_ATTRIBUTES,
    DIST_COLUMNS,
    VOTE_COLUMNS,
    add_binary_label,
    check_label_values,
    read_aadb,
    read_ava_votes,
    read_baid,
    read_label_file,
    read_ratings,
    read_tad66k,
    votes_to_frame,
)
from iaa_lib.paths import DATA_DIR

LABELS = DATA_DIR / "labels"
HEADER = "image_id," + ",".join(VOTE_COLUMNS)


def _votes_table(rows: dict[str, list[float]]) -> pd.DataFrame:
    """Vote table with image_id and votes_1..10 from {id: 10 counts}."""
    return pd.DataFrame([[i, *v] for i, v in rows.items()], columns=["image_id", *VOTE_COLUMNS])


def test_votes_to_frame_matches_hand_worked_values():
    # 1 vote for 5 and 3 votes for 7: mean 6.5, var = .25*1.5^2 + .75*.5^2 = .75.
    # 1 vote for 1 and 1 for 10: mean 5.5, std 4.5.
    frame = votes_to_frame(_votes_table({"a": [0, 0, 0, 0, 1, 0, 3, 0, 0, 0], "b": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]}))
    assert list(frame.columns[:14]) == ["image_id", "mos", *DIST_COLUMNS, "std", "n_votes"]
    assert frame["mos"].tolist() == pytest.approx([6.5, 5.5])
    assert frame["std"].tolist() == pytest.approx([math.sqrt(0.75), 4.5])
    assert frame["n_votes"].tolist() == [4, 2]
    assert frame.loc[0, ["dist_5", "dist_7"]].tolist() == pytest.approx([0.25, 0.75])
    assert frame[DIST_COLUMNS].sum(axis=1).to_numpy() == pytest.approx([1.0, 1.0])
    assert frame["mos"].dtype == np.float64 and frame["n_votes"].dtype == np.int64
    assert frame["image_id"].map(type).eq(str).all()


@pytest.fixture(scope="module")
def ava_votes() -> pd.DataFrame:
    return read_ava_votes(LABELS / "ava_votes.csv.gz")


def test_real_ava_votes_gz_agrees_with_its_own_mean_column(ava_votes):
    frame = ava_votes
    assert len(frame) == 255_502 and frame["image_id"].is_unique
    assert frame["n_votes"].min() == 78 and frame["n_votes"].max() == 549
    raw = pd.read_csv(LABELS / "ava_votes.csv.gz")  # independent: the source's own mean column
    assert np.abs(frame["mos"].to_numpy() - raw["mean"].to_numpy()).max() < 1e-9
    first = frame.iloc[0]  # 953417: votes 0,0,0,5,32,50,23,10,3,1 (124 votes)
    assert first["image_id"] == "953417" and first["n_votes"] == 124
    assert first["mos"] == pytest.approx((4 * 5 + 5 * 32 + 6 * 50 + 7 * 23 + 8 * 10 + 9 * 3 + 10) / 124)


def test_sample_labels_agree_with_the_full_vote_table(ava_votes):
    sample = read_ava_votes(DATA_DIR / "ava_sample" / "labels.csv").set_index("image_id")
    full = ava_votes.set_index("image_id")
    shared = sample.index.intersection(full.index)
    assert len(shared) == 74  # the other 3 histograms come from idealo / the AVA.txt excerpt (data/README.md)
    assert np.array_equal(full.loc[shared, DIST_COLUMNS].to_numpy(), sample.loc[shared, DIST_COLUMNS].to_numpy())


def test_plain_csv_gzip_csv_and_ava_txt_read_identically(tmp_path):
    table = pd.read_csv(DATA_DIR / "ava_sample" / "labels.csv", dtype={"image_id": str}).head(5)
    plain, zipped, ava_txt = tmp_path / "v.csv", tmp_path / "v.csv.gz", tmp_path / "AVA.txt"
    table[["image_id", *VOTE_COLUMNS]].to_csv(plain, index=False)
    with gzip.open(zipped, "wt") as handle:
        table[["image_id", *VOTE_COLUMNS]].to_csv(handle, index=False)
    lines = [f"{k + 1} {r.image_id} " + " ".join(str(getattr(r, c)) for c in VOTE_COLUMNS) + " 15 21 1004"
             for k, r in enumerate(table.itertuples())]
    ava_txt.write_text("\n".join(lines) + "\n")
    expected = read_ava_votes(plain)
    pd.testing.assert_frame_equal(read_ava_votes(zipped), expected)
    from_txt = read_ava_votes(ava_txt)
    pd.testing.assert_frame_equal(from_txt[expected.columns], expected)
    assert from_txt["challenge_id"].tolist() == ["1004"] * 5
    assert from_txt["mos"].tolist() == pytest.approx(table["mean_score"].tolist(), abs=1e-6)


def test_eat_style_score_columns_are_votes(tmp_path):
    path = tmp_path / "eat.csv"
    path.write_text("image_id," + ",".join(f"score{i}" for i in range(2, 12)) + ",tag1,tag2,tag3\n7,0,0,0,0,2,0,2,0,0,0,1,2,3\n")
    frame = read_ava_votes(path)
    assert frame.loc[0, "mos"] == pytest.approx(6.0) and frame.loc[0, "n_votes"] == 4


MALFORMED = {
    "empty": ("", "empty label file"),
    "header_only": (HEADER + "\n", "no data rows"),
    "missing_column": ("image_id," + ",".join(VOTE_COLUMNS[:9]) + "\n1,1,1,1,1,1,1,1,1,1\n", "missing column"),
    "nan_vote": (HEADER + "\n11,1,2,,4,5,6,7,8,9,10\n", "NaN"),
    "non_numeric_vote": (HEADER + "\n11,1,2,x,4,5,6,7,8,9,10\n", "non-numeric"),
    "negative_vote": (HEADER + "\n10,1,1,1,1,1,1,1,1,1,1\n11,1,2,-3,4,5,6,7,8,9,10\n", "negative"),
    "zero_votes": (HEADER + "\n11,0,0,0,0,0,0,0,0,0,0\n", "zero total votes"),
    "duplicate_ids": (HEADER + "\n11,1,1,1,1,1,1,1,1,1,1\n11,2,2,2,2,2,2,2,2,2,2\n", "duplicate image ids 11"),
    "wrong_mean": (HEADER + ",mean\n11,1,0,0,0,0,0,0,0,0,1,7.0\n", "disagrees"),
    "ava_txt_12_columns": ("1 11 1 1 1 1 1 1 1 1 1 1\n", "15 columns"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_vote_files_raise_naming_file_and_row(tmp_path, case):
    text, message = MALFORMED[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_ava_votes(path)
    assert str(path) in str(error.value)
    if case in ("nan_vote", "non_numeric_vote", "negative_vote", "zero_votes", "wrong_mean"):
        assert "image_id 11" in str(error.value)


def test_missing_label_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_ava_votes(tmp_path / "nope.csv")


def test_real_tad66k_and_baid_files():
    train, test = read_tad66k(LABELS / "tad66k_train.csv"), read_tad66k(LABELS / "tad66k_test.csv")
    assert (len(train), len(test)) == (52_248, 14_079)
    assert pd.concat([train, test])["mos"].agg(["min", "max"]).tolist() == pytest.approx([1.13, 9.46])
    assert not set(train["image_id"]) & set(test["image_id"])
    assert train["file_name"].iloc[0] == train["image_id"].iloc[0] + ".jpg"
    baid = {name: read_baid(LABELS / f"baid_{name}.csv") for name in ("train", "val", "test")}
    assert [len(f) for f in baid.values()] == [50_737, 3_200, 6_400]
    scores = pd.concat(baid.values())["mos"]
    assert scores.min() == pytest.approx(2.70, abs=0.01) and scores.max() == pytest.approx(10.0, abs=1e-3)


def test_real_aadb_drops_only_identical_repeats_with_a_warning():
    with pytest.warns(UserWarning, match="dropped 127 exact duplicate"):
        frame = read_aadb(LABELS / "aadb.csv")
    assert len(frame) == 9_958 - 127 and frame["image_id"].is_unique
    assert list(frame.columns) == ["image_id", "mos", "file_name", *AADB_ATTRIBUTES]
    assert frame["mos"].between(0, 1).all() and frame[AADB_ATTRIBUTES].abs().le(1).all().all()


@pytest.mark.parametrize(
    "reader, text, message",
    [
        (read_tad66k, "image,score\na.jpg,5.5\nb.jpg,abc\n", "non-numeric"),
        (read_tad66k, "image,score\na.jpg,0.5\n", "outside the native range"),
        (read_baid, "image,score\na.jpg,11\n", "outside the native range"),
        (read_baid, "image,score\na.jpg,5\na.jpg,6\n", "duplicate image ids a.jpg"),
        (read_baid, "picture,score\na.jpg,5\n", "missing column"),
        (read_baid, "image,score\n", "no data rows"),
        (read_aadb, "dis_img_path,score," + ",".join(AADB_ATTRIBUTES) + "\nx/a.jpg,0.5" + ",0" * 11
         + "\nx/a.jpg,0.7" + ",0" * 11 + "\n", "duplicate image ids x/a.jpg"),
    ],
)
def test_malformed_score_files_raise_naming_file(tmp_path, reader, text, message):
    path = tmp_path / "scores.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        reader(path)
    assert str(path) in str(error.value)


def test_read_ratings_from_csv_and_dataframe(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("path,score\nphotos/a.jpg,3\n/abs/b.png,4.5\n")
    frame = read_ratings(csv)
    assert frame["image_id"].tolist() == ["a", "b"] and frame["mos"].tolist() == [3.0, 4.5]
    assert frame["path"].tolist() == [str(tmp_path / "photos" / "a.jpg"), "/abs/b.png"]
    table = pd.DataFrame({"file": ["a.jpg"], "rating": [7], "key": ["k1"]})
    frame = read_ratings(table, path_col="file", score_col="rating", image_dir=tmp_path, id_col="key")
    assert frame.loc[0, ["image_id", "path"]].tolist() == ["k1", str(tmp_path / "a.jpg")]
    with pytest.raises(ValueError, match="relative image path.*image_dir"):
        read_ratings(table, path_col="file", score_col="rating")
    with pytest.raises(ValueError, match="duplicate image ids a.*id_col"):
        read_ratings(pd.DataFrame({"path": ["/x/a.jpg", "/y/a.jpg"], "score": [1, 2]}))
    with pytest.raises(ValueError, match="non-numeric"):
        read_ratings(pd.DataFrame({"path": ["/x/a.jpg"], "score": ["good"]}))


def test_add_binary_label_rules_differ_only_at_the_threshold():
    frame = pd.DataFrame({"image_id": ["a", "b", "c"], "mos": [4.99, 5.0, 5.01]})
    assert add_binary_label(frame)["label"].tolist() == [0, 0, 1]
    assert add_binary_label(frame, high_if="ge")["label"].tolist() == [0, 1, 1]
    assert add_binary_label(frame, threshold=0.5)["label"].tolist() == [1, 1, 1]
    assert "label" not in frame.columns
    with pytest.raises(ValueError, match="high_if"):
        add_binary_label(frame, high_if="gte")


def test_dpc_comment_ids_with_vote_histograms(ava_votes):
    from iaa_lib.data.sample import load_dpc_comments

    # Contrary to ../shared/data/README.md, 3,232 DPC-Captions ids are not in the AVA vote table.
    comment_ids = set(load_dpc_comments())
    assert len(comment_ids & set(ava_votes["image_id"])) == 10_200 and len(comment_ids) == 13_432


def _label_frame(n: int = 4) -> pd.DataFrame:
    """A valid label frame: ids a0.., dist from votes, mos their mean."""
    rng = np.random.default_rng(3)
    return votes_to_frame(_votes_table({f"a{i}": list(rng.integers(1, 30, 10)) for i in range(n)}))


@pytest.mark.parametrize("column, value, message", [
    ("dist_2", np.nan, "non-numeric, NaN or infinite dist values"), ("dist_2", -0.2, "negative dist values"),
    (None, 0.0, "all-zero dist rows"),
    ("mos", 9.9, "mos differs from the mean of its dist"), ("mos", np.nan, "non-numeric, NaN or infinite mos"),
])
def test_check_label_values_names_source_row_and_id(column, value, message):
    frame = _label_frame()
    if column is None:
        frame.loc[2, DIST_COLUMNS] = value
    else:
        frame.loc[2, column] = value
    with pytest.raises(ValueError, match=rf"labels\.csv: {message}.* at data row 3 \(image_id a2\)"):
        check_label_values(frame, "labels.csv")


def test_check_label_values_refuses_raw_counts_unless_asked_and_leaves_good_rows_untouched():
    frame = _label_frame()
    counts = frame[DIST_COLUMNS].to_numpy() * frame["n_votes"].to_numpy()[:, None]
    raw = frame.assign(**{c: counts[:, k] for k, c in enumerate(DIST_COLUMNS)})
    with pytest.raises(ValueError, match=r"do not sum to 1 \(e\.g\. \d+\).*raw vote counts"):
        check_label_values(raw, "raw.csv")
    fixed = check_label_values(raw, "raw.csv", normalise_dist=True)
    np.testing.assert_allclose(fixed[DIST_COLUMNS].to_numpy(), frame[DIST_COLUMNS].to_numpy(), atol=1e-12)
    checked = check_label_values(frame, "good.csv")
    assert checked[DIST_COLUMNS].to_numpy().tobytes() == frame[DIST_COLUMNS].to_numpy().tobytes()  # bit for bit


def test_read_label_file_reads_every_training_format(tmp_path):
    votes = _votes_table({"1": [0, 1, 2, 3, 4, 5, 4, 3, 2, 1], "2": [1] * 10})
    votes.to_csv(tmp_path / "votes.csv", index=False)
    (tmp_path / "AVA.txt").write_text("".join(f"{k + 1} {row.image_id} " + " ".join(str(int(v)) for v in row[VOTE_COLUMNS])
                                              + " 0 0 0\n" for k, row in votes.iterrows()))
    from_votes, from_txt = read_label_file(tmp_path / "votes.csv"), read_label_file(tmp_path / "AVA.txt")
    pd.testing.assert_frame_equal(from_votes[["image_id", "mos", *DIST_COLUMNS]], from_txt[["image_id", "mos", *DIST_COLUMNS]])
    assert from_votes["mos"].tolist() == pytest.approx([sum(k * v for k, v in zip(range(1, 11), votes.iloc[0, 1:])) / 25, 5.5])
    from_votes[["image_id", "mos", *DIST_COLUMNS]].to_csv(tmp_path / "frame.csv", index=False)
    pd.testing.assert_frame_equal(read_label_file(tmp_path / "frame.csv")[["image_id", "mos"]], from_votes[["image_id", "mos"]])
    pd.DataFrame({"path": ["x/1.jpg"], "score": [3.0]}).to_csv(tmp_path / "ratings.csv", index=False)
    assert read_label_file(tmp_path / "ratings.csv", image_dir=tmp_path)["path"].tolist() == [str(tmp_path / "x/1.jpg")]
    pd.DataFrame({"name": ["1"], "value": [3.0]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match=r"other\.csv: needs columns"):
        read_label_file(tmp_path / "other.csv")
