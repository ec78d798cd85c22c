"""The NIMA baseline's recipe and data: the settings of the foundations chapter's baseline notebook, written once.

``NIMASettings`` (one frozen dataclass; ``NIMA_PROFILES.smoke`` = EfficientNet-Lite0 on a CPU,
``NIMA_PROFILES.full`` = Inception-v3 at 224 px), read by the baseline notebook and by the comparison;
``baseline_data(dataset, settings, run_dir, mean, std)`` gives a set's parts, image folder and loaders;
``new_nima(settings)`` builds the model (random init by the explicit switch weights="random").
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from torch import nn
from torch.utils.data import DataLoader

from iaa_lib.data.datasets import split_loaders
from iaa_lib.data.labelled_sets import labelled_set
from iaa_lib.data.splits import apply_split
from iaa_lib.nima.model import NIMA
from iaa_lib.paths import resolve
from iaa_lib.profiles import Profiles, check_rehearsal_switches
from iaa_lib.training import FitConfig

SYNTHETIC_RATIOS = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class NIMASettings:
    """How the baseline is trained: AdamW, cosine schedule after a half-epoch warm-up, the backbone at its own lr.

    n_synthetic, synthetic_size (px): the synthetic set; data_root: another folder in the embedded AVA sample's
    layout ("" = the sample); manifest: the AVA data check's manifest (`python -m iaa_lib data check --dataset
    ava`): the real-photo runs then read full AVA with its official test list instead of the sample; threads:
    torch's CPU threads (0 = torch's default). Rehearsal: max_steps (> 0: at most this many optimiser steps per
    training run), weights ("random": the backbone built by name with random init instead of its ImageNet
    weights)."""

    config: str = "smoke"
    image_size: int = 128
    epochs: int = 6
    batch_size: int = 16
    lr: float = 3e-3
    backbone_lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    n_synthetic: int = 200
    synthetic_size: int = 96
    data_root: str = ""
    threads: int = 1
    seed: int = 0
    max_steps: int = 0
    weights: str = "pretrained"
    manifest: str = ""

    def __post_init__(self) -> None:
        check_rehearsal_switches(self)

    def fit_config(self, out_dir: str | os.PathLike, progress: bool = True) -> FitConfig:
        """The engine's settings for this recipe, checkpoints in out_dir (a notebook path such as runs/x/y)."""
        return FitConfig(epochs=self.epochs, lr=self.lr, backbone_lr=self.backbone_lr, weight_decay=self.weight_decay,
                         schedule="cosine", warmup_epochs=self.warmup_epochs, seed=self.seed,
                         channels_last=True,  # same maths (outputs within 1e-7), ~1.7x faster CPU train steps
                         out_dir=str(resolve(out_dir)), progress=progress, max_steps=self.max_steps or None)

    @property
    def real_set(self) -> Literal["ava", "ava_sample"]:
        """The real-photo data set: full AVA through the manifest when one is set, else the embedded sample."""
        return "ava" if self.manifest else "ava_sample"


def new_nima(settings: NIMASettings) -> NIMA:
    """NIMA at settings.config: its backbone's pretrained weights, or random init when settings.weights == "random".

    Random init: every batch norm keeps the cumulative mean of the batch statistics it saw (momentum None) instead
    of a running average that starts at mean 0, variance 1. After a rehearsal's two steps the default stats are
    still about those of the init, far from a random deep net's activations, and Inception-v3 in eval mode then
    saturates to one constant prediction (the rehearsal found this: every correlation is undefined)."""
    if settings.weights != "random":
        return NIMA(config=settings.config)
    model = NIMA(config=settings.config, weights=None)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None
    return model


NIMA_PROFILES = Profiles(
    smoke=NIMASettings(),
    full=NIMASettings(config="full", image_size=224, epochs=20, batch_size=64, lr=3e-4, backbone_lr=3e-5,
                      n_synthetic=4000, synthetic_size=224, threads=0, manifest="runs/data/ava_manifest.csv"),
)


def baseline_data(
    dataset: Literal["synthetic", "ava_sample", "ava"],
    settings: NIMASettings,
    run_dir: str | os.PathLike,
    mean: Sequence[float],
    std: Sequence[float],
) -> tuple[dict[str, pd.DataFrame], Path | None, dict[str, DataLoader]]:
    """({split: label frame}, image folder or None, {split: loader}) of the synthetic set (70/15/15, cached under
    run_dir), the embedded AVA sample (its fixed split) or full AVA through settings.manifest (the official test
    list, a seeded 5 % validation split), normalised with the backbone's mean and std."""
    frame, image_dir, splits = labelled_set(dataset, run_dir=run_dir, n_synthetic=settings.n_synthetic,
                                            synthetic_size=settings.synthetic_size, data_root=settings.data_root or None,
                                            seed=settings.seed, synthetic_ratios=SYNTHETIC_RATIOS,
                                            manifest=settings.manifest or None)
    parts = apply_split(frame, splits)
    loaders = split_loaders(parts, image_dir, settings.image_size, mean, std, batch_size=settings.batch_size,
                            seed=settings.seed, cache_images=dataset != "ava")
    return parts, image_dir, loaders
