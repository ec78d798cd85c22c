"""Metrics against scipy and hand-worked examples."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from iaa_lib import metrics


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    true = rng.normal(5.4, 0.7, size=200)
    pred = true + rng.normal(0, 0.6, size=200)
    pred[:20] = np.round(pred[:20])  # ties
    return pred, true


def test_srcc_plcc_krcc_match_scipy(scores):
    pred, true = scores
    assert metrics.srcc(pred, true) == pytest.approx(scipy.stats.spearmanr(pred, true).statistic, abs=1e-12)
    assert metrics.plcc(pred, true) == pytest.approx(scipy.stats.pearsonr(pred, true).statistic, abs=1e-12)
    assert metrics.krcc(pred, true) == pytest.approx(scipy.stats.kendalltau(pred, true).statistic, abs=1e-12)


def test_krcc_tau_b_hand_example_with_ties():
    # x=(1,2,2,3), y=(1,3,2,3): pairs C=4, D=0, ties only in x: 1, only in y: 1 -> tau_b = 4/sqrt(5*5) = 0.8
    assert metrics.krcc([1, 2, 2, 3], [1, 3, 2, 3]) == pytest.approx(0.8)


def test_srcc_is_rank_based_and_plcc_is_not():
    x = np.arange(1.0, 11.0)
    assert metrics.srcc(x, np.exp(x)) == pytest.approx(1.0)
    assert metrics.plcc(x, np.exp(x)) < 0.9


def test_metrics_accept_torch_and_lists(scores):
    pred, true = scores
    expected = metrics.srcc(pred, true)
    assert metrics.srcc(torch.tensor(pred, dtype=torch.float64, requires_grad=True), list(true)) == pytest.approx(expected)
    assert metrics.srcc(torch.tensor(pred).reshape(-1, 1), true) == pytest.approx(expected)


def test_plcc_logistic_option_is_at_least_as_good_on_a_monotone_nonlinearity():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 300)
    y = 1 + 8 / (1 + np.exp(-(x - 5))) + rng.normal(0, 0.1, 300)
    assert metrics.plcc(x, y, logistic=True) > metrics.plcc(x, y) + 0.01
    assert metrics.plcc(x, y, logistic=True) > 0.99


def test_binarize_and_accuracy_threshold_edge_case():
    np.testing.assert_array_equal(metrics.binarize([4.9, 5.0, 5.1]), [False, False, True])
    np.testing.assert_array_equal(metrics.binarize([4.9, 5.0, 5.1], high_if="ge"), [False, True, True])
    # prediction and GT of exactly 5.0: both low under "gt", both high under "ge" (the rule applies to both)
    assert metrics.accuracy([5.0, 5.0], [5.0, 4.0], high_if="gt") == pytest.approx(1.0)
    assert metrics.accuracy([5.0, 5.0], [5.0, 4.0], high_if="ge") == pytest.approx(0.5)


def test_error_metrics_hand_example():
    pred, true = [1.0, 2.0, 4.0], [1.0, 4.0, 3.0]
    assert metrics.mse(pred, true) == pytest.approx(5 / 3)
    assert metrics.rmse(pred, true) == pytest.approx(math.sqrt(5 / 3))
    assert metrics.mae(pred, true) == pytest.approx(1.0)


def test_emd_toy_values():
    p, q = [[1.0, 0.0]], [[0.0, 1.0]]
    assert metrics.emd(p, q, r=1) == pytest.approx(0.5)
    assert metrics.emd(p, q, r=2) == pytest.approx(0.70710678)


def test_emd1_equals_scipy_wasserstein_over_k():
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(10), size=50), rng.dirichlet(np.ones(10), size=50)
    bins = np.arange(1, 11)
    expected = np.mean([scipy.stats.wasserstein_distance(bins, bins, p[i], q[i]) / 10 for i in range(50)])
    assert metrics.emd(p, q, r=1) == pytest.approx(expected, rel=1e-10)


def test_emd2_is_mean_of_per_sample_roots():
    # two samples, K=2: dCDF = (0.2, 0) and (0.6, 0) -> per-sample sqrt(0.02), sqrt(0.18)
    p = np.array([[0.6, 0.4], [0.8, 0.2]])
    q = np.array([[0.4, 0.6], [0.2, 0.8]])
    assert metrics.emd(p, q, r=2) == pytest.approx((math.sqrt(0.02) + math.sqrt(0.18)) / 2)


def test_dist_to_mean_and_std_hand_example_numpy_and_torch():
    dist = np.zeros((2, 10))
    dist[0, [2, 6]] = 0.5  # scores 3 and 7
    dist[1, 9] = 1.0  # all votes on 10
    np.testing.assert_allclose(metrics.dist_to_mean(dist), [5.0, 10.0])
    np.testing.assert_allclose(metrics.dist_to_std(dist), [2.0, 0.0], atol=1e-12)
    torch_dist = torch.tensor(dist, dtype=torch.float32)
    torch.testing.assert_close(metrics.dist_to_mean(torch_dist), torch.tensor([5.0, 10.0]))
    torch.testing.assert_close(metrics.dist_to_std(torch_dist), torch.tensor([2.0, 0.0]))


def test_predicted_mos_shapes():
    one_hot = torch.zeros(3, 10)
    one_hot[:, 7] = 1.0
    torch.testing.assert_close(metrics.predicted_mos(one_hot), torch.full((3,), 8.0))
    scores = torch.tensor([4.5, 6.0])
    assert metrics.predicted_mos(scores) is scores
    torch.testing.assert_close(metrics.predicted_mos(scores.reshape(2, 1)), scores)
    with pytest.raises(ValueError, match="pred"):
        metrics.predicted_mos(torch.zeros(2, 3, 4))


def test_score_metrics_keys_and_values(scores):
    pred, true = scores
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(10), size=200), rng.dirichlet(np.ones(10), size=200)
    result = metrics.score_metrics(pred, true, p, q, high_if="ge")
    assert {"srcc", "plcc", "krcc", "acc", "mse", "rmse", "n", "emd1", "emd2"} <= set(result)
    assert result["n"] == 200
    assert result["acc"] == pytest.approx(np.mean((pred >= 5) == (true >= 5)))
    assert result["emd2"] == pytest.approx(metrics.emd(p, q, r=2))
    assert "emd1" not in metrics.score_metrics(pred, true)
    with pytest.raises(ValueError, match="true_dist"):
        metrics.score_metrics(pred, true, pred_dist=p)


def test_bootstrap_ci_contains_point_estimate_and_is_reproducible(scores):
    pred, true = scores
    low, high = metrics.bootstrap_ci(metrics.srcc, pred, true, n_boot=200, seed=0)
    assert low < metrics.srcc(pred, true) < high
    assert high - low < 0.3
    assert (low, high) == metrics.bootstrap_ci(metrics.srcc, pred, true, n_boot=200, seed=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.srcc([1, 2, 3], [1, 2]), "pred has 3 samples but true has 2"),
        (lambda: metrics.plcc([1.0], [2.0]), "at least 2 samples"),
        (lambda: metrics.srcc([1, float("nan"), 3], [1, 2, 3]), "pred: 1 non-finite"),
        (lambda: metrics.mse([1, 2, 3], [1, np.inf, 3]), "true: 1 non-finite"),
        (lambda: metrics.krcc([1, 2, 3], [4, 4, 4]), "true is constant"),
        (lambda: metrics.plcc([2, 2, 2], [1, 2, 3]), "pred is constant"),
        (lambda: metrics.accuracy([1, 6], [2, 7], high_if="gte"), "high_if must be one of"),
        (lambda: metrics.emd(np.ones((2, 10)) / 10, np.ones((2, 5)) / 5), "pred_dist shape"),
        (lambda: metrics.emd(np.ones((2, 10)) / 10, np.full((2, 10), np.nan)), "true_dist: 20 non-finite"),
        (lambda: metrics.srcc(np.ones((3, 2)), np.ones((3, 2))), r"shape \(N,\)"),
    ],
)
def test_bad_input_raises_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
