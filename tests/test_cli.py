"""Command line: help texts, train -> predict round trip, clear errors with exit code 2 for bad input."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from iaa_lib.book.cli import main, make_parser
from iaa_lib.nima.model import NIMA

torch.set_num_threads(1)  # the 2 shared CPU cores: multi-threaded kernels stall under contention

TINY_MODEL = "test_cli:tiny_nima"


def tiny_nima(config: str = "smoke", weights=None) -> NIMA:
    """NIMA on a random-init EfficientNet-Lite0 at 32 px (fast CLI tests)."""
    model = NIMA(config=config, weights=weights)
    model.input_size = 32
    return model


@pytest.fixture
def labelled_folder(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.jpg")
        dist = rng.dirichlet(np.ones(10))
        rows.append({"image_id": f"im{i}", "mos": float((dist * np.arange(1, 11)).sum()),
                     **{f"dist_{k + 1}": d for k, d in enumerate(dist)}})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path


def test_every_option_has_help():
    parser = make_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"predict", "train"} <= set(subparsers.choices)
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help and len(action.help) > 10, (name, action.dest)


def test_help_runs_as_module():
    result = subprocess.run([sys.executable, "-m", "iaa_lib", "predict", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--weights" in result.stdout and "IMAGES_OR_DIR" in result.stdout


def test_train_then_predict(labelled_folder, capsys):
    out_dir = labelled_folder / "run"
    code = main(["train", "--model", TINY_MODEL, "--data", str(labelled_folder / "labels.csv"), "--images",
                 str(labelled_folder), "--epochs", "2", "--batch-size", "4", "--val-fraction", "0.3",
                 "--out-dir", str(out_dir), "--backbone-weights", "none", "--device", "cpu"])
    assert code == 0
    assert {"best.pt", "last.pt", "history.json"} <= {p.name for p in out_dir.iterdir()}
    (labelled_folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    scores = labelled_folder / "scores.csv"
    args = ["predict", "--model", TINY_MODEL, "--weights", str(out_dir / "best.pt"), str(labelled_folder), "--out", str(scores)]
    assert main(args) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert main(args + ["--skip-unreadable"]) == 0
    assert "broken.jpg" in capsys.readouterr().err
    frame = pd.read_csv(scores)
    assert len(frame) == 10 and list(frame.columns) == ["image", "pred_mos"] + [f"pred_dist_{k}" for k in range(1, 11)]
    np.testing.assert_allclose(frame[[f"pred_dist_{k}" for k in range(1, 11)]].sum(axis=1), 1, atol=1e-5)
    assert frame["pred_mos"].between(1, 10).all()


@pytest.mark.parametrize("argv,message", [
    (["predict", "--model", TINY_MODEL, "--weights", "missing.pt", "x.jpg"], "missing.pt"),
    (["train", "--model", TINY_MODEL, "--data", "nope.csv", "--images", "."], "nope.csv"),
    (["train", "--model", "no_such_model", "--data", "LABELS", "--images", "nofolder"], "nofolder"),
])
def test_bad_paths_exit_2_with_message(argv, message, labelled_folder, capsys):
    argv = [str(labelled_folder / "labels.csv") if a == "LABELS" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_model_and_missing_image(labelled_folder, capsys):
    argv = ["train", "--model", "no_such_model", "--data", str(labelled_folder / "labels.csv"), "--images", str(labelled_folder)]
    assert main(argv) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    ckpt = labelled_folder / "w.pt"
    ckpt.write_bytes(b"")
    assert main(["predict", "--model", TINY_MODEL, "--weights", str(ckpt), str(labelled_folder / "ghost.jpg")]) == 2
    assert "ghost.jpg" in capsys.readouterr().err


# ----------------------------------------------------------------------------- issue 15: reliability
def train_args(folder, labels, out_dir, *extra):
    return ["train", "--model", TINY_MODEL, "--data", str(labels), "--images", str(folder), "--epochs", "1",
            "--batch-size", "4", "--val-fraction", "0.3", "--out-dir", str(out_dir), "--backbone-weights", "none",
            "--device", "cpu", *extra]


def edited_labels(folder, name: str, edit) -> str:
    """labels.csv with `edit(frame)` applied, written as <name>.csv; returns its path."""
    frame = pd.read_csv(folder / "labels.csv")
    edit(frame)
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return str(path)


DIST = [f"dist_{k}" for k in range(1, 11)]


def _nan_row(frame):
    frame.loc[4, "dist_3"] = np.nan


def _negative_row(frame):
    frame.loc[4, "dist_3"] = -0.1


def _zero_row(frame):
    frame.loc[4, DIST] = 0.0


def _vote_counts(frame):
    """Raw counts (about 150 votes per image) in the dist columns, mos the mean of those votes."""
    counts = (frame[DIST] * 150).round().to_numpy()
    frame[DIST] = counts
    frame["mos"] = counts @ np.arange(1, 11) / counts.sum(axis=1)


def _wrong_mos(frame):
    frame.loc[4, "mos"] = frame.loc[4, "mos"] + 1.5


@pytest.mark.parametrize("edit, message", [
    (_nan_row, "NaN"), (_negative_row, "negative dist"), (_zero_row, "all-zero dist"),
    (_vote_counts, "do not sum to 1.*raw vote counts"), (_wrong_mos, "mos differs from the mean of its dist"),
])
def test_train_refuses_bad_label_values_naming_file_row_and_id(labelled_folder, capsys, edit, message):
    labels = edited_labels(labelled_folder, edit.__name__, edit)
    assert main(train_args(labelled_folder, labels, labelled_folder / "run")) == 2
    err = capsys.readouterr().err
    assert labels in err and "data row" in err and "image_id im" in err and re.search(message, err), err
    assert not (labelled_folder / "run").exists()


def test_train_normalises_vote_counts_only_when_asked(labelled_folder):
    labels = edited_labels(labelled_folder, "counts", _vote_counts)
    assert main(train_args(labelled_folder, labels, labelled_folder / "run", "--normalise-dist")) == 0


def test_train_reads_the_ava_vote_format_and_skips_unreadable_images(labelled_folder, capsys):
    frame = pd.read_csv(labelled_folder / "labels.csv")
    votes = pd.DataFrame({"image_id": frame["image_id"],
                          **{f"votes_{k}": (frame[f"dist_{k}"] * 200).round().astype(int) + 1 for k in range(1, 11)}})
    votes_csv = labelled_folder / "votes.csv"
    votes.to_csv(votes_csv, index=False)
    (labelled_folder / "im7.jpg").write_bytes(b"\xff\xd8 truncated")
    assert main(train_args(labelled_folder, votes_csv, labelled_folder / "run")) == 2
    assert "im7.jpg" in capsys.readouterr().err and not (labelled_folder / "run" / "last.pt").exists()
    assert main(train_args(labelled_folder, votes_csv, labelled_folder / "run", "--skip-unreadable")) == 0
    out = capsys.readouterr()
    assert "skipped unreadable image" in out.err and "im7.jpg" in out.err
    history = json.loads((labelled_folder / "run" / "history.json").read_text())
    assert history["config"]["target"] == "dist" and "val_emd2" in history["epochs"][0]


def test_train_into_an_existing_run_refuses_and_deletes_nothing(labelled_folder, capsys):
    out_dir = labelled_folder / "run"
    assert main(train_args(labelled_folder, labelled_folder / "labels.csv", out_dir)) == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir() if p.suffix in (".pt", ".json")}
    assert main(train_args(labelled_folder, labelled_folder / "labels.csv", out_dir, "--epochs", "2")) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir() if p.suffix in (".pt", ".json")} == before


def test_relative_out_dir_is_taken_from_the_current_folder(labelled_folder, monkeypatch):
    from iaa_lib.paths import REPO_ROOT

    monkeypatch.chdir(labelled_folder)
    assert main(train_args(labelled_folder, labelled_folder / "labels.csv", "relative_run")) == 0
    assert (labelled_folder / "relative_run" / "last.pt").is_file()
    assert not (REPO_ROOT / "relative_run").exists()


def test_predict_checks_its_output_before_scoring_and_names_bad_weights(labelled_folder, capsys, monkeypatch):
    out_dir = labelled_folder / "run"
    assert main(train_args(labelled_folder, labelled_folder / "labels.csv", out_dir)) == 0
    import iaa_lib.training.evaluation as evaluation

    def must_not_run(*args, **kwargs):
        raise AssertionError("predict computed scores before checking its output path")

    monkeypatch.setattr(evaluation, "predict", must_not_run)
    blocked = labelled_folder / "a_file"
    blocked.write_text("")
    for out in (blocked / "scores.csv", labelled_folder):  # parent is a file / out is a folder
        argv = ["predict", "--model", TINY_MODEL, "--weights", str(out_dir / "best.pt"), str(labelled_folder / "im0.jpg"),
                "--out", str(out)]
        assert main(argv) == 2
        assert str(out) in capsys.readouterr().err
    truncated = labelled_folder / "cut.pt"
    truncated.write_bytes((out_dir / "best.pt").read_bytes()[:1000])
    argv = ["predict", "--model", TINY_MODEL, "--weights", str(truncated), str(labelled_folder / "im0.jpg"),
            "--out", str(labelled_folder / "s.csv")]
    assert main(argv) == 2
    assert "cut.pt" in capsys.readouterr().err
