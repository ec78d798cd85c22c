"""The SSMR chapter's pipeline: prepare a dataset's references (SRIG) and train the graph head (MRGR) on them.

Shared by the chapter's notebooks so that the same parameters give the same cached features, references
and checkpoint (`fit_or_load` keys the run on its configuration).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from iaa_lib.data.baid import load_baid
from iaa_lib.data.labelled_sets import labelled_set
from iaa_lib.data.sample import sample_splits
from iaa_lib.ssmr.stylize import make_stylized, split_by_content
from iaa_lib.data.transforms import eval_transform
from iaa_lib.blocks.backbones import create_backbone
from iaa_lib.ssmr.model import SSMR, SSMRLoss
from iaa_lib.data.check import read_manifest_summary
from iaa_lib.paths import resolve
from iaa_lib.profiles import capped_epochs
from iaa_lib.blocks.retrieval import SearchResult, extract_features, random_references
from iaa_lib.ssmr.srig import (
    ReferenceSetup, SSMRGraphDataset, build_reference_setup, extract_semantic_and_style, extract_style,
    load_shipped_index,
)
from iaa_lib.training import FitConfig, fit_or_load

SYNTHETIC_RATIOS = (0.7, 0.15, 0.15)  # train / val / test of the synthetic set


def prepare_references(
    frame: pd.DataFrame,
    splits: dict[str, list[str]],
    backbone: nn.Module,
    weights: str | None,
    image_size: int,
    cache_dir: str | os.PathLike,
    style_backbone: nn.Module | None = None,
    style_weights: str | None = None,
    retrieval_backbone: nn.Module | None = None,
    retrieval_weights: str | None = None,
) -> ReferenceSetup:
    """Cached semantic + style features of `frame` at image_size px and train-only indices over `splits`.

    Style = Gram matrices of `style_backbone`'s early layers when given (e.g. a CNN beside a Swin semantic
    backbone), else of `backbone`'s, in the same pass as the semantic feature. With `retrieval_backbone`, the
    semantic distance is measured on its pooled features while the graph's nodes stay `backbone`'s (as in the
    code: ResNet-50 retrieval, Swin nodes). A frame with a `content_id` column (renderings of one photo) keeps
    each query's own photo out of its references.
    """
    transform = eval_transform(image_size, backbone.mean, backbone.std)
    if style_backbone is None:
        semantic, style = extract_semantic_and_style(
            frame, backbone=backbone, backbone_name=backbone.name, weights=weights, transform=transform,
            cache_dir=resolve(cache_dir),
        )
    else:
        semantic = extract_features(frame, backbone=backbone, backbone_name=backbone.name, weights=weights,
                                    transform=transform, cache_dir=resolve(cache_dir))
        style = extract_style(
            frame, backbone=style_backbone, backbone_name=style_backbone.name, weights=style_weights,
            transform=eval_transform(image_size, style_backbone.mean, style_backbone.std), cache_dir=resolve(cache_dir),
        )
    nodes = None
    if retrieval_backbone is not None:
        nodes, semantic = semantic, extract_features(
            frame, backbone=retrieval_backbone, backbone_name=retrieval_backbone.name, weights=retrieval_weights,
            transform=eval_transform(image_size, retrieval_backbone.mean, retrieval_backbone.std),
            cache_dir=resolve(cache_dir))
    groups = dict(zip(frame["image_id"].astype(str), frame["content_id"].astype(str))) if "content_id" in frame else None
    return build_reference_setup(frame, splits, semantic, style, nodes=nodes, groups=groups)


ART_MANIFEST_SETS = ("baid", "ava")


def art_set_name(data_root: str | os.PathLike | None, manifest: str | os.PathLike | None) -> str:
    """"baid" with data_root, the manifest's own dataset ("baid" or "ava") with a manifest, else "stylized"."""
    if data_root and manifest:
        raise ValueError(f"pass one art set source, not both data_root={str(data_root)!r} and manifest="
                         f"{str(manifest)!r}: the manifest of `python -m iaa_lib data check --dataset baid` already "
                         "names the image folder")
    if data_root:
        return "baid"
    if not manifest:
        return "stylized"
    dataset = read_manifest_summary(resolve(manifest))["dataset"]
    if dataset not in ART_MANIFEST_SETS:
        raise ValueError(f"{manifest} is a {dataset!r} manifest; SSMR reads {ART_MANIFEST_SETS} manifests")
    return dataset


def art_set(data_root: str | os.PathLike | None, run_dir: str | os.PathLike = "runs/ssmr",
            stylized_side: int = 160, manifest: str | os.PathLike | None = None,
            seed: int = 0) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """(label frame, splits) of the chapter's art data: BAID's official train/val/test with images in data_root;
    or a data-check manifest's set (BAID's official splits; AVA: generic_test.jpgl as test, val a seeded 5 %
    of the rest); or else the style-varied demo set (longest side stylized_side px), split by source photo."""
    name = art_set_name(data_root, manifest)
    if manifest:
        frame, _, splits = labelled_set(name, manifest=manifest, seed=seed)
        return frame, splits
    if data_root:
        frames = {name: load_baid(name, data_root) for name in ("train", "val", "test")}
        return pd.concat(frames.values(), ignore_index=True), {name: part["image_id"].tolist() for name, part in frames.items()}
    frame = make_stylized(resolve(f"{run_dir}/stylized"), max_side=stylized_side)
    return frame, split_by_content(frame, sample_splits())


@dataclass(frozen=True)
class FeatureSource:
    """The frozen backbones of SSMR's features: nodes = pooled `backbone_name` output, style = Gram matrices
    of `style_backbone_name`'s early layers ("" = the node backbone's), semantic retrieval = pooled
    `retrieval_backbone_name` output ("" = the node feature), backbone names with their weights."""

    backbone_name: str = "timm:tf_efficientnet_lite0"
    weights: str | None = "imagenet"
    style_backbone_name: str = ""
    style_weights: str | None = "imagenet"
    retrieval_backbone_name: str = ""
    retrieval_weights: str | None = "imagenet"

    def setup(self, frame: pd.DataFrame, splits: dict[str, list[str]], image_size: int,
              cache_dir: str | os.PathLike) -> ReferenceSetup:
        """prepare_references with these backbones (features cached in cache_dir)."""
        backbone = create_backbone(self.backbone_name, weights=self.weights)
        style = create_backbone(self.style_backbone_name, weights=self.style_weights) if self.style_backbone_name else None
        retrieval = (create_backbone(self.retrieval_backbone_name, weights=self.retrieval_weights)
                     if self.retrieval_backbone_name else None)
        return prepare_references(frame, splits, backbone, self.weights, image_size, cache_dir, style, self.style_weights,
                                  retrieval, self.retrieval_weights)


def synthetic_setup(features: FeatureSource, n_synthetic: int, synthetic_size: int,
                    run_dir: str | os.PathLike = "runs/ssmr", seed: int = 0) -> ReferenceSetup:
    """References of the book's cached synthetic set (labelled_set), split 70/15/15, features at synthetic_size px."""
    frame, _, splits = labelled_set("synthetic", run_dir=run_dir, n_synthetic=n_synthetic,
                                    synthetic_size=synthetic_size, seed=seed, synthetic_ratios=SYNTHETIC_RATIOS)
    return features.setup(frame, splits, synthetic_size, f"{run_dir}/features")


def art_setup(features: FeatureSource, image_size: int, data_root: str | os.PathLike | None = None,
              run_dir: str | os.PathLike = "runs/ssmr", stylized_side: int = 160,
              manifest: str | os.PathLike | None = None, seed: int = 0) -> ReferenceSetup:
    """References of art_set(data_root, ..., manifest, seed) with features at image_size px."""
    frame, splits = art_set(data_root, run_dir, stylized_side, manifest, seed)
    return features.setup(frame, splits, image_size, f"{run_dir}/features")


def run_folder(run_dir: str | os.PathLike, dataset: Literal["synthetic", "stylized", "baid", "ava"], alpha: float,
               num_references: int, reference_source: str = "fused", variant: str = "textbook", seed: int = 0) -> str:
    """<run_dir>/train/<dataset>_a<alpha>_k<num_references>[_<reference_source>][_<variant>][_s<seed>], non-defaults
    named."""
    extras = [value for value, default in ((reference_source, "fused"), (variant, "textbook"), (f"s{seed}", "s0"))
              if value != default]
    return f"{run_dir}/train/" + "_".join([dataset, f"a{alpha}", f"k{num_references}", *extras])


@dataclass
class SSMRRun:
    """One trained SSMR head: its model, training history, per-split graph datasets and references."""

    model: SSMR
    history: dict
    datasets: dict[str, SSMRGraphDataset]
    references: dict[str, SearchResult | dict[str, list[str]] | None]
    sources: dict[str, str]  # split -> where its references came from


def graph_datasets(
    setup: ReferenceSetup, references: dict, num_references: int, alpha: float,
    reference_fill: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, SSMRGraphDataset]:
    """SSMRGraphDataset per split (rows of the setup's frame in split order), nodes from the setup's node store."""
    frame = setup.frame.set_index("image_id", drop=False)
    return {
        name: SSMRGraphDataset(frame.loc[ids].reset_index(drop=True), setup.node_store, setup.style, references[name],
                               num_references=num_references, alpha=alpha, reference_fill=reference_fill)
        for name, ids in setup.splits.items()
    }


REFERENCE_SOURCES = ("fused", "random", "query_copies", "mean", "shipped")
SHIPPED_INDEX_FILE = "AIAA_semantic_style_{split}_refer_50.txt"


def shipped_references(setup: ReferenceSetup, index_dir: str | os.PathLike, alpha: float, k: int
                       ) -> tuple[dict, dict[str, str]]:
    """The authors' SRIG index files (flyingbird93/SSMR ``index/``, SHIPPED_INDEX_FILE) as every split's references,
    leak-checked (load_shipped_index); a split without a file (the train index is not in the stored repository)
    gets the project's fused SRIG, and `sources` says so: ((split -> query -> refs), (split -> source))."""
    folder = resolve(index_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"shipped_index_dir {folder} is not a folder; pass the `index` folder of a clone of "
                                "flyingbird93/SSMR (branch master), which holds " + SHIPPED_INDEX_FILE.format(split="test"))
    held_out = [i for name, ids in setup.splits.items() if name != "train" for i in ids]
    references, sources, project = {}, {}, None
    for split, ids in setup.splits.items():
        path = folder / SHIPPED_INDEX_FILE.format(split=split)
        if path.is_file():
            mapping = load_shipped_index(path, setup.splits["train"], held_out, queries=ids)
            short = [q for q in ids if len(mapping[q]) < k]
            if short:
                raise ValueError(f"{path}: {len(short)} queries have fewer than {k} references (first: {short[0]!r})")
            references[split], sources[split] = {q: mapping[q][:k] for q in ids}, f"shipped: {path.name}"
        else:
            project = project or setup.references(alpha=alpha, k=k)
            references[split], sources[split] = project[split], f"project SRIG (no {path.name} in {folder})"
    if all(source.startswith("project") for source in sources.values()):
        raise FileNotFoundError(f"{folder} holds none of the shipped index files "
                                f"({SHIPPED_INDEX_FILE.format(split='val')}, ...test..., ...train...)")
    return references, sources


def reference_set(setup: ReferenceSetup, source: str, alpha: float, num_references: int, seed: int = 0,
                  shipped_index_dir: str | os.PathLike | None = None) -> tuple[dict, tuple | None, dict[str, str]]:
    """(split -> references, reference_fill or None, split -> source name) for one of REFERENCE_SOURCES: the fused
    SRIG; random training images; k copies of the query; the training means of node and style features (fill);
    the authors' shipped index (shipped_index_dir)."""
    k, splits = max(num_references, 1), setup.splits
    if source == "fused":
        return setup.references(alpha=alpha, k=k), None, {name: "project SRIG" for name in splits}
    if source == "random":
        return ({name: random_references(ids, splits["train"], k, seed=seed, groups=setup.groups)
                 for name, ids in splits.items()}, None, {name: "random training images" for name in splits})
    if source == "query_copies":
        return ({name: {q: [q] * k for q in ids} for name, ids in splits.items()}, None,
                {name: "copies of the query" for name in splits})
    if source == "mean":
        fill = (setup.node_store.rows(splits["train"]).float().mean(0), setup.style.rows(splits["train"]).float().mean(0))
        return {name: None for name in splits}, fill, {name: "training-mean features" for name in splits}
    if source == "shipped":
        if shipped_index_dir is None:
            raise ValueError("reference_source='shipped' needs shipped_index_dir (the `index` folder of flyingbird93/SSMR)")
        references, sources = shipped_references(setup, shipped_index_dir, alpha, k)
        return references, None, sources
    raise ValueError(f"reference_source must be one of {REFERENCE_SOURCES}, got {source!r}")


def train_ssmr(
    setup: ReferenceSetup,
    out_dir: str | os.PathLike,
    *,
    alpha: float = 0.5,
    num_references: int = 4,
    reference_source: str = "fused",
    variant: str = "textbook",
    config: str = "smoke",
    hidden: int | None = None,
    layers: int | None = None,
    epochs: int = 20,
    lr: float = 1e-3,
    batch_size: int = 32,
    schedule: str = "step",
    step_epochs: int = 10,
    gamma: float = 0.1,
    seed: int = 0,
    max_steps: int = 0,
    device: str | None = None,
    shipped_index_dir: str | os.PathLike | None = None,
) -> SSMRRun:
    """Train (or load) SSMR on the setup's train split with references by `reference_source` (REFERENCE_SOURCES).

    Score range: the training split's min/max (textbook) or the code's fixed (2.75695, 10) (as_published).
    Adam, no weight decay, SmoothL1 on normalised scores, checkpoint selected on val SRCC; max_steps > 0 caps the
    run at that many optimiser steps (iaa_lib.profiles.capped_epochs).
    """
    references, fill, sources = reference_set(setup, reference_source, alpha, num_references, seed, shipped_index_dir)
    datasets = graph_datasets(setup, references, num_references, alpha, fill)
    train_scores = setup.frame.set_index("image_id").loc[setup.splits["train"], "mos"]
    score_range = {} if variant == "as_published" else dict(min_score=float(train_scores.min()), max_score=float(train_scores.max()))
    torch.manual_seed(seed)  # the head's initial weights follow the seed, whatever ran before in this process
    model = SSMR(config, variant=variant, in_dim=setup.semantic.dim, nodes=num_references + 1,
                 hidden=hidden, layers=layers, **score_range)
    loss = SSMRLoss(model.min_score, model.max_score)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(datasets["train"], batch_size=batch_size, shuffle=True, generator=generator)
    val_loader = DataLoader(datasets["val"], batch_size=256)
    epochs, steps_per_epoch = capped_epochs(epochs, max_steps)
    cfg = FitConfig(
        epochs=epochs, max_steps_per_epoch=steps_per_epoch, lr=lr, optimizer="adam", weight_decay=0.0,
        schedule=schedule, step_epochs=step_epochs,
        gamma=gamma, target="mos", seed=seed, device=device, out_dir=str(resolve(out_dir)), progress=False,
        extra=dict(alpha=alpha, reference_source=reference_source, features=setup.semantic.key,
                   node_features=setup.node_store.key, style_features=setup.style.key,
                   retrieval_metric=setup.semantic_index.metric, reference_sources=sources),
    )
    model, history = fit_or_load(model, loss, train_loader, val_loader, cfg)
    return SSMRRun(model, history, datasets, references, sources)
