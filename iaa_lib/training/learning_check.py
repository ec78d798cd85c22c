"""Paired learning check: does a trained model rank the test images better than the same model untrained and
than a trivial image-statistics baseline, by more than the bootstrap's noise?

All three predictions are scored on the same test images and the same bootstrap resamples
(`iaa_lib.metrics.paired_srcc_difference`), so the intervals are those of the paired differences.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from torch import nn
from torch.utils.data import DataLoader

from iaa_lib.metrics import paired_srcc_bootstrap
from iaa_lib.seed import seed_everything
from iaa_lib.training.evaluation import evaluate


@dataclass(frozen=True)
class LearningCheck:
    """SRCCs on n test images, paired-bootstrap differences (point, low, high) and whether both lows are > 0."""

    n: int
    srcc_trained: float
    srcc_untrained: float
    srcc_baseline: float
    over_untrained: tuple[float, float, float]  # SRCC(trained) - SRCC(untrained), its interval low and high
    over_baseline: tuple[float, float, float]  # SRCC(trained) - SRCC(baseline), its interval low and high
    alpha: float
    n_boot: int
    learned: bool

    def as_dict(self) -> dict:
        """JSON-able dict of every field (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    def __str__(self) -> str:
        level = f"{100 * (1 - self.alpha):g}%"
        gain = lambda d: f"{d[0]:+.3f} ({level} CI {d[1]:+.3f} to {d[2]:+.3f})"  # noqa: E731
        return (f"SRCC on {self.n} test images: trained {self.srcc_trained:.3f}, untrained {self.srcc_untrained:.3f}, "
                f"image-statistics baseline {self.srcc_baseline:.3f}; trained - untrained {gain(self.over_untrained)}, "
                f"trained - baseline {gain(self.over_baseline)}: {'learned' if self.learned else 'NOT shown to learn'}")


def learning_check(
    truth: Any, trained: Any, untrained: Any, baseline: Any, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> LearningCheck:
    """LearningCheck of three score vectors (N,) for the same N test images, in the same order, against truth (N,).

    learned is True when the (1 - alpha) paired-bootstrap intervals of SRCC(trained) - SRCC(untrained) and of
    SRCC(trained) - SRCC(baseline) both lie above 0. A constant prediction ranks nothing: its SRCC counts as 0."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    whole, resampled = paired_srcc_bootstrap(truth, [trained, untrained, baseline], n_boot, seed)

    def gain(other: int) -> tuple[float, float, float]:
        low, high = np.quantile(resampled[0] - resampled[other], [alpha / 2, 1 - alpha / 2])
        return float(whole[0] - whole[other]), float(low), float(high)

    over_untrained, over_baseline = gain(1), gain(2)
    return LearningCheck(
        n=len(truth), srcc_trained=float(whole[0]), srcc_untrained=float(whole[1]), srcc_baseline=float(whole[2]),
        over_untrained=over_untrained, over_baseline=over_baseline, alpha=alpha, n_boot=n_boot,
        learned=over_untrained[1] > 0 and over_baseline[1] > 0,
    )


def untrained_predictions(model_factory: Callable[[], nn.Module], loader: DataLoader, seed: int = 0) -> pd.DataFrame:
    """Prediction frame (image_id, mos, pred_mos[, pred_dist_k]) of model_factory() built right after
    seed_everything(seed) and scored on `loader` untrained, in eval mode.

    This is the model `fit` would start from when the caller seeds and builds it the same way (fit does not
    re-initialise weights). Equivalently, score the very model object before passing it to fit / fit_or_load:
    ``evaluate(model, test_loader, return_predictions=True)[1]``."""
    seed_everything(seed)
    return evaluate(model_factory(), loader, return_predictions=True)[1]
