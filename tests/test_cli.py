"""Command line: help texts, train -> predict round trip, clear errors with exit code 2 for bad input."""
from __future__ import annotations

import argparse
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
