"""seed_paired_difference: mean over seeds of SRCC(with) - SRCC(without), with a paired bootstrap interval."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from iaa_lib.training.ablation import seed_paired_difference


def test_difference_is_the_mean_of_per_seed_srcc_gaps():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=60)
    good = [truth + rng.normal(scale=0.3, size=60) for _ in range(3)]
    bad = [truth + rng.normal(scale=2.0, size=60) for _ in range(3)]
    out = seed_paired_difference(truth, good, bad, n_boot=200)
    gaps = [scipy.stats.spearmanr(g, truth)[0] - scipy.stats.spearmanr(b, truth)[0] for g, b in zip(good, bad)]
    assert np.allclose(out["per_seed"], gaps) and out["difference"] == pytest.approx(np.mean(gaps))
    assert 0 < out["low"] < out["difference"] < out["high"]


def test_identical_predictions_give_a_zero_interval_and_shapes_are_checked():
    truth = np.arange(10.0)
    same = [truth[::-1] * 0.5 + np.sin(truth)] * 3
    out = seed_paired_difference(truth, same, same, n_boot=50)
    assert out["difference"] == out["low"] == out["high"] == 0.0
    with pytest.raises(ValueError, match="seeds"):
        seed_paired_difference(truth, same, same[:2])
