"""Why an expert collapses: what the prefix input carries (linear probes) and how varied the written sentences are."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.stats
import torch


def ridge_probe_srcc(features: torch.Tensor, target: Sequence[float], train: Sequence[int], test: Sequence[int],
                     alpha: float = 1.0) -> float:
    """SRCC on `test` rows of a ridge regression (features standardised on `train`, penalty alpha x n_train)
    fitted on `train` rows; features (N, D), target (N,)."""
    x = features.double().numpy()
    y = np.asarray(target, dtype=np.float64)
    train, test = np.asarray(train), np.asarray(test)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-8
    x = (x - mean) / std
    a = x[train]
    weights = np.linalg.solve(a.T @ a + alpha * len(train) * np.eye(a.shape[1]), a.T @ (y[train] - y[train].mean()))
    return float(scipy.stats.spearmanr(x[test] @ weights, y[test])[0])


def top_share(sentences: Sequence[str], k: int = 2) -> float:
    """Fraction of the sentences that are one of the k most frequent ones."""
    _, counts = np.unique(np.asarray(sentences, dtype=object).astype(str), return_counts=True)
    return float(np.sort(counts)[::-1][:k].sum() / len(sentences))
