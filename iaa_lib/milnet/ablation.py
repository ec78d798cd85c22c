"""MILNet's mechanism, measured: the same head trained with each way of filling the reference nodes, over seeds.

``reference_ablation(chapter, seeds, n_boot)`` trains (or loads) the chapter's recipe on the synthetic set once per
training seed and reference mode (0 references; 4 retrieved; 4 random training images; 4 copies of the query;
4 x the training mean node feature) and scores every run on the same test images. Returns (table, predictions):
``iaa_lib.metrics.seed_ablation_table`` against the query-only head plus the mean training-split SRCC
(``train_srcc``: how closely each head fits its own training graphs), and the per-seed test predictions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from iaa_lib.training.ablation import seed_ablation

BASELINE = "0 references (query only)"
VARIANTS: dict[str, dict] = {
    BASELINE: dict(num_references=0),
    "4 retrieved references": dict(reference_mode="retrieved"),
    "4 random references": dict(reference_mode="random"),
    "4 copies of the query": dict(reference_mode="query_copies"),
    "4 x training-mean feature": dict(reference_mode="mean"),
}


def reference_ablation(chapter, seeds: Sequence[int], n_boot: int = 1000, dataset: str = "synthetic"
                       ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """(seed_ablation_table of VARIANTS vs BASELINE, name -> test predictions [seeds, N]) on `dataset`'s test split."""
    def train(change: dict, seed: int):
        trained = chapter.train(dataset, replace(chapter.recipe, **change, seed=seed))
        return trained.model, trained.loaders["train"], trained.loaders["test"]

    return seed_ablation(VARIANTS, BASELINE, seeds, train, n_boot)


def neighbour_score_srcc(data, split: str = "test", k: int = 4) -> float:
    """SRCC between each `split` query's MOS and the mean MOS of its first k references (what their labels would tell;
    MILNet never sees them)."""
    from iaa_lib.metrics import srcc

    mos = data.frame.set_index(data.frame["image_id"].astype(str))["mos"]
    result = data.references[split]
    mean_reference = [float(mos.loc[refs[:k]].mean()) for refs in result.ref_ids]
    return float(srcc(np.asarray(mean_reference), mos.loc[result.query_ids].to_numpy()))
