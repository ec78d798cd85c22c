"""Ablations over training seeds: every variant trained once per seed, scored on the same test images."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import nn
from torch.utils.data import DataLoader

from iaa_lib.metrics import seed_ablation_table
from iaa_lib.training.evaluation import evaluate

TrainedRun = tuple[nn.Module, DataLoader, DataLoader]  # (model, train loader, test loader)


def seed_ablation(variants: Mapping[str, dict[str, Any]], baseline: str, seeds: Sequence[int],
                  train: Callable[[dict[str, Any], int], TrainedRun], n_boot: int = 1000
                  ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """(seed_ablation_table of `variants` vs `baseline` with the mean training-split SRCC `train_srcc`, name -> test
    predictions [seeds, N]); train(change, seed) trains (or loads) one run. ValueError when two runs were scored on
    different test images."""
    predictions, train_srcc, truth, order = {}, {}, None, None
    for name, change in variants.items():
        runs, fitted = [], []
        for seed in seeds:
            model, train_loader, test_loader = train(change, seed)
            fitted.append(evaluate(model, train_loader)["srcc"])
            _, frame = evaluate(model, test_loader, return_predictions=True)
            runs.append(frame["pred_mos"].to_numpy())
            if truth is None:
                truth, order = frame["mos"].to_numpy(), frame["image_id"].tolist()
            elif frame["image_id"].tolist() != order:
                raise ValueError(f"{name} seed {seed} was scored on other test images than the baseline")
        predictions[name], train_srcc[name] = np.stack(runs), float(np.mean(fitted))
    table = seed_ablation_table(truth, predictions, baseline, n_boot=n_boot, seed=int(seeds[0]))
    table["train_srcc"] = pd.Series(train_srcc)
    return table, predictions
