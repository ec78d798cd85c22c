"""CG-IAA critique protocols: cross-fitted folds and who writes each image's critiques."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from iaa_lib.cgiaa.pipeline import caption_folds, critique_writers, protocol_critiques


def test_caption_folds_partition_the_captioned_images():
    captions = pd.DataFrame({"image_index": [0, 0, 1, 2, 3, 5, 5, 8]})
    folds = caption_folds(captions, n_folds=2, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == [0, 1, 2, 3, 5, 8]
    assert not set(folds[0]) & set(folds[1]) and [len(f) for f in folds] == [3, 3]
    assert [f.tolist() for f in caption_folds(captions, 2, seed=3)] == [f.tolist() for f in folds]


def test_writers_by_hand():
    writers = critique_writers(7, [np.array([0, 2]), np.array([1, 5])])
    # images 0, 2 (fold 0) -> experts 1; images 1, 5 (fold 1) -> experts 0; images 3, 4, 6 alternate by index
    assert writers.tolist() == [1, 0, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("n_folds", [2, 3])
def test_no_training_image_is_critiqued_by_experts_that_saw_it(n_folds: int):
    captions = pd.DataFrame({"image_index": np.arange(0, 40, 2)})
    folds = caption_folds(captions, n_folds, seed=0)
    writers = critique_writers(45, folds)
    for k, fold in enumerate(folds):
        assert (writers[fold] != k).all()
    assert set(writers.tolist()) == set(range(n_folds))


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="cross_fitted"):
        protocol_critiques(None, None, "runs", None, "own_images")


def test_probe_recovers_a_linear_factor_and_not_noise():
    from iaa_lib.cgiaa.diagnostics import ridge_probe_srcc

    generator = torch.Generator().manual_seed(0)
    target = torch.rand(200, generator=generator)
    train, test = list(range(150)), list(range(150, 200))
    assert ridge_probe_srcc(-3 * target[:, None], target, train, test) == pytest.approx(1.0)
    noise = torch.randn(200, 5, generator=generator)
    assert abs(ridge_probe_srcc(noise, target, train, test)) < 0.4


def test_top_share_by_hand():
    from iaa_lib.cgiaa.diagnostics import top_share

    assert top_share(["a", "b", "a", "c", "a", "b", "d", "e"], k=2) == 5 / 8
    assert top_share(["a", "b"], k=1) == 0.5
