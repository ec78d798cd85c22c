"""Evaluation metrics for aesthetic scores and vote distributions (numpy in, Python float out).

Conventions (see the book's conventions chapter):
- Distributions have the bins on the last axis; bin i (1-based) is the score i, so a 10-bin AVA histogram
  covers scores 1..10.
- Correlations are computed once over the whole test set, never averaged per batch.
- PLCC is the plain Pearson r, as IAA papers report it; the 4-parameter logistic fit is an opt-in,
  labelled option.
- Binary accuracy applies one explicit threshold rule to prediction and ground truth alike:
  ``high_if="gt"`` (score > 5, book default, EAT/AesCLIP) or ``high_if="ge"`` (score >= 5, MILNet/CDCM).
- EMD_r(p, q) = ((1/K) sum_k |CDF_p(k) - CDF_q(k)|^r)^(1/r) per sample, then the mean over samples.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import scipy.optimize
import scipy.stats
import torch

HIGH_IF_RULES = ("gt", "ge")
BOOTSTRAP_CHUNK_VALUES = 2_000_000  # resampled values per array that paired_srcc_bootstrap ranks at once


def _to_numpy(values: Any, name: str) -> np.ndarray:
    """Array of float64 from a list, numpy array or torch tensor (any device, any float dtype)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype in (torch.bfloat16, torch.float16):
            values = values.float()
        values = values.numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected numbers (list, numpy array or torch tensor), got {type(values).__name__}") from error
    return array


def _check_finite(array: np.ndarray, name: str) -> None:
    """Raise ValueError naming the argument if it holds NaN or inf."""
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name}: {bad} non-finite value(s) (NaN/inf); drop or fix those samples before scoring")


def _scores(values: Any, name: str) -> np.ndarray:
    """1-D float64 vector of per-sample scores; (N, 1) is accepted and flattened."""
    array = _to_numpy(values, name)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name}: expected one score per sample, shape (N,), got shape {array.shape}")
    _check_finite(array, name)
    return array


def _score_pair(pred: Any, true: Any, min_samples: int = 1, pred_name: str = "pred", true_name: str = "true") -> tuple[np.ndarray, np.ndarray]:
    """Validated (pred, true) score vectors of equal length >= min_samples."""
    pred_array, true_array = _scores(pred, pred_name), _scores(true, true_name)
    if pred_array.shape != true_array.shape:
        raise ValueError(f"{pred_name} has {pred_array.shape[0]} samples but {true_name} has {true_array.shape[0]}; pass one prediction per ground-truth score")
    if pred_array.shape[0] < min_samples:
        raise ValueError(f"{pred_name}/{true_name}: need at least {min_samples} samples, got {pred_array.shape[0]}")
    return pred_array, true_array


def _correlation_pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated score vectors for a correlation: >= 2 samples and neither argument constant."""
    pred_array, true_array = _score_pair(pred, true, min_samples=2)
    for array, name in ((pred_array, "pred"), (true_array, "true")):
        if np.all(array == array[0]):
            raise ValueError(f"{name} is constant ({array[0]!r} for all {array.size} samples): a correlation is undefined")
    return pred_array, true_array


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two validated, non-constant vectors."""
    x_centred, y_centred = x - x.mean(), y - y.mean()
    r = float(np.dot(x_centred, y_centred) / np.sqrt(np.dot(x_centred, x_centred) * np.dot(y_centred, y_centred)))
    return max(-1.0, min(1.0, r))


def dist_to_mean(dist: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Mean score sum_i i*p_i of distributions over bins 1..K (last axis); returns the same array type, shape dist.shape[:-1]."""
    if dist.shape[-1] < 1:
        raise ValueError(f"dist: last axis must hold the K >= 1 score bins, got shape {tuple(dist.shape)}")
    num_bins = dist.shape[-1]
    if isinstance(dist, torch.Tensor):
        bins = torch.arange(1, num_bins + 1, device=dist.device, dtype=dist.dtype)
        return (dist * bins).sum(dim=-1)
    dist = np.asarray(dist, dtype=np.float64)
    return (dist * np.arange(1, num_bins + 1, dtype=np.float64)).sum(axis=-1)


def dist_to_std(dist: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Standard deviation sqrt(sum_i (i - mean)^2 p_i) of distributions over bins 1..K (last axis), same array type."""
    num_bins = dist.shape[-1]
    mean = dist_to_mean(dist)
    if isinstance(dist, torch.Tensor):
        bins = torch.arange(1, num_bins + 1, device=dist.device, dtype=dist.dtype)
        variance = (dist * (bins - mean.unsqueeze(-1)) ** 2).sum(dim=-1)
        return variance.clamp_min(0).sqrt()
    dist = np.asarray(dist, dtype=np.float64)
    bins = np.arange(1, num_bins + 1, dtype=np.float64)
    variance = (dist * (bins - mean[..., None]) ** 2).sum(axis=-1)
    return np.sqrt(np.maximum(variance, 0.0))


def predicted_mos(pred: torch.Tensor) -> torch.Tensor:
    """Predicted mean score (B,): sum_i i*pred_i for a (B, K) distribution over bins 1..K; identity for (B,) or (B, 1) scores."""
    if pred.ndim == 1:
        return pred
    if pred.ndim == 2 and pred.shape[1] == 1:
        return pred[:, 0]
    if pred.ndim == 2:
        return dist_to_mean(pred)
    raise ValueError(f"pred: expected (B,) scores or a (B, K) distribution, got shape {tuple(pred.shape)}")


def srcc(pred: Any, true: Any) -> float:
    """Spearman rank correlation (Pearson r of average ranks, ties handled) over the whole set."""
    pred_array, true_array = _correlation_pair(pred, true)
    return _pearson(scipy.stats.rankdata(pred_array), scipy.stats.rankdata(true_array))


def _logistic4(x: np.ndarray, top: float, bottom: float, centre: float, scale: float) -> np.ndarray:
    """4-parameter logistic (bottom..top, centred at centre, slope 1/|scale|) used for the optional PLCC fit."""
    return (top - bottom) / (1.0 + np.exp(-(x - centre) / np.abs(scale))) + bottom


def plcc(pred: Any, true: Any, logistic: bool = False) -> float:
    """Pearson linear correlation; logistic=True first maps pred through a fitted 4-parameter logistic (label it when reported)."""
    pred_array, true_array = _correlation_pair(pred, true)
    if logistic:
        initial = [true_array.max(), true_array.min(), float(np.mean(pred_array)), float(np.std(pred_array)) or 1.0]
        try:
            params, _ = scipy.optimize.curve_fit(_logistic4, pred_array, true_array, p0=initial, maxfev=20000)
        except RuntimeError as error:
            raise ValueError(f"plcc(logistic=True): the 4-parameter logistic fit did not converge ({error}); report plain PLCC instead") from error
        pred_array = _logistic4(pred_array, *params)
        if np.all(pred_array == pred_array[0]):
            raise ValueError("plcc(logistic=True): the fitted logistic is flat, so the correlation is undefined")
    return _pearson(pred_array, true_array)


def krcc(pred: Any, true: Any) -> float:
    """Kendall rank correlation, tau-b (tie-corrected)."""
    pred_array, true_array = _correlation_pair(pred, true)
    return float(scipy.stats.kendalltau(pred_array, true_array, variant="b").statistic)


def binarize(scores: Any, threshold: float = 5.0, high_if: str = "gt") -> np.ndarray:
    """Boolean 'high aesthetic' labels: score > threshold (high_if="gt") or score >= threshold (high_if="ge")."""
    if high_if not in HIGH_IF_RULES:
        raise ValueError(f"high_if must be one of {HIGH_IF_RULES} ('gt': score > threshold, 'ge': score >= threshold), got {high_if!r}")
    array = _scores(scores, "scores")
    return array > threshold if high_if == "gt" else array >= threshold


def accuracy(pred_mos: Any, true_mos: Any, threshold: float = 5.0, high_if: str = "gt") -> float:
    """Binary accuracy in [0, 1], the same threshold rule applied to predicted and true mean scores."""
    pred_array, true_array = _score_pair(pred_mos, true_mos, pred_name="pred_mos", true_name="true_mos")
    return float(np.mean(binarize(pred_array, threshold, high_if) == binarize(true_array, threshold, high_if)))


def mse(pred: Any, true: Any) -> float:
    """Mean squared error, in squared units of the score scale passed in."""
    pred_array, true_array = _score_pair(pred, true)
    return float(np.mean((pred_array - true_array) ** 2))


def rmse(pred: Any, true: Any) -> float:
    """Root mean squared error, in units of the score scale passed in."""
    return float(np.sqrt(mse(pred, true)))


def mae(pred: Any, true: Any) -> float:
    """Mean absolute error, in units of the score scale passed in."""
    pred_array, true_array = _score_pair(pred, true)
    return float(np.mean(np.abs(pred_array - true_array)))


def emd(pred_dist: Any, true_dist: Any, r: float = 1) -> float:
    """Mean over samples of ((1/K) sum_k |CDF_pred - CDF_true|^r)^(1/r) for (N, K) distributions (r=1: EMD1, r=2: EMD2)."""
    if not r >= 1:
        raise ValueError(f"r must be >= 1 (EMD_r is defined for r >= 1), got {r!r}")
    pred_array, true_array = _to_numpy(pred_dist, "pred_dist"), _to_numpy(true_dist, "true_dist")
    if pred_array.ndim != 2:
        raise ValueError(f"pred_dist: expected shape (N, K), got {pred_array.shape}")
    if pred_array.shape != true_array.shape:
        raise ValueError(f"pred_dist shape {pred_array.shape} != true_dist shape {true_array.shape}; both must be (N, K) with the same bins")
    if pred_array.shape[0] < 1:
        raise ValueError("pred_dist/true_dist: need at least 1 sample")
    _check_finite(pred_array, "pred_dist")
    _check_finite(true_array, "true_dist")
    cdf_gap = np.abs(np.cumsum(pred_array - true_array, axis=-1))
    per_sample = np.mean(cdf_gap**r, axis=-1) ** (1.0 / r)
    return float(np.mean(per_sample))


def score_metrics(
    pred_mos: Any,
    true_mos: Any,
    pred_dist: Any = None,
    true_dist: Any = None,
    threshold: float = 5.0,
    high_if: str = "gt",
) -> dict[str, float | int]:
    """Whole-set metrics dict: srcc, plcc (plain Pearson), krcc, acc, mse, rmse, mae, n, and emd1, emd2 when both dists are given."""
    pred_array, true_array = _score_pair(pred_mos, true_mos, min_samples=2, pred_name="pred_mos", true_name="true_mos")
    if (pred_dist is None) != (true_dist is None):
        missing = "true_dist" if true_dist is None else "pred_dist"
        raise ValueError(f"score_metrics: pass both pred_dist and true_dist for EMD, or neither ({missing} is missing)")
    results: dict[str, float | int] = {
        "srcc": srcc(pred_array, true_array),
        "plcc": plcc(pred_array, true_array),
        "krcc": krcc(pred_array, true_array),
        "acc": accuracy(pred_array, true_array, threshold, high_if),
        "mse": mse(pred_array, true_array),
        "rmse": rmse(pred_array, true_array),
        "mae": mae(pred_array, true_array),
        "n": int(pred_array.shape[0]),
    }
    if pred_dist is not None:
        pred_dist_array = _to_numpy(pred_dist, "pred_dist")
        if pred_dist_array.shape[:1] != pred_array.shape:
            raise ValueError(f"pred_dist has {pred_dist_array.shape[:1]} samples but pred_mos has {pred_array.shape[0]}")
        results["emd1"] = emd(pred_dist_array, true_dist, r=1)
        results["emd2"] = emd(pred_dist_array, true_dist, r=2)
    return results


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    pred: Any,
    true: Any,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) confidence interval of metric_fn(pred, true), resampling samples (first axis) with replacement."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    pred_array, true_array = _to_numpy(pred, "pred"), _to_numpy(true, "true")
    if pred_array.ndim == 0 or true_array.ndim == 0 or pred_array.shape[0] != true_array.shape[0]:
        raise ValueError(f"pred shape {pred_array.shape} and true shape {true_array.shape}: need the same number of samples on the first axis")
    num_samples = pred_array.shape[0]
    if num_samples < 2:
        raise ValueError(f"pred/true: need at least 2 samples to bootstrap, got {num_samples}")
    rng = np.random.default_rng(seed)
    estimates = np.empty(n_boot, dtype=np.float64)
    for index in range(n_boot):
        resample = rng.integers(0, num_samples, size=num_samples)
        estimates[index] = metric_fn(pred_array[resample], true_array[resample])
    low, high = np.quantile(estimates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _centred_ranks(rows: np.ndarray) -> np.ndarray:
    """Average ranks (ties shared) of each row of a (B, N) array, minus the row's mean rank."""
    ranks = scipy.stats.rankdata(rows, axis=1)
    return ranks - ranks.mean(axis=1, keepdims=True)


def _rank_correlation(pred_ranks: np.ndarray, true_ranks: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r of centred ranks (B,); 0 where either row is constant."""
    norms = np.sqrt((pred_ranks**2).sum(axis=1) * (true_ranks**2).sum(axis=1))
    covariance = (pred_ranks * true_ranks).sum(axis=1)
    return np.divide(covariance, norms, out=np.zeros_like(covariance), where=norms > 0)


def srcc_rows(pred_rows: np.ndarray, true_rows: np.ndarray) -> np.ndarray:
    """SRCC of each row pair of (B, N) arrays (average ranks for ties); a row where either side is constant gets 0."""
    return _rank_correlation(_centred_ranks(pred_rows), _centred_ranks(true_rows))


def bootstrap_rows(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n) row indices drawn with replacement, ``np.random.default_rng(seed).integers(0, n, (n_boot, n))``:
    the resamples of every paired bootstrap (here and in the comparison), shared by all calls with the same n,
    n_boot and seed."""
    if n < 2:
        raise ValueError(f"need at least 2 test images to bootstrap, got {n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def paired_srcc_bootstrap(true: Any, predictions: Sequence[Any], n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(SRCC of each prediction on the whole set (P,), SRCC of each on every bootstrap resample (P, n_boot)).

    Resample k takes the rows ``bootstrap_rows(N, n_boot, seed)[k]`` of truth and of every prediction, so all
    predictions (and calls with the same N, n_boot and seed) share their resamples. A prediction that is constant (in the whole set or in a resample) ranks nothing: its SRCC there counts as 0."""
    true_array = _scores(true, "true")
    arrays = np.stack([_score_pair(pred, true_array, min_samples=2, pred_name=f"predictions[{k}]")[0]
                       for k, pred in enumerate(predictions)])
    if np.all(true_array == true_array[0]):
        raise ValueError(f"true is constant ({true_array[0]!r} for all {true_array.size} samples): a correlation is undefined")
    rows = bootstrap_rows(true_array.size, n_boot, seed)
    whole = srcc_rows(arrays, np.broadcast_to(true_array, arrays.shape))
    resampled = np.empty((len(arrays), n_boot))
    chunk = max(1, BOOTSTRAP_CHUNK_VALUES // true_array.size)  # resamples scored at once (bounds the memory)
    for start in range(0, n_boot, chunk):
        block = rows[start:start + chunk]
        true_ranks = _centred_ranks(true_array[block])
        resampled[:, start:start + chunk] = [_rank_correlation(_centred_ranks(array[block]), true_ranks) for array in arrays]
    return whole, resampled


def paired_srcc_difference(
    true: Any, pred_a: Any, pred_b: Any, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(SRCC(a) - SRCC(b), its percentile-bootstrap (1 - alpha) interval low, high) on shared resamples
    (paired_srcc_bootstrap)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    whole, resampled = paired_srcc_bootstrap(true, [pred_a, pred_b], n_boot, seed)
    low, high = np.quantile(resampled[0] - resampled[1], [alpha / 2, 1 - alpha / 2])
    return float(whole[0] - whole[1]), float(low), float(high)


def seed_paired_difference(
    true: Any, with_mechanism: Sequence[Any], without: Sequence[Any], n_boot: int = 1000, alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """A mechanism's ablation over training seeds: mean over seeds of SRCC(with) - SRCC(without), with its
    percentile-bootstrap (1 - alpha) interval on shared resamples (paired_srcc_bootstrap).

    true (N,); with_mechanism, without: one prediction (N,) per training seed, in the same seed order. Every
    resample scores every seed's pair on the same images, so the interval covers test sampling and the seeds'
    spread. Returns dict(difference, low, high, per_seed (S,), with_srcc (S,), without_srcc (S,)) as floats/lists."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    truth = _scores(true, "true")
    a, b = np.asarray(with_mechanism, dtype=np.float64), np.asarray(without, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != truth.size:
        raise ValueError(f"predictions must both be [seeds, {truth.size}], got {a.shape} and {b.shape}")
    if truth.size < 3:
        raise ValueError(f"need at least 3 test images, got {truth.size}")
    seeds = len(a)
    whole, resampled = paired_srcc_bootstrap(truth, [*a, *b], n_boot, seed)
    draws = (resampled[:seeds] - resampled[seeds:]).mean(axis=0)
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    per_seed = whole[:seeds] - whole[seeds:]
    return dict(difference=float(per_seed.mean()), low=float(low), high=float(high), per_seed=per_seed.tolist(),
                with_srcc=whole[:seeds].tolist(), without_srcc=whole[seeds:].tolist())


def seed_ablation_table(true: Sequence[float], predictions: dict[str, Sequence[Sequence[float]]], baseline: str,
                        n_boot: int = 1000, seed: int = 0) -> Any:
    """One row per variant of `predictions` (name -> one prediction [N] per training seed, seeds in the same order
    for every variant): mean and sd over seeds of the test SRCC, and the seed-paired difference to `baseline` with
    its bootstrap interval (seed_paired_difference). Columns: srcc, srcc_sd, seeds, difference, low, high."""
    import pandas as pd

    if baseline not in predictions:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {sorted(predictions)}")
    rows = {}
    for name, preds in predictions.items():
        paired = seed_paired_difference(true, preds, predictions[baseline], n_boot=n_boot, seed=seed)
        scores = np.asarray(paired["with_srcc"])
        rows[name] = dict(srcc=float(scores.mean()), srcc_sd=float(scores.std(ddof=1)) if scores.size > 1 else 0.0,
                          seeds=int(scores.size), difference=paired["difference"], low=paired["low"],
                          high=paired["high"])
    return pd.DataFrame.from_dict(rows, orient="index")
