"""The data check on datasets in their original layouts: the miniature AVA's deliberate defects are each found
(exact counts), the manifest round-trips and is reused, the CLI exits non-zero on errors; TAD66K, BAID, AADB."""
from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from iaa_lib.book.cli import main
from iaa_lib.data.check import check_dataset, format_report, labelled_from_manifest, read_manifest, write_manifest
from iaa_lib.data.labels import VOTE_COLUMNS
from iaa_lib.data.mini_ava import build_mini_ava
from iaa_lib.paths import DATA_DIR

SAMPLE_IMAGES = DATA_DIR / "ava_sample" / "images"


@pytest.fixture(scope="module")
def checked(mini_ava):
    return check_dataset("ava", mini_ava.root, workers=2, progress=False)


def test_mini_ava_rows_are_the_real_vote_histograms(mini_ava):
    lines = [line.split() for line in (mini_ava.root / "AVA.txt").read_text().splitlines()]
    assert len(lines) == 78 and sum(len(f) != 15 for f in lines) == 1  # 77 photos + 1 repeated row, 1 row cut short
    sample = pd.read_csv(DATA_DIR / "ava_sample" / "labels.csv", dtype={"image_id": str}).set_index("image_id")
    shipped = pd.read_csv(DATA_DIR / "labels" / "ava_votes.csv.gz", dtype={"image_id": str}).set_index("image_id")
    full = [f for f in lines if len(f) == 15]
    assert [f[0] for f in full] == [str(n) for n in range(1, 79) if n != mini_ava.cut_line]  # running index
    for fields in full:
        votes = [int(v) for v in fields[2:12]]
        assert votes == sample.loc[fields[1], VOTE_COLUMNS].tolist()
        if fields[1] in shipped.index:
            assert votes == shipped.loc[fields[1], VOTE_COLUMNS].tolist()
        assert fields[12:] == ["0", "0", "0"]  # tags and challenge ids are not shipped
    assert [f[1] for f in full[:3]] == ["953619", "953958", "954184"]  # AVA's first three rows
    assert (mini_ava.root / "aesthetics_image_lists" / "generic_test.jpgl").read_text().split() == list(mini_ava.test_ids)


def test_data_check_finds_each_deliberate_defect_of_the_mini_ava(mini_ava, checked):
    report = checked.report
    assert report.n_label_rows == 78 and report.n_image_files == 74
    assert (report.n_found, report.n_ok) == (73, 71)
    assert report.missing == sorted(f"{i}.jpg" for i in mini_ava.missing)
    assert [name for name, _ in report.unreadable] == sorted(f"{i}.jpg" for i in mini_ava.corrupt)
    assert report.bad_rows == [[f"AVA.txt:{mini_ava.cut_line}", "14 fields, expected 15 (index, image id, 10 vote "
                                                                "counts, 2 semantic tags, challenge id)"]]
    assert [(d["image_id"], d["identical"]) for d in report.duplicate_ids] == [(mini_ava.repeated_row, True)]
    assert report.unlabelled_images == [f"{mini_ava.cut_row}.jpg"]
    assert report.split_sizes == {"test": {"rows": 15, "ok": 13}, "train": {"rows": 61, "ok": 58}}
    assert report.leaks_by_id == [{"a": "generic_ls_train.jpgl", "b": "generic_test.jpgl", "ids": [mini_ava.id_leak]}]
    train_id, test_id = mini_ava.content_leak
    assert [sorted(map(tuple, g["images"])) for g in report.leaks_by_hash] == [[(train_id, "train"), (test_id, "test")]]
    assert report.error_counts() == {"unreadable label rows": 1, "label rows without an image": 3,
                                     "unreadable images": 2, "train/test leaks by id": 1,
                                     "train/test leaks by content hash": 1}
    assert report.warning_counts() == {"repeated identical label rows": 1, "image files without a label row": 1,
                                       "list ids without a label row": 1}
    assert not report.ok
    text = format_report(report)
    for needle in ("ERROR: 3 label rows without an image", f"{mini_ava.corrupt[1]}.jpg: UnidentifiedImageError",
                   f"generic_ls_train.jpgl and generic_test.jpgl share {mini_ava.id_leak}", "result: 8 error(s)"):
        assert needle in text


def test_manifest_keeps_every_row_with_its_status(mini_ava, checked):
    manifest = checked.manifest
    assert len(manifest) == 77  # every readable label row, the repeat included
    counts = manifest["status"].value_counts().to_dict()
    assert counts == {"ok": 71, "missing": 3, "unreadable": 2, "duplicate": 1}
    assert manifest.loc[manifest["status"] == "duplicate", "image_id"].tolist() == [mini_ava.repeated_row]


def test_written_manifest_reads_back_as_a_labelled_set(mini_ava, checked, tmp_path):
    path = write_manifest(checked, tmp_path / "ava.csv")
    summary = json.loads((tmp_path / "ava.json").read_text())
    assert summary["dataset"] == "ava" and summary["missing"] == checked.report.missing
    frame, image_dir, splits = labelled_from_manifest(path)
    assert image_dir is None and {k: len(v) for k, v in splits.items()} == {"train": 58, "test": 13}
    assert len(frame) == 71 and all(os.path.isfile(p) for p in frame["path"])
    sample = pd.read_csv(DATA_DIR / "ava_sample" / "labels.csv", dtype={"image_id": str}).set_index("image_id")
    assert (frame["mos"] - sample.loc[frame["image_id"], "mean_score"].to_numpy()).abs().max() < 1e-6
    bad = set(mini_ava.missing) | set(mini_ava.corrupt)
    assert not bad & set(frame["image_id"])


def test_manifest_refuses_edits_and_changed_labels(tmp_path):
    mini = build_mini_ava(tmp_path / "ava")
    path = write_manifest(check_dataset("ava", mini.root, progress=False), tmp_path / "m.csv")
    original = path.read_text()
    path.write_text(original.replace(",missing,", ",ok,", 1))
    with pytest.raises(ValueError, match="differs from the manifest the data check wrote"):
        read_manifest(path)
    path.write_text(original)
    with open(mini.root / "AVA.txt", "a") as handle:
        handle.write("99 123 1 1 1 1 1 1 1 1 1 1 0 0 0\n")
    with pytest.raises(ValueError, match="AVA.txt changed since the data check"):
        read_manifest(path)
    with pytest.raises(FileNotFoundError, match="data check --dataset"):
        read_manifest(tmp_path / "absent.csv")


def test_a_second_check_reads_only_changed_files(tmp_path):
    mini = build_mini_ava(tmp_path / "ava")
    first = check_dataset("ava", mini.root, progress=False)
    assert (first.report.scanned, first.report.reused) == (73, 0)
    path = write_manifest(first, tmp_path / "m.csv")
    again = check_dataset("ava", mini.root, progress=False, previous=read_manifest(path).frame)
    assert (again.report.scanned, again.report.reused) == (0, 73)
    assert again.report.error_counts() == first.report.error_counts()
    repaired = mini.root / "images" / f"{mini.corrupt[0]}.jpg"
    shutil.copyfile(SAMPLE_IMAGES / f"{mini.corrupt[0]}.jpg", repaired)  # the user fixes the truncated file
    fixed = check_dataset("ava", mini.root, progress=False, previous=read_manifest(path).frame)
    assert (fixed.report.scanned, fixed.report.reused) == (1, 72)
    assert [name for name, _ in fixed.report.unreadable] == [f"{mini.corrupt[1]}.jpg"]


def test_header_verification_misses_the_truncated_jpeg_that_decoding_finds(mini_ava):
    header = check_dataset("ava", mini_ava.root, verify="header", progress=False).report
    assert [name for name, _ in header.unreadable] == [f"{mini_ava.corrupt[1]}.jpg"]  # the text file only


def test_cli_data_check_exit_status_and_manifest(mini_ava, tmp_path, capsys):
    out = tmp_path / "ava_manifest.csv"
    args = ["data", "check", "--dataset", "ava", "--root", str(mini_ava.root), "--manifest", str(out), "--no-progress"]
    assert main(args) == 1
    printed = capsys.readouterr().out
    assert "ERROR: 2 unreadable images" in printed and out.is_file() and out.with_suffix(".json").is_file()
    assert main([*args, "--allow-errors"]) == 0
    assert "scanned 0, reused 73" in capsys.readouterr().out
    assert main(["data", "check", "--dataset", "ava", "--root", str(tmp_path / "none")]) == 2
    assert main(["data", "check", "--dataset", "ava", "--root", str(tmp_path)]) == 2  # no AVA.txt
    assert "AVA.txt" in capsys.readouterr().err


def test_ava_without_the_official_test_list_is_a_layout_error(tmp_path):
    mini = build_mini_ava(tmp_path / "ava")
    (mini.root / "aesthetics_image_lists" / "generic_test.jpgl").unlink()
    report = check_dataset("ava", mini.root, progress=False).report
    assert report.error_counts()["layout problems"] == 1 and list(report.split_sizes) == ["train"]


def _write_csv(path, header, rows):
    """A label CSV with CRLF line ends (as TANet's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())


def _stand_in_images(folder, names):
    """Sample photos saved under the given file names (the layout test needs files, not their content)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(SAMPLE_IMAGES.glob("*.jpg"))
    for photo, name in zip(photos, names):
        shutil.copyfile(photo, folder / name)


def test_tad66k_layout_with_real_rows_and_defects(tmp_path):
    train = pd.read_csv(DATA_DIR / "labels" / "tad66k_train.csv").head(4)
    test = pd.read_csv(DATA_DIR / "labels" / "tad66k_test.csv").head(3)
    root = tmp_path / "tad66k"
    rows = [f"{n},{s}" for n, s in zip(train["image"], train["score"])]
    _write_csv(root / "merge" / "train.csv", "image,score", [*rows, "broken.jpg,abc", "high.jpg,11.5"])
    _write_csv(root / "merge" / "test.csv", "image,score",
               [*(f"{n},{s}" for n, s in zip(test["image"], test["score"])), rows[0]])  # a train row again
    _stand_in_images(root / "images", [*train["image"], *test["image"][:2]])
    report = check_dataset("tad66k", root, progress=False).report
    assert report.notes == [] and report.n_label_rows == 10
    assert [r[0] for r in report.bad_rows] == ["merge/train.csv:6", "merge/train.csv:7"]
    assert report.missing == [test["image"][2]]
    assert report.leaks_by_id == [{"a": "test", "b": "train", "ids": [train["image"][0].rsplit(".", 1)[0]]}]
    assert report.split_sizes == {"test": {"rows": 4, "ok": 3}, "train": {"rows": 4, "ok": 4}}


def test_tad66k_labels_fall_back_to_the_shipped_copy(tmp_path):
    (tmp_path / "images").mkdir()
    report = check_dataset("tad66k", tmp_path, progress=False).report
    assert report.n_label_rows == 52_248 + 14_079 and len(report.missing) == 66_327
    assert len(report.notes) == 2 and "shipped copy" in report.notes[0]
    assert report.leaks_by_id == [] and report.duplicate_ids == []  # TANet's merge split is disjoint by name


def test_baid_layout_finds_a_content_leak_between_val_and_test(tmp_path):
    root = tmp_path / "BAID"
    parts = {s: pd.read_csv(DATA_DIR / "labels" / f"baid_{s}.csv").head(2) for s in ("train", "val", "test")}
    for split, frame in parts.items():
        _write_csv(root / "dataset" / f"{split}_set.csv", "image,score",
                   [f"{n},{s}" for n, s in zip(frame["image"], frame["score"])])
    names = [n for frame in parts.values() for n in frame["image"]]
    _stand_in_images(root / "images", names)
    shutil.copyfile(root / "images" / parts["val"]["image"][0], root / "images" / parts["test"]["image"][1])
    report = check_dataset("baid", root, progress=False).report
    assert report.n_ok == 6 and report.leaks_by_id == []
    assert [sorted(s for _, s in g["images"]) for g in report.leaks_by_hash] == [["test", "val"]]
    assert report.error_counts() == {"train/test leaks by content hash": 1}


def test_aadb_layout_repeated_and_conflicting_rows(tmp_path):
    root = tmp_path / "AADB"
    source = (DATA_DIR / "labels" / "aadb.csv").read_text().splitlines()
    header, rows = source[0], source[1:5]
    changed = rows[1].split(",")
    changed[2] = "0.05" if changed[2] != "0.05" else "0.95"
    (root).mkdir()
    (root / "AADB.txt").write_text("\n".join([header, *rows, rows[0], ",".join(changed)]) + "\n")
    names = [r.split(",")[0].rsplit("/", 1)[-1] for r in rows]
    _stand_in_images(root / "datasetImages_originalSize", names)
    report = check_dataset("aadb", root, progress=False).report
    assert report.image_dir.endswith("datasetImages_originalSize") and report.n_ok == 4
    assert sorted((d["identical"], len(d["sources"])) for d in report.duplicate_ids) == [(False, 2), (True, 2)]
    assert report.error_counts() == {"duplicate ids with different labels": 1}
    assert list(report.split_sizes) == ["all"]


def test_labelled_set_reads_a_checked_ava_through_its_manifest(checked, tmp_path):
    from iaa_lib.data.labelled_sets import labelled_set

    path = write_manifest(checked, tmp_path / "ava.csv")
    frame, image_dir, splits = labelled_set("ava", manifest=path, seed=0)
    assert image_dir is None and len(frame) == 71
    assert {k: len(v) for k, v in splits.items()} == {"train": 55, "val": 3, "test": 13}  # val = round(5 % of 58)
    assert not set(splits["train"]) & set(splits["test"])
