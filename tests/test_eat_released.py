"""Scoring a checkpoint saved in EAT's official layout on a checked split: SRCC/PLCC/Acc as the official code
computes them (raw outputs, sum_i i*y_i, batches in order, score <= 5 low), checked against scipy by hand."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from iaa_lib.data.check import check_dataset, labelled_from_manifest, write_manifest
from iaa_lib.data.images import load_rgb
from iaa_lib.data.transforms import eval_transform
from iaa_lib.eat.model import EAT
from iaa_lib.eat.pipeline import evaluate_released_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mini_test_split(mini_ava, tmp_path_factory):
    """The miniature AVA's readable official-test images, read through the data check's manifest."""
    manifest = write_manifest(check_dataset("ava", mini_ava.root, progress=False),
                              tmp_path_factory.mktemp("manifest") / "ava.csv")
    frame, _, splits = labelled_from_manifest(manifest)
    return frame.set_index("image_id", drop=False).loc[splits["test"]].reset_index(drop=True)


def official_file(model: EAT, path) -> str:
    """Save `model` the way the official code's DataParallel run does: a bare state dict with 'module.' keys."""
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, path)
    return str(path)


def by_hand(model: EAT, frame, batch: int) -> np.ndarray:
    """Raw outputs in batches of `batch`, in frame order."""
    transform = eval_transform(model.cfg.img_size)
    images = torch.stack([transform(load_rgb(p)) for p in frame["path"]])
    with torch.no_grad():
        return torch.cat([model.eval()(images[i:i + batch])["pred"] for i in range(0, len(images), batch)]).numpy()


def test_released_ava_checkpoint_scores_the_test_split_as_the_official_code(mini_test_split, tmp_path):
    torch.manual_seed(3)
    model = EAT("smoke", variant="eat_as_published")
    result = evaluate_released_checkpoint(official_file(model, tmp_path / "AVA_AOT.pth"), mini_test_split,
                                          config="smoke", batch_size=8)
    outputs = by_hand(model, mini_test_split, batch=8)
    predicted = (outputs * np.arange(1, 11)).sum(axis=1)  # no softmax: the raw outputs weight the bins
    truth = mini_test_split["mos"].to_numpy()
    assert result["n"] == 13
    assert result["srcc"] == pytest.approx(scipy.stats.spearmanr(predicted, truth)[0], abs=1e-6)
    assert result["plcc"] == pytest.approx(scipy.stats.pearsonr(predicted, truth)[0], abs=1e-6)
    assert result["acc"] == pytest.approx(np.mean((predicted > 5) == (truth > 5)))
    assert result["published"]["srcc"] == 0.7596 and "batches of 8" in result["protocol"]


def test_released_tad66k_checkpoint_compares_with_score_over_ten(mini_test_split, tmp_path):
    torch.manual_seed(4)
    model = EAT("smoke", variant="eat_as_published", head="scalar")
    result = evaluate_released_checkpoint(official_file(model, tmp_path / "TAD66K_AOT.pth"), mini_test_split,
                                          dataset="tad66k", config="smoke")
    predicted = by_hand(model, mini_test_split, batch=16)
    truth = mini_test_split["mos"].to_numpy() / 10
    assert result["acc"] == pytest.approx(np.mean((predicted > 0.5) == (truth > 0.5)))
    assert result["plcc"] == pytest.approx(scipy.stats.pearsonr(predicted, truth)[0], abs=1e-6)

