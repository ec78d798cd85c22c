"""metrics.seed_paired_difference: a mechanism's ablation over seeds on the shared resamples of paired_srcc_bootstrap.

Golden values: a hand-computed Spearman case, and scipy.stats.spearmanr looped over the resamples the docstring of
paired_srcc_bootstrap names."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from iaa_lib.metrics import seed_paired_difference


def test_hand_computed_per_seed_gaps():
    # Spearman of [1, 2, 3, 5, 4] against 1..5: 1 - 6 * (1 + 1) / (5 * 24) = 0.9; a reversed order gives -1.
    truth = np.arange(1.0, 6.0)
    out = seed_paired_difference(truth, [[1, 2, 3, 5, 4], [1, 2, 3, 4, 5]], [[5, 4, 3, 2, 1], [1, 2, 3, 5, 4]],
                                 n_boot=20)
    assert out["with_srcc"] == pytest.approx([0.9, 1.0], abs=1e-12)
    assert out["without_srcc"] == pytest.approx([-1.0, 0.9], abs=1e-12)
    assert out["per_seed"] == pytest.approx([1.9, 0.1], abs=1e-12)
    assert out["difference"] == pytest.approx(1.0, abs=1e-12)


def scipy_draws(truth, with_mechanism, without, n_boot, seed):
    """Mean over seeds of SRCC(with) - SRCC(without) on each documented resample, by scipy (nan counts as 0)."""
    def srcc(pred, target):
        value = scipy.stats.spearmanr(pred, target).statistic
        return 0.0 if np.isnan(value) else value

    rows = np.random.default_rng(seed).integers(0, truth.size, size=(n_boot, truth.size))
    return np.array([np.mean([srcc(p[r], truth[r]) - srcc(q[r], truth[r]) for p, q in zip(with_mechanism, without)])
                     for r in rows])


def test_interval_is_the_scipy_quantile_of_the_seed_mean_on_shared_resamples():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=60)
    good = [truth + rng.normal(scale=0.3, size=60) for _ in range(3)]
    bad = [np.round(truth + rng.normal(scale=2.0, size=60)) for _ in range(3)]  # ties
    out = seed_paired_difference(truth, good, bad, n_boot=200, alpha=0.1, seed=4)
    gaps = [scipy.stats.spearmanr(g, truth).statistic - scipy.stats.spearmanr(b, truth).statistic
            for g, b in zip(good, bad)]
    assert out["per_seed"] == pytest.approx(gaps, abs=1e-12)
    assert out["difference"] == pytest.approx(np.mean(gaps), abs=1e-12)
    expected = np.quantile(scipy_draws(truth, good, bad, 200, 4), [0.05, 0.95])
    assert (out["low"], out["high"]) == pytest.approx(tuple(expected), abs=1e-12)
    assert 0 < out["low"] < out["difference"] < out["high"]


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # scipy's nan, counted as 0
def test_a_constant_prediction_ranks_nothing():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=30)
    pred = [truth + rng.normal(size=30) for _ in range(2)]
    out = seed_paired_difference(truth, pred, [np.zeros(30)] * 2, n_boot=100)
    assert out["without_srcc"] == [0.0, 0.0] and out["per_seed"] == pytest.approx(out["with_srcc"], abs=1e-15)
    expected = np.quantile(scipy_draws(truth, pred, [np.zeros(30)] * 2, 100, 0), [0.025, 0.975])
    assert (out["low"], out["high"]) == pytest.approx(tuple(expected), abs=1e-12)


def test_identical_predictions_give_a_zero_interval():
    truth = np.arange(10.0)
    same = [truth[::-1] * 0.5 + np.sin(truth)] * 3
    out = seed_paired_difference(truth, same, same, n_boot=50)
    assert out["difference"] == out["low"] == out["high"] == 0.0


TRUTH = np.arange(10.0)
SAME = [TRUTH + np.sin(TRUTH)] * 3


@pytest.mark.parametrize("arguments, message", [
    ((TRUTH, SAME, SAME[:2]), "seeds"),                            # one seed fewer without the mechanism
    ((TRUTH[:9], SAME, SAME), "seeds"),                            # predictions longer than the truth
    ((TRUTH[:2], [TRUTH[:2]] * 3, [TRUTH[:2]] * 3), "at least 3"),
    ((np.ones(10), SAME, SAME), "constant"),
])
def test_bad_input_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        seed_paired_difference(*arguments, n_boot=10)


def test_alpha_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        seed_paired_difference(TRUTH, SAME, SAME, alpha=0.0)
