"""The SSMR chapter in one place: its smoke and full settings, and the set-up its notebooks share.

``settings = PROFILES.resolve(profile, globals())`` gives a notebook's ``SSMRSettings`` (its passed or edited
parameters win); ``chapter = load_chapter(settings)`` seeds every generator, sets torch's threads and returns an
``SSMRChapter`` whose reference set-ups (``synthetic``, ``art``) are built on first use and whose
``train(dataset, ...)`` trains a head through ``fit_or_load`` (loaded when another notebook already trained it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import torch

from iaa_lib.profiles import Profiles, backbone_weights
from iaa_lib.seed import seed_everything
from iaa_lib.ssmr.pipeline import (
    FeatureSource, SSMRRun, art_set_name, art_setup, run_folder, synthetic_setup, train_ssmr,
)
from iaa_lib.ssmr.srig import ReferenceSetup


ChapterSet = Literal["synthetic", "art"]




@dataclass(frozen=True)
class SSMRSettings:
    """One profile of the chapter (defaults: the CPU smoke run). Sizes in px; backbones are timm names."""

    config: str = "smoke"
    backbone_name: str = "timm:tf_efficientnet_lite0"
    backbone_weights: str = "imagenet"  # the pretrained tag of the semantic backbone
    style_backbone_name: str = ""  # "": Gram style from the semantic backbone
    style_weights: str = "imagenet"
    retrieval_backbone_name: str = "timm:tf_efficientnet_lite1"  # semantic retrieval ("": the node backbone's feature)
    retrieval_weights: str = "imagenet"
    shipped_index_dir: str = ""  # the `index` folder of flyingbird93/SSMR, for reference_source="shipped"
    image_size: int = 112  # art features
    stylized_side: int = 160
    n_synthetic: int = 320
    synthetic_size: int = 96  # synthetic images and their features
    alpha: float = 0.5
    num_references: int = 4
    epochs: int = 15
    lr: float = 1e-3
    batch_size: int = 32
    schedule: str = "step"
    step_epochs: int = 10
    gamma: float = 0.1
    threads: int = 1  # 0: all cores
    data_root: str = ""  # a BAID image folder (labels from data/labels); "" = the manifest's set or the demo set
    seed: int = 0
    run_dir: str = "runs/ssmr"
    max_steps: int = 0  # 0 = no cap; > 0: at most this many optimiser steps per training run (the rehearsal)
    weights: str = "pretrained"  # "random": the semantic and style backbones built by name with random init
    manifest: str = ""  # a data-check manifest (BAID, or AVA: the set it names) as the art set

    def features(self) -> FeatureSource:
        """The frozen semantic and style backbones."""
        return FeatureSource(self.backbone_name, backbone_weights(self.weights, self.backbone_weights),
                             self.style_backbone_name, backbone_weights(self.weights, self.style_weights),
                             self.retrieval_backbone_name, backbone_weights(self.weights, self.retrieval_weights))

    def training(self) -> dict[str, Any]:
        """train_ssmr's recipe arguments (head size, optimiser, schedule, seed)."""
        return dict(config=self.config, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                    schedule=self.schedule, step_epochs=self.step_epochs, gamma=self.gamma, seed=self.seed,
                    max_steps=self.max_steps)


PROFILES = Profiles(
    smoke=SSMRSettings(),
    # The code's recipe on BAID (read through the data check's manifest, `python -m iaa_lib data check --dataset baid
    # --root DIR`): SwinV2-B 1024-d semantic features at 256 px with Gram style from a CNN beside it, Adam 3e-5,
    # batch 128, 20 epochs, lr ÷10 every 3 epochs.
    full=SSMRSettings(config="full", backbone_name="timm:swinv2_base_window8_256",
                      style_backbone_name="timm:tf_efficientnet_lite0", retrieval_backbone_name="torchvision:resnet50",
                      image_size=256, synthetic_size=256, epochs=20, lr=3e-5, batch_size=128, step_epochs=3,
                      manifest="runs/data/baid_manifest.csv"),
)


@dataclass
class SSMRChapter:
    """The chapter's reference set-ups for one settings instance, each built on first use, and its training."""

    settings: SSMRSettings
    started: float = field(default_factory=time.perf_counter)  # perf_counter seconds when the chapter was loaded

    def seconds(self) -> float:
        """Seconds since the chapter was loaded."""
        return time.perf_counter() - self.started

    @cached_property
    def synthetic(self) -> ReferenceSetup:
        s = self.settings
        return synthetic_setup(s.features(), s.n_synthetic, s.synthetic_size, s.run_dir, s.seed)

    @cached_property
    def art(self) -> ReferenceSetup:
        s = self.settings
        return art_setup(s.features(), s.image_size, s.data_root, s.run_dir, s.stylized_side, s.manifest, s.seed)

    @property
    def art_name(self) -> str:
        """The art set's name: "baid" (data_root or a BAID manifest), "ava" (an AVA manifest) or "stylized" (demo)."""
        return art_set_name(self.settings.data_root, self.settings.manifest)

    def train(self, dataset: ChapterSet, alpha: float | None = None, num_references: int | None = None,
              reference_source: str = "fused", variant: str = "textbook", seed: int | None = None) -> SSMRRun:
        """train_ssmr on the synthetic or art set (alpha, num_references, seed default to the settings')."""
        if dataset not in ("synthetic", "art"):
            raise ValueError(f"dataset must be 'synthetic' or 'art', got {dataset!r}")
        s = self.settings
        alpha = s.alpha if alpha is None else alpha
        num_references = s.num_references if num_references is None else num_references
        setup, name = (self.synthetic, "synthetic") if dataset == "synthetic" else (self.art, self.art_name)
        recipe = {**s.training(), **({} if seed is None else {"seed": seed})}
        out_dir = run_folder(s.run_dir, name, alpha, num_references, reference_source, variant, recipe["seed"])
        return train_ssmr(setup, out_dir, alpha=alpha, num_references=num_references, reference_source=reference_source,
                          variant=variant, shipped_index_dir=s.shipped_index_dir or None, **recipe)


def load_chapter(settings: SSMRSettings) -> SSMRChapter:
    """Seed every generator with settings.seed, set torch's threads (0: leave all cores), return the set-up."""
    seed_everything(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    return SSMRChapter(settings)
