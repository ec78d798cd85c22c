"""The CG-IAA chapter in one place: its settings (smoke and full profiles), its images, and its shared set-up.

Notebooks open with ``settings = PROFILES.resolve(profile, globals())``; notebooks 3-4 then call
``chapter = load_chapter(settings)``, which trains (or loads, when notebooks 1-2 ran with the same
settings) VLAP, the experts and the critique cache.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch

from iaa_lib.profiles import Profiles, check_rehearsal_switches

if TYPE_CHECKING:
    from iaa_lib.cgiaa.pipeline import Stages

RUN_DIR = "runs/cgiaa"  # checkpoints, caches and metrics of the chapter
SYNTHETIC_SPLIT_RATIOS = (0.7, 0.1, 0.2)
COMPARE_FIELDS = ("profile", "config", "image_size", "gpt2_path", "vlap_steps", "vlap_epochs", "vlap_batch",
                  "vlap_lr", "vlap_halve_every", "train_image_tower", "expert_steps", "expert_batch", "expert_lr",
                  "expert_warmup", "zero_shot", "critique_protocol", "map_epochs", "map_lr", "map_batch", "map_hidden",
                  "max_steps", "weights")


@dataclass(frozen=True)
class CGIAASettings:
    """Every setting of the chapter's stages; `smoke` runs on a CPU in minutes, `full` is the paper's recipe."""

    profile: str
    config: str  # the model sizes: iaa_lib.cgiaa.model.CONFIGS name
    data_root: str | None  # full: an AVA folder laid out like data/ava_sample, with the photos' comments
    gpt2_path: str | None  # full: a folder with GPT-2's model.safetensors, vocab.json and merges.txt
    n_synthetic: int  # synthetic images (0: none, real photos only)
    image_size: int  # pixels (squash resize)
    seed: int
    threads: int  # torch CPU threads (0: all cores)
    vlap_steps: int
    vlap_epochs: int | None  # when set, replaces vlap_steps: epochs over the images, lr halved every 2 epochs
    vlap_batch: int
    vlap_lr: float
    vlap_halve_every: int  # steps between lr halvings (with vlap_steps)
    train_image_tower: bool  # False: frozen image tower, cached features
    expert_steps: int
    expert_batch: int
    expert_lr: float
    expert_warmup: int
    zero_shot: bool  # caption attributes refined by the MiniLM zero-shot rule
    critique_protocol: str  # "cross_fitted" (no image critiqued by experts that saw it) | "as_published"
    map_epochs: int
    map_lr: float
    map_batch: int
    map_hidden: int
    map_seeds: int  # MAP-head training seeds of the ablation (seed, seed + 1, ...)
    dpc_critiques: int  # DPC critiques labelled in notebook 1 (0: all)
    ig_steps: int  # integrated-gradients steps in notebook 4
    max_generate: int | None = None  # longest generated critique in tokens (None: the config's, 67 in full)
    max_steps: int = 0  # 0 = no cap; > 0 (a rehearsal): at most this many optimiser steps per training stage
    weights: str = "pretrained"  # "random": CLIP ViT-B/16 and the GPT-2-size decoder built by name, random init
    manifest: str = ""  # full: AVA read through this data-check manifest (python -m iaa_lib data check)
    comments_file: str = ""  # "" = the shipped DPC critiques; else a JSON {"<id>.jpg": [comment, ...]} of AVA ids

    def __post_init__(self) -> None:
        check_rehearsal_switches(self)

    def model_config(self):
        """The CGIAAConfig of these settings (weights="random": the image tower by name, its QuickGELU architecture
        for OpenAI CLIP, no weights; the decoder GPT-2 small's shape, random and frozen)."""
        from iaa_lib.blocks.backbones import random_twin
        from iaa_lib.cgiaa.model import CONFIGS, get_config

        overrides = {} if self.max_generate is None else {"max_generate": self.max_generate}
        if self.weights == "random":
            base = CONFIGS[self.config]
            overrides.update(image_tower=random_twin(base.image_tower, base.image_weights), image_weights=None,
                             lm_weights="random" if self.config == "full" else "pretrained")
        return get_config(self.config, image_size=self.image_size, gpt2_path=self.gpt2_path,
                          map_hidden=self.map_hidden, **overrides)

    def vlap_schedule(self):
        """VLAPSchedule of these settings."""
        from iaa_lib.cgiaa.pipeline import VLAPSchedule

        return VLAPSchedule(steps=self.vlap_steps, batch_size=self.vlap_batch, lr=self.vlap_lr,
                            halve_every=self.vlap_halve_every, epochs=self.vlap_epochs, seed=self.seed,
                            max_steps=self.max_steps)

    def expert_schedule(self):
        """ExpertSchedule of these settings."""
        from iaa_lib.cgiaa.pipeline import ExpertSchedule

        return ExpertSchedule(steps=self.expert_steps, batch_size=self.expert_batch, lr=self.expert_lr,
                              warmup=self.expert_warmup, seed=self.seed, max_steps=self.max_steps)

    def ablation_seeds(self) -> list[int]:
        """The MAP-head seeds of the mechanism's ablation."""
        return [self.seed + k for k in range(self.map_seeds)]

    def map_options(self) -> dict:
        """map_stage's training options (epochs, lr, batch_size, hidden, seed, max_steps)."""
        return dict(epochs=self.map_epochs, lr=self.map_lr, batch_size=self.map_batch, hidden=self.map_hidden,
                    seed=self.seed, max_steps=self.max_steps)

    def check_inputs(self, gpt2: bool = True) -> None:
        """Raise ValueError when the full profile lacks data (manifest or data_root) or, with gpt2 and pretrained
        weights, gpt2_path; FileNotFoundError for a manifest that is not there."""
        from iaa_lib.paths import resolve

        if self.manifest and not resolve(self.manifest).is_file():
            raise FileNotFoundError(f"manifest {resolve(self.manifest)} not found; write it with `python -m iaa_lib "
                                    "data check --dataset ava --root <your AVA folder> --manifest <that path>`")
        if self.profile != "full":
            return
        if self.data_root is None and not self.manifest:
            raise ValueError("profile='full' needs manifest (written by `python -m iaa_lib data check --dataset ava "
                             "--root <AVA folder>`) or data_root: an AVA folder laid out like data/ava_sample "
                             "(labels.csv, images/, comments.jsonl, splits.csv)")
        if gpt2 and self.gpt2_path is None and self.weights == "pretrained":
            raise ValueError("profile='full' needs gpt2_path: a folder with GPT-2's model.safetensors, vocab.json "
                             "and merges.txt")


SMOKE = CGIAASettings(
    profile="smoke", config="smoke", data_root=None, gpt2_path=None, n_synthetic=500, image_size=96, seed=0,
    threads=1, vlap_steps=150, vlap_epochs=None, vlap_batch=64, vlap_lr=0.002, vlap_halve_every=50,
    train_image_tower=False, expert_steps=300, expert_batch=64, expert_lr=0.003, expert_warmup=20, zero_shot=False,
    critique_protocol="cross_fitted", map_epochs=40, map_lr=0.001, map_batch=32, map_hidden=128, map_seeds=3,
    dpc_critiques=150, ig_steps=16)

# The paper's (and the borrowed AesCLIP / released generator's) settings: ViT-B/16 from OpenAI weights at 224 px,
# both towers fine-tuned by VLAP (AdamW 6e-5, batch 64, 20 epochs, lr halved every 2), GPT-2 small frozen behind
# the experts (AdamW 2e-5, 5,000 warm-up steps, ~10 epochs of ~940 K critiques at batch 40; CG-IAA's count is
# unknown), cgiaa_map_v1 (2816 -> 512 -> 10); real AVA photos only, all DPC critiques labelled.
FULL = replace(
    SMOKE, profile="full", config="full", n_synthetic=0, image_size=224, threads=0, vlap_epochs=20, vlap_lr=6e-5,
    train_image_tower=True, expert_steps=235_000, expert_batch=40, expert_lr=2e-5, expert_warmup=5000,
    zero_shot=True, map_epochs=20, map_lr=1e-4, map_batch=64, map_hidden=512, dpc_critiques=0, ig_steps=50,
    manifest="runs/data/ava_manifest.csv")

PROFILES = Profiles(smoke=SMOKE, full=FULL)


def main_source(settings: CGIAASettings) -> str:
    """The catalogue source the chapter's experiments run on: the synthetic set when it has images, else the real photos."""
    return "synthetic" if settings.n_synthetic else "ava_sample"


def config_evidence(settings: CGIAASettings, clip=None, experts=None, tokenizer=None) -> dict:
    """What proves which configuration ran (for the metrics JSON): weights, max_steps, the image tower, image size
    and parameter counts of the aesthetic CLIP and, when given, of the experts' decoder and mappers."""
    cfg = settings.model_config()
    out = {"weights": settings.weights, "max_steps": settings.max_steps, "config": settings.config,
           "image_tower": cfg.image_tower, "image_size": cfg.image_size, "max_generate": cfg.max_generate,
           "beam_width": cfg.beam_width}
    if clip is not None:
        out.update(clip_parameters=sum(p.numel() for p in clip.parameters()), visual_dim=clip.visual_dim,
                   embed_dim=clip.embed_dim)
    if experts is not None:
        out.update(lm_parameters=sum(p.numel() for p in experts.lm.parameters()),
                   lm_layers=experts.lm.cfg.n_layers, lm_width=experts.lm.cfg.d_model,
                   lm_frozen=not any(p.requires_grad for p in experts.lm.parameters()),
                   mapper_parameters=sum(p.numel() for p in experts.mappers.parameters()),
                   prefix_length=experts.prefix_length)
    if tokenizer is not None:
        out["vocab_size"] = tokenizer.vocab_size
    return out


def start(settings: CGIAASettings, gpt2: bool = True) -> None:
    """A notebook's first step: check the profile's inputs, set the torch threads, seed everything."""
    from iaa_lib.seed import seed_everything

    settings.check_inputs(gpt2)
    if settings.threads:  # on a shared 2-core CPU one thread avoids oversubscription stalls
        torch.set_num_threads(settings.threads)
    seed_everything(settings.seed)


def book_catalogue(run_dir: str | os.PathLike, n_synthetic: int, image_size: int = 96, seed: int = 0,
                   real_dir: str | os.PathLike | None = None, manifest: str | os.PathLike | None = None,
                   comments_file: str | os.PathLike | None = None) -> pd.DataFrame:
    """The chapter's images, one row each (row position = image_index): the synthetic set, then the real photos.

    Real photos: the embedded 77-photo AVA sample, or `real_dir` laid out the same way (labels.csv with AVA
    votes, images/<id>.jpg, comments.jsonl, splits.csv), or AVA read through a data-check `manifest` (official test
    list, 5 % of the rest as val; comments by AVA id from comments_file, None: the shipped DPC critiques) for a full
    run; n_synthetic = 0 skips the synthetic set,
    which is generated once in run_dir/synthetic (labelled_sets.cached_synthetic) and split 70/10/20.
    Columns: image_id, path, source ("synthetic" | "ava_sample"), split, mos, dist_1..dist_10, comments (list of
    str; synthetic: one per attribute), comment_attributes (the synthetic comments' true attributes, else []).
    """
    from iaa_lib.data.labelled_sets import cached_synthetic
    from iaa_lib.data.labels import DIST_COLUMNS
    from iaa_lib.data.sample import load_ava_sample, load_sample_comments, sample_splits
    from iaa_lib.data.splits import assert_disjoint, random_split
    from iaa_lib.data.synthetic import COMMENT_ATTRIBUTES

    columns = ["image_id", "path", "source", "split", "mos", *DIST_COLUMNS, "comments", "comment_attributes"]
    parts = []
    if n_synthetic:
        synthetic = cached_synthetic(n_synthetic, Path(run_dir) / "synthetic", image_size=image_size, seed=seed)
        splits = random_split(synthetic["image_id"], ratios=SYNTHETIC_SPLIT_RATIOS, seed=seed)
        assert_disjoint(splits)
        split_of = {i: name for name, ids in splits.items() for i in ids}
        parts.append(synthetic.assign(source="synthetic", split=synthetic["image_id"].map(split_of),
                                      comment_attributes=[list(COMMENT_ATTRIBUTES)] * len(synthetic))[columns])
    if manifest:
        from iaa_lib.data.labelled_sets import labelled_set
        from iaa_lib.data.sample import load_dpc_comments

        real, _, real_splits = labelled_set("ava", manifest=manifest, seed=seed)
        real_comments = load_dpc_comments(comments_file)
    else:
        real, image_dir = load_ava_sample(real_dir)
        real = real.assign(path=[str(image_dir / f"{i}.jpg") for i in real["image_id"]])
        real_splits, real_comments = sample_splits(real_dir), load_sample_comments(real_dir)
    real_split = {i: name for name, ids in real_splits.items() for i in ids}
    real = real.assign(source="ava_sample",
                       split=real["image_id"].map(real_split),
                       comments=[real_comments.get(i, []) for i in real["image_id"]],
                       comment_attributes=[[] for _ in range(len(real))])
    parts.append(real[columns])
    return pd.concat(parts, ignore_index=True)


def chapter_catalogue(settings: CGIAASettings, run_dir: str | os.PathLike = RUN_DIR) -> pd.DataFrame:
    """book_catalogue of these settings (run_dir: a notebook path such as "runs/cgiaa")."""
    from iaa_lib.paths import resolve

    return book_catalogue(resolve(run_dir), settings.n_synthetic, image_size=settings.image_size, seed=settings.seed,
                          real_dir=None if settings.data_root is None else resolve(settings.data_root),
                          manifest=resolve(settings.manifest) if settings.manifest else None,
                          comments_file=resolve(settings.comments_file) if settings.comments_file else None)


@dataclass
class Chapter:
    """What notebooks 3-4 share: the settings, the catalogue and stages 1-2, with MAP heads trained on demand."""

    settings: CGIAASettings
    run_dir: Path
    catalogue: pd.DataFrame
    stages: Stages
    protocols: dict = field(default_factory=dict)  # critique_protocol -> (texts, embeddings), built on demand

    def critiques(self, protocol: str | None = None) -> tuple[list[list[str]], torch.Tensor]:
        """Generated critiques under a protocol (default: the settings'): texts [image][attribute], (N, 4, E)."""
        from iaa_lib.cgiaa.pipeline import protocol_critiques

        protocol = protocol or self.settings.critique_protocol
        if protocol not in self.protocols:
            self.protocols[protocol] = protocol_critiques(self.stages, self.settings.model_config(), self.run_dir,
                                                          self.settings.expert_schedule(), protocol)
        return self.protocols[protocol]

    def split_rows(self, source: str) -> dict[str, list[int]]:
        """Catalogue rows (image_index) of each split of one source ("synthetic" or "ava_sample")."""
        subset = self.catalogue[self.catalogue["source"] == source]
        return {s: list(subset.index[subset["split"] == s]) for s in ("train", "val", "test")}

    def synthetic_factors(self) -> pd.DataFrame:
        """The synthetic images' true factors (sharpness, contrast, colourfulness, placement) and true_score, one
        row per synthetic catalogue row (same index)."""
        from iaa_lib.data.labelled_sets import cached_synthetic
        from iaa_lib.data.synthetic import FACTORS

        s = self.settings
        frame = cached_synthetic(s.n_synthetic, self.run_dir / "synthetic", image_size=s.image_size, seed=s.seed)
        synthetic = self.catalogue[self.catalogue["source"] == "synthetic"]
        factors = frame.set_index("image_id").loc[synthetic["image_id"], [*FACTORS, "true_score"]]
        return factors.set_index(synthetic.index)

    def map_head(self, name: str, visual: torch.Tensor | None, critiques: torch.Tensor | None,
                 rows: dict[str, Sequence[int]], seed: int | None = None):
        """map_stage with the chapter's MAP options (seed: the settings' unless given): (head, history, test
        metrics, test predictions)."""
        from iaa_lib.cgiaa.pipeline import map_stage

        options = self.settings.map_options() | ({} if seed is None else {"seed": seed})
        return map_stage(name, visual, critiques, self.catalogue, rows, self.run_dir, **options)

    def critique_ablation(self, rows: dict[str, Sequence[int]]) -> pd.DataFrame:
        """Image only vs image + generated critiques under each protocol, one head per ablation seed, scored on
        rows["test"]: per condition the mean test SRCC over seeds with its bootstrap interval, and per protocol the
        paired difference (critiques - image only) with its interval (seed_paired_difference).
        Columns: condition, protocol, srcc, low, high, per_seed (list)."""
        from iaa_lib.cgiaa.pipeline import CRITIQUE_PROTOCOLS
        from iaa_lib.metrics import seed_paired_difference

        features, seeds = self.stages.features, self.settings.ablation_seeds()

        def predictions(tag: str, text: torch.Tensor | None) -> list[np.ndarray]:
            return [self.map_head(tag, features, text, rows, seed)[3]["pred_mos"].to_numpy() for seed in seeds]

        truth = self.map_head("image_only", features, None, rows, seeds[0])[3]["mos"].to_numpy()
        constant = [np.zeros(len(truth))] * len(seeds)  # ranks nothing (SRCC 0): the difference is the SRCC itself
        image_only = predictions("image_only", None)
        table = [("image only", "either", seed_paired_difference(truth, image_only, constant))]
        for protocol in CRITIQUE_PROTOCOLS:
            fused = predictions("image_generated_critiques", self.critiques(protocol)[1])
            table += [("image + generated critiques", protocol, seed_paired_difference(truth, fused, constant)),
                      ("difference (critiques - image only)", protocol,
                       seed_paired_difference(truth, fused, image_only))]
        return pd.DataFrame([(c, p, d["difference"], d["low"], d["high"], d["per_seed"]) for c, p, d in table],
                            columns=["condition", "protocol", "srcc", "low", "high", "per_seed"])


def load_chapter(settings: CGIAASettings, run_dir: str | os.PathLike = RUN_DIR) -> Chapter:
    """start(settings), the catalogue, then VLAP, the experts and the critique cache, trained or loaded."""
    from iaa_lib.cgiaa.pipeline import load_stages
    from iaa_lib.paths import resolve

    start(settings)
    catalogue = chapter_catalogue(settings, run_dir)
    stages = load_stages(settings.model_config(), catalogue, resolve(run_dir), settings.vlap_schedule(),
                         settings.train_image_tower, settings.expert_schedule(), settings.zero_shot)
    return Chapter(settings, resolve(run_dir), catalogue, stages)
