"""The MILNet chapter in one place: its smoke and full settings, and the set-up its notebooks share.

``settings = PROFILES.resolve(profile, globals())`` gives a notebook's ``MILNetSettings`` (its passed or edited
parameters win); ``chapter = load_chapter(settings)`` sets torch's threads and returns a ``MILNetChapter`` whose
data (``synthetic``, ``real``) are built on first use and whose ``train(dataset, recipe)`` trains a head. Features
and checkpoints are cached under ``settings.run_dir``, so every notebook runs alone: it trains what is not cached
yet and otherwise reloads the checkpoint another notebook wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import torch

from iaa_lib.blocks.retrieval import ReferenceGraphData
from iaa_lib.milnet.pipeline import MILNetRecipe, TrainedMILNet, milnet_graph_data, train_milnet
from iaa_lib.profiles import Profiles


ChapterSet = Literal["synthetic", "real"]




@dataclass(frozen=True)
class MILNetSettings:
    """One profile of the chapter (defaults: the CPU smoke run). Sizes in px, None = each backbone's own size."""

    config: str = "smoke"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "cosine"
    num_references: int = 4  # retrieved per image (k) and used as graph nodes
    inner: str = "true_emd"
    metric: str = "l2"
    n_synthetic: int = 300
    synthetic_size: int = 96
    image_size: int | None = 96
    real_image_size: int | None = 160
    real_dataset: str = "ava_sample"
    data_root: str = ""
    test_list: str = ""
    n_boot: int = 300
    threads: int = 1  # 0: all cores
    seed: int = 0
    run_dir: str = "runs/milnet"
    max_steps: int = 0  # 0 = no cap; > 0: at most this many optimiser steps per training run (the rehearsal)
    weights: str = "pretrained"  # "random": the node and retrieval backbones built by name with random init
    manifest: str = ""  # a data-check manifest: real_dataset "ava" is read from it (labelled_set(manifest=...))

    def recipe(self) -> MILNetRecipe:
        """The training recipe of the chapter's main head."""
        return MILNetRecipe(config=self.config, num_references=self.num_references, inner=self.inner,
                            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, schedule=self.schedule,
                            seed=self.seed, max_steps=self.max_steps)


PROFILES = Profiles(
    smoke=MILNetSettings(),
    # The official schedule: full head, Adam 3e-4, batch 128, 10 epochs, lr ÷10 after epochs 3, 6, 9 (the official
    # code re-creates Adam at each decay; the book keeps its state, the spec's textbook variant). Full AVA from the
    # data check's manifest (`python -m iaa_lib data check --dataset ava --root DIR`): the user's AVA.txt, the official
    # generic_test.jpgl as test, val = a seeded 5 % of the rest. For the ILGnet split instead set manifest="" with
    # data_root (the image folder) and test_list (ILG_test.txt; labels from data/labels).
    # Synthetic images go in at their own 96 px, real photos at each backbone's own size (299 / 224 px).
    full=MILNetSettings(config="full", epochs=10, batch_size=128, lr=3e-4, schedule="step", image_size=96,
                        real_image_size=None, real_dataset="ava", manifest="runs/data/ava_manifest.csv", n_boot=1000,
                        threads=0),
)


@dataclass
class MILNetChapter:
    """The chapter's data and trained heads for one settings instance, each built (or loaded) on first use."""

    settings: MILNetSettings

    @cached_property
    def recipe(self) -> MILNetRecipe:
        return self.settings.recipe()

    def graph_data(self, dataset: ChapterSet, **options: Any) -> ReferenceGraphData:
        """milnet_graph_data of the synthetic or the real set at the settings' sizes (`options` e.g. retrieval_input)."""
        s = self.settings
        shared = dict(k=s.num_references, metric=s.metric, run_dir=s.run_dir, seed=s.seed, weights=s.weights, **options)
        if dataset == "synthetic":
            return milnet_graph_data("synthetic", s.config, image_size=s.image_size, n_synthetic=s.n_synthetic,
                                     synthetic_size=s.synthetic_size, **shared)
        if dataset == "real":
            return milnet_graph_data(s.real_dataset, s.config, image_size=s.real_image_size,
                                     data_root=s.data_root or None, test_list=s.test_list or None,
                                     manifest=s.manifest or None, **shared)
        raise ValueError(f"dataset must be 'synthetic' or 'real', got {dataset!r}")

    @cached_property
    def synthetic(self) -> ReferenceGraphData:
        return self.graph_data("synthetic")

    @cached_property
    def real(self) -> ReferenceGraphData:
        return self.graph_data("real")

    def train(self, dataset: ChapterSet, recipe: MILNetRecipe | None = None) -> TrainedMILNet:
        """train_milnet on the synthetic or real set with `recipe` (default: the chapter's), loaded when cached."""
        if dataset not in ("synthetic", "real"):
            raise ValueError(f"dataset must be 'synthetic' or 'real', got {dataset!r}")
        data, name = (self.synthetic, "synthetic") if dataset == "synthetic" else (self.real, self.settings.real_dataset)
        return train_milnet(data, recipe or self.recipe, self.settings.run_dir, name)


def load_chapter(settings: MILNetSettings) -> MILNetChapter:
    """Set torch's thread count from the settings (0: leave all cores) and return the chapter's lazy set-up."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    return MILNetChapter(settings)
