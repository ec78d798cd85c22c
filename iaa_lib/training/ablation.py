"""A mechanism's ablation over training seeds: SRCC with minus SRCC without, on the same test images."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats


def seed_paired_difference(true: Sequence[float], with_mechanism: Sequence[Sequence[float]],
                           without: Sequence[Sequence[float]], n_boot: int = 1000, alpha: float = 0.05,
                           seed: int = 0) -> dict:
    """Mean over training seeds of SRCC(with) - SRCC(without) with a paired percentile-bootstrap interval.

    true [N]; with_mechanism, without: one prediction [N] per training seed (same order). Each bootstrap draw
    resamples the N test images once and scores every seed's pair on them, so the interval covers test sampling
    and the spread of the seeds. Returns dict(difference, low, high, per_seed [S], with_srcc [S], without_srcc [S]).
    """
    truth = np.asarray(true, dtype=np.float64)
    a, b = np.asarray(with_mechanism, dtype=np.float64), np.asarray(without, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != truth.size:
        raise ValueError(f"predictions must both be [seeds, {truth.size}], got {a.shape} and {b.shape}")
    if truth.size < 3:
        raise ValueError(f"need at least 3 test images, got {truth.size}")

    def srcc(pred: np.ndarray, target: np.ndarray) -> float:
        value = scipy.stats.spearmanr(pred, target)[0]
        return 0.0 if np.isnan(value) else float(value)  # a constant prediction ranks nothing

    with_srcc = np.array([srcc(p, truth) for p in a])
    without_srcc = np.array([srcc(p, truth) for p in b])
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for k in range(n_boot):
        rows = rng.integers(0, truth.size, truth.size)
        draws[k] = np.mean([srcc(p[rows], truth[rows]) - srcc(q[rows], truth[rows]) for p, q in zip(a, b)])
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    per_seed = with_srcc - without_srcc
    return dict(difference=float(per_seed.mean()), low=float(low), high=float(high), per_seed=per_seed.tolist(),
                with_srcc=with_srcc.tolist(), without_srcc=without_srcc.tolist())


def seed_ablation_table(true: Sequence[float], predictions: dict[str, Sequence[Sequence[float]]], baseline: str,
                        n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per variant of `predictions` (name -> one prediction [N] per training seed, seeds in the same order
    for every variant): mean and sd over seeds of the test SRCC, and the seed-paired difference to `baseline` with
    its bootstrap interval (seed_paired_difference). Columns: srcc, srcc_sd, seeds, difference, low, high."""
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
