"""CDCM-Net inputs: frozen visual tokens and padded comment features per image, cached, as a torch Dataset.

The image encoder and the text encoder are frozen, so both modalities are computed once and cached on disk
(visual tokens through iaa_lib.blocks.retrieval.extract_features, sentences through iaa_lib.blocks.text.SentenceFeatureCache).
"""
from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.cdcm.model import ImageTokens, create_image_tokens
from iaa_lib.training.fingerprint import fingerprint

SYNTHETIC_SPLIT_RATIOS = (0.7, 0.15, 0.15)
RANDOM_ENCODER_SEED = 0  # random-init encoders (weights="random") are built under this seed, so caches stay consistent


class FlatTokens(nn.Module):
    """ImageTokens with flattened output [B, N*C], so the pooled-feature cache of iaa_lib.blocks.retrieval stores them."""

    def __init__(self, tokens: ImageTokens) -> None:
        super().__init__()
        self.tokens = tokens

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, N*C]."""
        return self.tokens(images).flatten(1)


def visual_token_table(
    frame: pd.DataFrame, image_dir: str | os.PathLike | None, encoder_name: str, weights: str | None,
    image_size: int, cache_dir: str | os.PathLike, batch_size: int = 32, resize: str = "squash",
) -> torch.Tensor:
    """Frozen-encoder tokens of every frame row: [n_images, N, C] float32, read from the disk cache when present."""
    from iaa_lib.data.transforms import eval_transform
    from iaa_lib.blocks.retrieval import extract_features

    with torch.random.fork_rng():
        torch.manual_seed(RANDOM_ENCODER_SEED)
        tokens = create_image_tokens(encoder_name, weights)
    backbone = tokens.backbone
    transform = eval_transform(image_size, backbone.mean, backbone.std, resize=resize)
    with torch.no_grad():
        probe = tokens(torch.zeros(1, 3, image_size, image_size))
    n_tokens, width = probe.shape[1:]
    store = extract_features(
        frame, image_dir, weights=weights,
        backbone_name=f"cdcm_tokens:{encoder_name}@{image_size}" + ("" if resize == "squash" else f"-{resize}"),
        transform=transform, backbone=FlatTokens(tokens), cache_dir=cache_dir, batch_size=batch_size,
    )
    return store.rows(frame["image_id"].astype(str).tolist()).float().view(len(frame), n_tokens, width)


class CDCMFeatureDataset(Dataset):
    """item = dict(visual_tokens [N,C], comment_features [T,D], comment_mask [T] bool, dist [10], mos, image_id)."""

    def __init__(self, frame: pd.DataFrame, visual_tokens: torch.Tensor, comment_features: torch.Tensor,
                 comment_mask: torch.Tensor) -> None:
        n = len(frame)
        if visual_tokens.ndim != 3 or visual_tokens.shape[0] != n:
            raise ValueError(f"CDCMFeatureDataset: visual_tokens must be [{n}, N, C] (one row per frame row), "
                             f"got {tuple(visual_tokens.shape)}")
        if comment_features.ndim != 3 or comment_features.shape[0] != n or tuple(comment_mask.shape) != tuple(comment_features.shape[:2]):
            raise ValueError(f"CDCMFeatureDataset: comment_features must be [{n}, T, D] with a [{n}, T] mask, got "
                             f"{tuple(comment_features.shape)} and {tuple(comment_mask.shape)}")
        missing = [c for c in ("image_id", "mos", *DIST_COLUMNS) if c not in frame.columns]
        if missing:
            raise ValueError(f"CDCMFeatureDataset: label frame lacks column(s) {missing}")
        self.image_ids = frame["image_id"].astype(str).tolist()
        self.mos = torch.tensor(frame["mos"].to_numpy(np.float32))
        self.dist = torch.tensor(frame[DIST_COLUMNS].to_numpy(np.float32))
        self.visual_tokens = visual_tokens.float()
        self.comment_features = comment_features.float()
        self.comment_mask = comment_mask.bool()

    def __len__(self) -> int:
        return len(self.image_ids)

    def fingerprint(self) -> str:
        """Hash of ids, labels, visual tokens and comment features with their mask."""
        return fingerprint("CDCMFeatureDataset", self.image_ids, self.mos, self.dist, self.visual_tokens,
                           self.comment_features, self.comment_mask)

    def __getitem__(self, index: int) -> dict:
        return dict(visual_tokens=self.visual_tokens[index], comment_features=self.comment_features[index],
                    comment_mask=self.comment_mask[index], dist=self.dist[index], mos=self.mos[index],
                    image_id=self.image_ids[index])


def subset_rows(ids: Sequence[str], all_ids: Sequence[str]) -> torch.Tensor:
    """Row positions [len(ids)] of `ids` inside `all_ids` (KeyError naming the first missing id)."""
    position = {str(i): row for row, i in enumerate(all_ids)}
    missing = [i for i in ids if str(i) not in position]
    if missing:
        raise KeyError(f"image ids not in the feature table: {missing[:5]}")
    return torch.tensor([position[str(i)] for i in ids])


def comments_by_id(frame: pd.DataFrame) -> Mapping[str, list[str]]:
    """{image_id: comments} from a frame's `comments` column (make_synthetic's per-attribute critiques)."""
    if "comments" not in frame.columns:
        raise ValueError("frame has no `comments` column (make_synthetic frames do)")
    return {str(i): list(c) for i, c in zip(frame["image_id"], frame["comments"])}


def synthetic_inputs(n: int, out_dir: str | os.PathLike, profile: str = "smoke", seed: int = 0,
                     image_size: int = 96, variant: str = "textbook", weights: str = "pretrained") -> dict:
    """Synthetic set (generated once in out_dir/images) with cached CDCM inputs: dict(frame, tokens [n,N,C],
    comments [n,T,D], mask [n,T], sentences, cache)."""
    from iaa_lib.data.labelled_sets import cached_synthetic
    from iaa_lib.paths import resolve

    folder = resolve(out_dir)
    frame = cached_synthetic(n, folder / "images", image_size=image_size, seed=seed)
    return frame_inputs(frame, None, comments_by_id(frame), folder / "features", profile, variant, weights)


def sample_inputs(out_dir: str | os.PathLike, profile: str = "smoke", variant: str = "textbook",
                  data_dir: str | os.PathLike | None = None, weights: str = "pretrained") -> dict:
    """The 77 embedded AVA photos (or data_dir laid out like data/ava_sample: labels.csv, images/, comments.jsonl,
    splits.csv) with cached CDCM inputs (real comments where the folder has them, zero rows elsewhere)."""
    from iaa_lib.data.sample import load_ava_sample, load_sample_comments
    from iaa_lib.paths import resolve

    frame, image_dir = load_ava_sample(data_dir)
    return frame_inputs(frame, image_dir, load_sample_comments(data_dir), resolve(out_dir) / "features", profile,
                        variant, weights)


def manifest_inputs(manifest: str | os.PathLike, out_dir: str | os.PathLike, profile: str = "full",
                    comments_file: str | os.PathLike | None = None, weights: str = "pretrained", seed: int = 0
                    ) -> tuple[dict, dict[str, list[str]]]:
    """AVA read through a data-check manifest (labelled_set("ava", manifest=...): official test list, 5 % of the
    rest as val) with cached CDCM inputs; comments by AVA id from comments_file ({"<id>.jpg": [comment, ...]}; None:
    the shipped DPC critiques), zero rows for images without any. Returns (inputs, splits)."""
    from iaa_lib.data.labelled_sets import labelled_set
    from iaa_lib.data.sample import load_dpc_comments
    from iaa_lib.paths import resolve

    frame, _, splits = labelled_set("ava", manifest=resolve(manifest), seed=seed)
    comments = load_dpc_comments(None if not comments_file else resolve(comments_file))
    ids = set(frame["image_id"].astype(str))
    comments = {i: texts for i, texts in comments.items() if i in ids}
    return frame_inputs(frame, None, comments, resolve(out_dir) / "features", profile, weights=weights), splits


class ChapterData(NamedTuple):
    """The CDCM chapter's two sets: synthetic inputs with their 70/15/15 split, real photos with their fixed split."""

    synthetic: dict
    synthetic_splits: dict[str, list[str]]
    real: dict
    real_splits: dict[str, list[str]]


def with_min_sentences(splits: Mapping[str, Sequence[str]], comments: Mapping[str, Sequence[str]],
                       min_sentences: int) -> dict[str, list[str]]:
    """Splits without the images that have fewer than min_sentences comment sentences (0: splits unchanged)."""
    from iaa_lib.blocks.text import sentence_counts

    if min_sentences <= 0:
        return {name: list(ids) for name, ids in splits.items()}
    kept = {}
    for name, ids in splits.items():
        counts = sentence_counts(ids, comments)
        kept[name] = [i for i in ids if counts[str(i)] >= min_sentences]
        if not kept[name]:
            raise ValueError(f"no {name} image has >= {min_sentences} comment sentences: the filter empties the split")
    return kept


def chapter_data(profile: str = "smoke", n_synthetic: int = 600, seed: int = 0,
                 data_root: str | os.PathLike | None = None, run_dir: str = "runs/cdcm", weights: str = "pretrained",
                 manifest: str | os.PathLike | None = None, comments_file: str | os.PathLike | None = None,
                 min_sentences: int | None = None) -> ChapterData:
    """Cached inputs and leak-checked splits of the synthetic set and of the real photos (AVA through `manifest`
    when given, else the embedded sample or data_root laid out like data/ava_sample); min_sentences None: the
    profile's filter (ENCODERS)."""
    from iaa_lib.cdcm.model import ENCODERS
    from iaa_lib.data.sample import sample_splits
    from iaa_lib.data.splits import assert_disjoint, random_split

    synthetic = synthetic_inputs(n_synthetic, f"{run_dir}/synthetic", profile=profile, seed=seed, weights=weights)
    synthetic_splits = random_split(synthetic["frame"]["image_id"], ratios=SYNTHETIC_SPLIT_RATIOS, seed=seed)
    if manifest:
        real, splits = manifest_inputs(manifest, f"{run_dir}/ava", profile, comments_file, weights, seed)
    else:
        real, splits = sample_inputs(f"{run_dir}/sample", profile=profile, data_dir=data_root, weights=weights), \
            sample_splits(data_root)
    minimum = ENCODERS[profile]["min_sentences"] if min_sentences is None else min_sentences
    real_splits = with_min_sentences(splits, real["raw_comments"], minimum)
    assert_disjoint(synthetic_splits)
    assert_disjoint(real_splits)
    return ChapterData(synthetic, synthetic_splits, real, real_splits)


def text_cache(profile: str, cache_dir: str | os.PathLike, weights: str = "pretrained"):
    """SentenceFeatureCache of the profile's text encoder (smoke: MiniLM, full: CLIP ViT-B/32 text tower;
    weights="random": built by name with random init)."""
    from iaa_lib.blocks.backbones import create_text_encoder
    from iaa_lib.cdcm.model import encoder_spec
    from iaa_lib.blocks.text import SentenceFeatureCache

    spec = encoder_spec(profile, weights)
    with torch.random.fork_rng():
        torch.manual_seed(RANDOM_ENCODER_SEED)
        encoder = create_text_encoder(spec["text"], weights=spec["text_weights"])
    return SentenceFeatureCache(encoder, spec["text"], spec["text_weights"], cache_dir)


def frame_inputs(frame: pd.DataFrame, image_dir, comments: Mapping[str, list[str]], cache_dir, profile: str,
                 variant: str = "textbook", weights: str = "pretrained") -> dict:
    """Cached CDCM inputs of any label frame: dict(frame (with a `path` column), tokens [n,N,C], comments [n,T,D],
    mask [n,T], sentences, cache, raw_comments, image_dir, encoders (the encoder_spec that made them))."""
    from iaa_lib.cdcm.model import encoder_spec
    from iaa_lib.blocks.text import comment_feature_rows

    spec = encoder_spec(profile, weights)
    tokens = visual_token_table(frame, image_dir, spec["image"], spec["image_weights"], spec["image_size"], cache_dir,
                                resize=spec["resize"])
    cache = text_cache(profile, cache_dir, weights)
    features, mask, sentences = comment_feature_rows(frame["image_id"].astype(str).tolist(), comments, cache,
                                                     spec["max_sentences"], variant)
    if "path" not in frame.columns and image_dir is not None:
        frame = frame.assign(path=[str(Path(image_dir) / f"{i}.jpg") for i in frame["image_id"]])
    return dict(frame=frame.reset_index(drop=True), encoders=spec, tokens=tokens, comments=features, mask=mask,
                sentences=sentences, cache=cache, raw_comments=comments, image_dir=image_dir)


def split_datasets(inputs: dict, splits: Mapping[str, Sequence[str]], blank_comments: Sequence[str] = ()) -> dict:
    """{split: CDCMFeatureDataset}; splits named in blank_comments get zero comment rows (no comment available)."""
    ids = inputs["frame"]["image_id"].astype(str).tolist()
    out = {}
    for name, split_ids in splits.items():
        rows = subset_rows(split_ids, ids)
        comments, mask = inputs["comments"][rows], inputs["mask"][rows]
        if name in blank_comments:
            comments, mask = torch.zeros_like(comments), torch.zeros_like(mask)
        out[name] = CDCMFeatureDataset(inputs["frame"].iloc[rows.numpy()], inputs["tokens"][rows], comments, mask)
    return out


def text_feature_std(dataset: CDCMFeatureDataset, profile: str) -> float:
    """Std of the real comment rows of `dataset` in the model's text space (after the fixed projection), 4 digits."""
    from iaa_lib.cdcm.model import CDCMNet

    rows, mask = CDCMNet(profile).text_rows(dataset.comment_features, dataset.comment_mask,
                                            dataset.comment_features.shape[1])
    if not mask.any():
        raise ValueError("text_feature_std: the training images have no comment rows")
    return round(float(rows[mask].std()), 4)


def fit_cdcm(datasets: Mapping[str, Dataset], out_dir: str | os.PathLike, profile: str = "smoke",
             modality: str = "recalled", variant: str = "textbook", epochs: int = 8, lr: float = 1e-3,
             batch_size: int = 32, seed: int = 0, device: str | None = None, aux_weight: float = 1.0,
             model: nn.Module | None = None, max_steps: int = 0):
    """Train (or load the finished run in out_dir) a CDCM-Net model on datasets["train"], selecting on "val".

    Project design (no training code was released): Adam, no weight decay, cosine decay, EMD1 main loss plus
    aux_loss = aux_weight (L_rec + L_add + sum_m L_conf,m) (aux_weight 1 by default), best epoch by validation
    SRCC; the value memory starts at the std of the training text features (text_feature_std). `model` replaces
    the CDCMNet(profile, variant, modality) built here (e.g. the text branch alone). max_steps > 0 (a rehearsal):
    one epoch of at most max_steps optimiser steps. Returns (model, history)."""
    from torch.utils.data import DataLoader

    from iaa_lib.cdcm.model import CDCMNet, cdcm_main_loss
    from iaa_lib.paths import resolve
    from iaa_lib.seed import seed_everything
    from iaa_lib.training.engine import FitConfig, fit_or_load

    # measured before seeding: text_feature_std builds a CDCMNet, whose initialisation draws random numbers
    value_std = text_feature_std(datasets["train"], profile) if model is None and modality == "recalled" else None
    seed_everything(seed)
    if model is None:
        model = CDCMNet(profile, variant=variant, modality=modality, w_rec=aux_weight, w_add=aux_weight,
                        w_conf=aux_weight, value_init_std=value_std)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(datasets["train"], batch_size=batch_size, shuffle=True, drop_last=True, generator=generator)
    val = DataLoader(datasets["val"], batch_size=256)
    cfg = FitConfig(epochs=1 if max_steps else epochs, lr=lr, optimizer="adam", weight_decay=0.0, schedule="cosine",
                    seed=seed, out_dir=str(resolve(out_dir)), select_metric="srcc", progress=False, device=device,
                    max_steps_per_epoch=max_steps or None)
    return fit_or_load(model, cdcm_main_loss(variant), train, val, cfg)


@torch.no_grad()
def recall_similarity(model: nn.Module, inputs: dict, train_ids: Sequence[str],
                      image_ids: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    """(bank: the distinct comment sentences of the training images, sorted; cosine similarity
    [n_images, n_tokens, len(bank)] between each token's memory read-out and each bank sentence, in the model's
    text space)."""
    ids = inputs["frame"]["image_id"].astype(str).tolist()
    bank = sorted({s for row in subset_rows(train_ids, ids).tolist() for s in inputs["sentences"][row]})
    if not bank:
        raise ValueError("the training images have no comment sentences: nothing to recall from")
    model.eval()
    readout = model(visual_tokens=inputs["tokens"][subset_rows(image_ids, ids)])["memory_readout"]
    bank_features = model.project_text(inputs["cache"].features(bank).to(readout))
    similarity = torch.nn.functional.normalize(readout, dim=-1) @ torch.nn.functional.normalize(bank_features, dim=-1).T
    return bank, similarity


def nearest_training_sentences(model: nn.Module, inputs: dict, train_ids: Sequence[str], image_ids: Sequence[str]) -> dict[str, str]:
    """image_id -> the training sentence nearest (cosine) to the memory read-out of the image's global token."""
    bank, similarity = recall_similarity(model, inputs, train_ids, image_ids)
    return {str(i): bank[int(j)] for i, j in zip(image_ids, similarity[:, 0].argmax(dim=1))}
