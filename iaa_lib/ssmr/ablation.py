"""SSMR's mechanism, measured: the same head trained with each way of filling the reference nodes, over seeds.

``reference_ablation(chapter, seeds, n_boot)`` trains (or loads) the chapter's head on the synthetic set once per
training seed and reference source (no references; the fused SRIG references; random training images; copies of
the query; the training means of node and style features) and scores every run on the same test images. Returns
(table, predictions): ``iaa_lib.metrics.seed_ablation_table`` against the query-only head, with the mean
training-split SRCC (``train_srcc``), and the per-seed test predictions.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from iaa_lib.training.ablation import seed_ablation

BASELINE = "no refs (query only)"
VARIANTS: dict[str, dict] = {
    BASELINE: dict(num_references=0),
    "fused refs": dict(reference_source="fused"),
    "random refs": dict(reference_source="random"),
    "query copies": dict(reference_source="query_copies"),
    "training-mean refs": dict(reference_source="mean"),
}


def reference_ablation(chapter, seeds: Sequence[int], n_boot: int = 1000, dataset: str = "synthetic"
                       ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """(seed_ablation_table of VARIANTS vs BASELINE with train_srcc, name -> test predictions [seeds, N])."""
    def train(change: dict, seed: int):
        run = chapter.train(dataset, seed=seed, **change)
        return (run.model, DataLoader(run.datasets["train"], batch_size=256),
                DataLoader(run.datasets["test"], batch_size=256))

    return seed_ablation(VARIANTS, BASELINE, seeds, train, n_boot)
