"""Paired learning check: golden values from scipy's spearmanr on the documented resamples, pairing, decisions."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from iaa_lib.metrics import bootstrap_rows, paired_srcc_bootstrap, paired_srcc_difference, srcc_rows
from iaa_lib.training.learning_check import learning_check, untrained_predictions

N = 60


@pytest.fixture
def truth() -> np.ndarray:
    return np.random.default_rng(3).normal(5.5, 0.8, size=N)


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=N)


def scipy_differences(truth, a, b, n_boot, seed):
    """SRCC(a) - SRCC(b) on each resample, by scipy.stats.spearmanr on the rows the docstring names."""
    rows = np.random.default_rng(seed).integers(0, truth.size, size=(n_boot, truth.size))
    return np.array([scipy.stats.spearmanr(a[r], truth[r]).statistic - scipy.stats.spearmanr(b[r], truth[r]).statistic
                     for r in rows])


def test_bootstrap_rows_are_the_documented_draws_and_refuse_bad_sizes():
    expected = np.random.default_rng(9).integers(0, 7, size=(4, 7))
    assert np.array_equal(bootstrap_rows(7, 4, seed=9), expected)
    with pytest.raises(ValueError, match="at least 2 test images"):
        bootstrap_rows(1, 10)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_rows(5, 0)


def test_srcc_rows_match_scipy_and_a_constant_row_counts_zero(truth):
    pred = truth + noise(1)
    pred[:10] = np.round(pred[:10])  # ties
    rows = srcc_rows(np.stack([pred, np.full(N, 2.0)]), np.stack([truth, truth]))
    assert rows[0] == pytest.approx(scipy.stats.spearmanr(pred, truth).statistic, abs=1e-12)
    assert rows[1] == 0.0


def test_model_equal_to_truth_learns_against_noise(truth):
    untrained, baseline = noise(1), noise(2)
    check = learning_check(truth, truth, untrained, baseline, n_boot=300, seed=5)
    assert check.srcc_trained == pytest.approx(1.0)
    assert check.srcc_untrained == pytest.approx(scipy.stats.spearmanr(untrained, truth).statistic, abs=1e-12)
    assert check.srcc_baseline == pytest.approx(scipy.stats.spearmanr(baseline, truth).statistic, abs=1e-12)
    expected = scipy_differences(truth, truth, untrained, 300, 5)
    low, high = np.quantile(expected, [0.025, 0.975])
    assert check.over_untrained == pytest.approx((1.0 - check.srcc_untrained, low, high), abs=1e-12)
    expected = scipy_differences(truth, truth, baseline, 300, 5)
    assert check.over_baseline[1:] == pytest.approx(tuple(np.quantile(expected, [0.025, 0.975])), abs=1e-12)
    assert check.learned and check.over_untrained[1] > 0 and check.over_baseline[1] > 0
    assert check.n == N and check.as_dict()["over_baseline"] == list(check.over_baseline)


def test_noise_model_does_not_learn(truth):
    check = learning_check(truth, noise(1), noise(2), noise(3), n_boot=300)
    assert not check.learned and check.over_untrained[1] < 0 < check.over_untrained[2]


def test_model_below_the_baseline_does_not_learn(truth):
    trained = truth + 0.5 * noise(1)  # some skill, beats the untrained noise, but not the near-perfect baseline
    check = learning_check(truth, trained, noise(2), truth + 0.05 * noise(3), n_boot=300)
    assert check.over_untrained[1] > 0 and check.over_baseline[2] < 0 and not check.learned


def test_intervals_are_paired(truth):
    # Same ranks as the trained model on every resample: the paired difference is exactly 0, every time,
    # although each SRCC alone varies widely between resamples.
    trained = truth + 1.5 * noise(1)
    check = learning_check(truth, trained, trained + 3.0, 2.0 * trained - 1.0, n_boot=300)
    assert check.over_untrained == (0.0, 0.0, 0.0) and check.over_baseline == (0.0, 0.0, 0.0)
    _, resampled = paired_srcc_bootstrap(truth, [trained], n_boot=300)
    assert np.ptp(resampled[0]) > 0.3
    assert not check.learned


def test_constant_prediction_ranks_nothing(truth):
    check = learning_check(truth, truth, np.zeros(N), torch.full((N,), 4.0), n_boot=200)
    assert check.srcc_untrained == 0.0 and check.srcc_baseline == 0.0
    assert check.over_untrained == (1.0, 1.0, 1.0) and check.learned


def test_paired_difference_matches_scipy_and_shares_resamples(truth):
    a, b = truth + noise(1), truth + 2.0 * noise(2)
    difference, low, high = paired_srcc_difference(truth, a, b, n_boot=200, alpha=0.1, seed=7)
    expected = scipy_differences(truth, a, b, 200, 7)
    assert (low, high) == pytest.approx(tuple(np.quantile(expected, [0.05, 0.95])), abs=1e-12)
    whole = scipy.stats.spearmanr(a, truth).statistic - scipy.stats.spearmanr(b, truth).statistic
    assert difference == pytest.approx(whole, abs=1e-12)


@pytest.mark.parametrize("bad", [{"trained": np.zeros(N - 1)}, {"truth": np.ones(N)}, {"n_boot": 0}, {"alpha": 1.0},
                                 {"baseline": np.full(N, np.nan)}])
def test_bad_input_raises(truth, bad):
    arguments = {"truth": truth, "trained": noise(1), "untrained": noise(2), "baseline": noise(3), **bad}
    with pytest.raises(ValueError):
        learning_check(**arguments)


class Scorer(torch.nn.Module):
    """Linear score of the mean pixel; weights drawn from torch's RNG at construction."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, image):
        return self.linear(image.mean(dim=(2, 3)))[:, 0]


def test_untrained_predictions_are_the_seeded_initial_model():
    images = torch.rand(8, 3, 4, 4)
    items = [{"image": images[k], "mos": float(k), "image_id": f"i{k}"} for k in range(8)]
    loader = torch.utils.data.DataLoader(items, batch_size=3)
    first = untrained_predictions(Scorer, loader, seed=4)
    torch.manual_seed(4)
    expected = Scorer()(images).detach().double().numpy()
    assert first["pred_mos"].to_numpy() == pytest.approx(expected, abs=1e-6)
    assert first["image_id"].tolist() == [f"i{k}" for k in range(8)]
    assert not np.allclose(untrained_predictions(Scorer, loader, seed=5)["pred_mos"], expected)
