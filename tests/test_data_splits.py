"""Splits: seeded random splits, id lists, the leak guard (ids and image bytes), split files, the sample split."""
from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from iaa_lib.data.sample import load_ava_sample, make_sample_splits, sample_splits
from iaa_lib.data.splits import (
    SplitLeakError,
    apply_split,
    assert_disjoint,
    random_split,
    read_id_list,
    read_splits_csv,
    split_counts,
    split_from_id_lists,
    write_splits_csv,
)
from iaa_lib.paths import DATA_DIR

IDS = [str(i) for i in range(1000, 1100)]
# sha256 of data/ava_sample/splits.csv; change only together with a documented regeneration.
SAMPLE_SPLITS_SHA256 = "ca3ae7bf10c6af5c4d311f80ba85018776bee1195f4db066c71e02fc3411643e"


def test_random_split_is_deterministic_sized_and_a_partition():
    splits = random_split(IDS, ratios=(0.7, 0.2, 0.1), seed=3)
    assert splits == random_split(list(reversed(IDS)), ratios=(0.7, 0.2, 0.1), seed=3)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [70, 20, 10]
    assert sorted(sum(splits.values(), [])) == sorted(IDS)
    assert splits != random_split(IDS, ratios=(0.7, 0.2, 0.1), seed=4)
    assert list(random_split(IDS, ratios=(0.5, 0.5))) == ["train", "test"]


@pytest.mark.parametrize("ratios", [(0.8, 0.1), (0.5, 0.6, -0.1), (1.0,), (0.25, 0.25, 0.25, 0.25)])
def test_random_split_rejects_bad_ratios(ratios):
    with pytest.raises(ValueError, match="ratios"):
        random_split(IDS, ratios=ratios)


def test_random_split_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="duplicate ids 1000"):
        random_split(IDS + ["1000"])


def test_split_from_id_lists_official_test_style():
    splits = split_from_id_lists(IDS, IDS[:20], val_fraction=0.1, seed=0)
    assert splits["test"] == IDS[:20] and len(splits["val"]) == 8 and len(splits["train"]) == 72
    assert splits == split_from_id_lists(IDS, IDS[:20], val_fraction=0.1, seed=0)
    assert_disjoint(splits)
    with pytest.raises(ValueError, match="2 of 21 test ids are not in all_ids, e.g. 77, 88"):
        split_from_id_lists(IDS, IDS[:19] + ["77", "88"])
    with pytest.warns(UserWarning, match="dropped 2 of 21"):
        dropped = split_from_id_lists(IDS, IDS[:19] + ["77", "88"], unknown="drop")
    assert dropped["test"] == IDS[:19]


def test_read_id_list_strips_jpg_and_blank_lines(tmp_path):
    path = tmp_path / "generic_test.jpgl"
    path.write_text("953417.jpg\n953777\n\n  954184.JPG \n")
    assert read_id_list(path) == ["953417", "953777", "954184"]
    for text, message in [("", "empty id list"), ("1 2\n", "one id per line"), ("5\n5.jpg\n", "duplicate ids 5")]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_id_list(path)
    with pytest.raises(FileNotFoundError, match="absent.txt"):
        read_id_list(tmp_path / "absent.txt")


def test_leak_guard_catches_shared_ids():
    assert_disjoint({"train": ["a", "b"], "val": ["c"], "test": ["d"]})
    with pytest.raises(SplitLeakError, match="'train' and 'test' share 1 id\\(s\\): b"):
        assert_disjoint({"train": ["a", "b"], "val": ["c"], "test": ["b", "d"]})


def test_leak_guard_catches_the_same_image_under_another_id(tmp_path):
    images = DATA_DIR / "ava_sample" / "images"
    paths = {i: images / f"{i}.jpg" for i in ("42039", "42040", "42041")}
    paths["copy_of_42039"] = shutil.copyfile(images / "42039.jpg", tmp_path / "copy.jpg")
    assert_disjoint({"train": ["42039", "copy_of_42039"], "test": ["42040"]}, image_paths=paths)  # same split: fine
    with pytest.raises(SplitLeakError, match="identical image file .* copy_of_42039 \\(test\\), 42039 \\(train\\)"):
        assert_disjoint({"train": ["42039", "42041"], "test": ["copy_of_42039", "42040"]}, image_paths=paths)
    with pytest.raises(ValueError, match="no file for ids 42041"):
        assert_disjoint({"train": ["42041"]}, image_paths={"42039": paths["42039"]})


def test_split_counts_and_apply_split():
    frame = pd.DataFrame({"image_id": IDS[:5], "mos": [1.0, 2.0, 3.0, 4.0, 5.0]})
    splits = {"train": ["1003", "1000", "1001"], "test": ["1004"]}
    counts = split_counts(splits)
    assert counts["n_images"].tolist() == [3, 1] and counts["fraction"].tolist() == [0.75, 0.25]
    parts = apply_split(frame, splits)
    assert parts["train"]["mos"].tolist() == [4.0, 1.0, 2.0] and parts["test"]["image_id"].tolist() == ["1004"]
    with pytest.raises(ValueError, match="split 'test' has 2 id\\(s\\) not in the label frame: 42, zzz"):
        apply_split(frame, {"train": ["1000"], "test": ["1004", "42", "zzz"]})


def test_splits_csv_round_trip_and_refuses_leaks(tmp_path):
    splits = {"train": ["b", "a"], "val": ["c"], "test": ["d"]}
    path = write_splits_csv(splits, tmp_path / "s.csv")
    assert path.read_text() == "image_id,split\nb,train\na,train\nc,val\nd,test\n"
    assert read_splits_csv(path) == splits
    with pytest.raises(SplitLeakError):
        write_splits_csv({"train": ["a"], "test": ["a"]}, tmp_path / "leak.csv")
    (tmp_path / "bad.csv").write_text("id,fold\n1,train\n")
    with pytest.raises(ValueError, match="need columns image_id,split"):
        read_splits_csv(tmp_path / "bad.csv")


def test_sample_split_file_is_the_documented_generation():
    path = DATA_DIR / "ava_sample" / "splits.csv"
    frame, image_dir = load_ava_sample()
    splits = sample_splits()
    assert splits == make_sample_splits(frame["image_id"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SAMPLE_SPLITS_SHA256
    assert {k: len(v) for k, v in splits.items()} == {"train": 46, "val": 16, "test": 15}
    assert_disjoint(splits, image_paths={i: image_dir / f"{i}.jpg" for i in frame["image_id"]})
