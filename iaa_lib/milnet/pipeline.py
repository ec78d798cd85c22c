"""The MILNet chapter's pipeline: data with cached features and train-only references, and the training recipe.

``milnet_graph_data(dataset, config="smoke", ...) -> iaa_lib.blocks.retrieval.ReferenceGraphData``
    ``dataset``:

    * ``"synthetic"``: ``make_synthetic(n_synthetic, <run_dir>/synthetic_<size>_<n>_<seed>)``, generated once
      and reused (its frame is pickled next to the images), split 60/20/20 with ``random_split``;
    * ``"ava_sample"``: the 77 embedded AVA photos with their fixed 46/16/15 split;
    * ``"ava"``: a full AVA copy read through a data-check ``manifest`` (the user's AVA.txt, readable images,
      test = generic_test.jpgl), or without one images in ``data_root``, labels from data/labels/ava_votes.csv.gz,
      test = the ILGnet list (``test_list``, one id per line, 19,998 ids); val = a seeded 5 % of the rest
      (the official code has no validation split and hand-picks its checkpoint on test).

    Node and retrieval features are ``NODE_FEATURES[config]`` (multi-level MLSP features, PCA-reduced to
    ``NODE_REDUCED_DIM[config]`` on the training split) / ``RETRIEVAL_FEATURES[config]`` (``iaa_lib.milnet.model``,
    two different networks as in the paper), with their ImageNet weights (``weights="pretrained"``) or built by name
    with random initialisation (``weights="random"``, the rehearsal's explicit switch); features are cached under ``<run_dir>/features`` (content-hashed images
    for the small sets, file size + mtime for full AVA). ``retrieval_input="normalised"`` (default) feeds the
    retrieval backbone its usual resized, normalised input; ``"as_published"`` feeds it the full-resolution
    image scaled to [0, 1] without ImageNet normalisation, as the official script does
    (``as_published_retrieval_transform``).

``MILNetRecipe`` (training settings; the chapter's smoke and full recipes: ``iaa_lib.milnet.chapter``) and
``train_milnet(data, recipe, run_dir, name) -> TrainedMILNet`` (model, history, loss, loaders, out_dir):
builds the datasets (``recipe.num_references``, ``recipe.reference_mode``: retrieved, random, query copies or the
training mean, ``iaa_lib.blocks.retrieval.REFERENCE_MODES``), the model
(``in_dim = data.node_store.dim``), the loss (``"adaemd"``: ``TracedAdaEMDLoss(recipe.inner)``; ``"emd"``:
textbook EMD r=2) and trains with ``fit_or_load`` into ``<run_dir>/train/<name>-<recipe slug>``, so every
notebook asking for the same recipe on the same data reuses one checkpoint. The final loss state (C, τ,
the per-step trace) is read back from ``last.pt``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from iaa_lib.data.labelled_sets import labelled_set
from iaa_lib.data.splits import assert_disjoint
from iaa_lib.losses import EMDLoss
from iaa_lib.milnet.mlsp import mlsp_encoder, pca_reduce
from iaa_lib.milnet.model import NODE_FEATURES, NODE_REDUCED_DIM, RETRIEVAL_FEATURES, MILNet, TracedAdaEMDLoss
from iaa_lib.paths import resolve
from iaa_lib.profiles import backbone_weights, capped_epochs
from iaa_lib.blocks.retrieval import ReferenceGraphData, ReferenceMode, prepare_reference_graph_data

RETRIEVAL_INPUTS = ("normalised", "as_published")


def as_published_retrieval_transform() -> v2.Compose:
    """The official retrieval input: PIL RGB -> float32 [3, H, W] in [0, 1] at full resolution (ToTensor only)."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def node_feature_options(config: str, weights: Literal["pretrained", "random"] = "pretrained") -> dict:
    """prepare_reference_graph_data's node arguments of a config: the feature name and the extractor's factory
    (its pretrained tag, or random init when weights == "random")."""
    name, tag = NODE_FEATURES[config]
    weights = backbone_weights(weights, tag)
    if not name.startswith("mlsp:"):
        return dict(node_backbone=(name, weights))
    return dict(node_backbone=(name, weights), node_encoder=lambda: mlsp_encoder(name.removeprefix("mlsp:"), weights))


def reduce_nodes(data: ReferenceGraphData, config: str) -> ReferenceGraphData:
    """`data` with its node features reduced to NODE_REDUCED_DIM[config] by a PCA of the training rows (if set)."""
    dim = NODE_REDUCED_DIM[config]
    if dim is None or data.node_store.dim == dim:
        return data
    return replace(data, node_store=pca_reduce(data.node_store, data.splits["train"], dim))


def milnet_graph_data(
    dataset: Literal["synthetic", "ava_sample", "ava"],
    config: str = "smoke",
    *,
    image_size: int | None = None,
    k: int = 4,
    metric: Literal["l2", "cosine"] = "l2",
    run_dir: str | os.PathLike = "runs/milnet",
    n_synthetic: int = 300,
    synthetic_size: int = 96,
    data_root: str | os.PathLike | None = None,
    test_list: str | os.PathLike | None = None,
    seed: int = 0,
    retrieval_input: Literal["normalised", "as_published"] = "normalised",
    weights: Literal["pretrained", "random"] = "pretrained",
    manifest: str | os.PathLike | None = None,
    device: str | None = None,
) -> ReferenceGraphData:
    """Splits, cached node/retrieval features and train-only top-k references of a chapter dataset."""
    if config not in NODE_FEATURES:
        raise ValueError(f"config must be one of {sorted(NODE_FEATURES)}, got {config!r}")
    if retrieval_input not in RETRIEVAL_INPUTS:
        raise ValueError(f"retrieval_input must be one of {RETRIEVAL_INPUTS}, got {retrieval_input!r}")
    if manifest and (dataset != "ava" or data_root or test_list):
        raise ValueError(f"manifest={manifest!r} is read for dataset='ava' alone, without data_root or test_list "
                         f"(got dataset={dataset!r}, data_root={data_root!r}, test_list={test_list!r}); pass one "
                         "source of AVA: the data check's manifest, or data_root with test_list")
    frame, image_dir, splits = labelled_set(
        dataset, run_dir=run_dir, n_synthetic=n_synthetic, synthetic_size=synthetic_size,
        data_root=data_root, test_list=test_list, seed=seed, manifest=manifest,
    )
    assert_disjoint(splits)
    retrieval_name, retrieval_tag = RETRIEVAL_FEATURES[config]
    data = prepare_reference_graph_data(
        frame, image_dir, splits, **node_feature_options(config, weights),
        retrieval_backbone=(retrieval_name, backbone_weights(weights, retrieval_tag)),
        cache_dir=resolve(run_dir) / "features", k=k, metric=metric, image_size=image_size,
        retrieval_transform=as_published_retrieval_transform() if retrieval_input == "as_published" else None,
        fingerprint="stat" if dataset == "ava" else "bytes", device=device,
    )
    return reduce_nodes(data, config)


@dataclass(frozen=True)
class MILNetRecipe:
    """How one MILNet head is trained on cached node features (defaults: the CPU smoke run)."""

    config: str = "smoke"
    num_references: int = 4
    reference_mode: ReferenceMode = "retrieved"
    loss: Literal["adaemd", "emd"] = "adaemd"
    inner: Literal["true_emd", "milnet_abs_inside"] = "true_emd"
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    step_epochs: int = 3
    gamma: float = 0.1
    seed: int = 0
    max_steps: int = 0  # 0 = no cap; > 0: at most this many optimiser steps (iaa_lib.profiles.capped_epochs)

    def slug(self) -> str:
        """Short, readable, unique folder name of the recipe (a step cap is named, no cap is not)."""
        loss = f"{self.loss}-{self.inner}" if self.loss == "adaemd" else self.loss
        cap = f"_m{self.max_steps}" if self.max_steps else ""
        return (f"{self.config}_k{self.num_references}_{self.reference_mode}_{loss}_e{self.epochs}_b{self.batch_size}"
                f"_lr{self.lr:g}_{self.schedule}_s{self.seed}{cap}")


@dataclass
class TrainedMILNet:
    """A trained (or loaded) MILNet with its history, final loss state, data loaders and checkpoint folder."""

    model: MILNet
    history: dict
    loss_fn: nn.Module
    loaders: dict[str, DataLoader]
    out_dir: Path


def make_loss(recipe: MILNetRecipe) -> nn.Module:
    """The recipe's training loss: traced AdaEMD with its inner distance, or the textbook EMD (r = 2)."""
    if recipe.loss == "adaemd":
        return TracedAdaEMDLoss(inner=recipe.inner)
    if recipe.loss == "emd":
        return EMDLoss(r=2)
    raise ValueError(f"recipe.loss must be 'adaemd' or 'emd', got {recipe.loss!r}")


def train_milnet(
    data: ReferenceGraphData, recipe: MILNetRecipe, run_dir: str | os.PathLike, name: str, progress: bool = False
) -> TrainedMILNet:
    """Train MILNet on `data` with `recipe` (or load the finished run); see the module docstring."""
    from iaa_lib.training import FitConfig, fit_or_load
    from iaa_lib.training.fingerprint import fingerprint

    datasets = data.datasets(recipe.num_references, reference_mode=recipe.reference_mode, seed=recipe.seed)
    loaders = {
        split: DataLoader(ds, batch_size=recipe.batch_size if split == "train" else 256, shuffle=split == "train")
        for split, ds in datasets.items()
    }
    torch.manual_seed(recipe.seed)
    model = MILNet(recipe.config, in_dim=data.node_store.dim, num_references=recipe.num_references)
    loss_fn = make_loss(recipe)
    out_dir = resolve(run_dir) / "train" / f"{name}-{recipe.slug()}"
    epochs, steps_per_epoch = capped_epochs(recipe.epochs, recipe.max_steps)
    cfg = FitConfig(
        epochs=epochs, max_steps_per_epoch=steps_per_epoch, lr=recipe.lr, optimizer="adam", weight_decay=0.0, schedule=recipe.schedule,
        step_epochs=recipe.step_epochs, gamma=recipe.gamma, target="dist", seed=recipe.seed,
        select_metric="srcc", out_dir=str(out_dir), progress=progress,
        extra={"recipe": asdict(recipe), "node_features": data.node_store.key,
               "retrieval_features": data.retrieval_store.key, "retrieval_metric": data.metric,
               "reference_groups": fingerprint(sorted((data.groups or {}).items()))},
    )
    model, history = fit_or_load(model, loss_fn, loaders["train"], loaders.get("val"), cfg)  # AdaEMD's state too
    model.eval()
    return TrainedMILNet(model, history, loss_fn, loaders, out_dir)
