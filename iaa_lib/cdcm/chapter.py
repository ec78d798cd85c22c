"""The CDCM-Net chapter in one place: its settings (smoke and full profiles) and its shared set-up.

Notebooks open with ``settings = PROFILES.resolve(profile, globals())`` and ``chapter = load_chapter(settings)``:
the cached inputs and splits of both sets, and the chapter's models trained (or loaded) on demand.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils.data import Dataset

from iaa_lib.cdcm.data import ChapterData, chapter_data, fit_cdcm, split_datasets
from iaa_lib.cdcm.model import ENCODERS
from iaa_lib.profiles import Profiles, check_rehearsal_switches

SAMPLE_BATCH_SIZE = 16  # the real sample has 46 training photos
SYNTHETIC_MODELS = {  # name -> (modality, variant): CDCM-Net and the release's two baselines
    "cdcm": ("recalled", "textbook"),
    "cdcm_as_published": ("recalled", "as_published"),
    "image_only": ("image_only", "textbook"),
    "real_comments": ("real", "textbook"),
}
COMPARE_FIELDS = ("profile", "epochs", "batch_size", "lr", "max_steps", "weights")


@dataclass(frozen=True)
class CDCMSettings:
    """Every setting of the chapter; `smoke` runs on a CPU in minutes, `full` is the paper's recipe."""

    profile: str  # also picks the frozen encoders (iaa_lib.cdcm.model.ENCODERS) and the model size
    n_synthetic: int  # synthetic images
    epochs: int  # synthetic-set training
    sample_epochs: int  # real-photo training
    lr: float
    batch_size: int
    threads: int  # torch CPU threads (0: all cores)
    seed: int
    data_root: str  # "" = the embedded 77-photo sample; full: an AVA folder laid out like data/ava_sample
    n_dpc: int  # DPC critiques of the text -> score check (notebook 1)
    min_sentences: int  # real photos with fewer comment sentences leave the splits (the released AVA filter)
    max_steps: int = 0  # 0 = no cap; > 0 (a rehearsal): at most this many optimiser steps per training stage
    weights: str = "pretrained"  # "random": the frozen CLIP encoders built by name with random init
    manifest: str = ""  # full: AVA read through this data-check manifest (python -m iaa_lib data check)
    comments_file: str = ""  # "" = the shipped DPC critiques; else a JSON {"<id>.jpg": [comment, ...]} of AVA ids

    def check_inputs(self) -> None:
        """Raise ValueError when the full profile has neither a manifest nor a data_root, or the manifest is missing."""
        from iaa_lib.paths import resolve

        if self.profile == "full" and not (self.data_root or self.manifest):
            raise ValueError("profile='full' needs manifest (written by `python -m iaa_lib data check --dataset ava "
                             "--root <AVA folder>`) or data_root: an AVA folder laid out like data/ava_sample "
                             "(labels.csv, images/<image_id>.jpg, comments.jsonl, splits.csv)")
        if self.manifest and not resolve(self.manifest).is_file():
            raise FileNotFoundError(f"manifest {resolve(self.manifest)} not found; write it with `python -m iaa_lib "
                                    "data check --dataset ava --root <your AVA folder> --manifest <that path>`")

    def __post_init__(self) -> None:
        check_rehearsal_switches(self)


SMOKE = CDCMSettings(profile="smoke", n_synthetic=600, epochs=8, sample_epochs=15, lr=1e-3, batch_size=32,
                     threads=1, seed=0, data_root="", n_dpc=400, min_sentences=ENCODERS["smoke"]["min_sentences"])
# The paper's setting: CLIP ViT-B/32 tokens and text features, the full CDMF, Adam lr 1e-4 for 20 epochs at batch
# 32 (4 as published), on AVA through the data check's manifest with comments by AVA id (see the spec, section 6),
# the >= 5-sentence filter; all 13,432 DPC critiques for the text -> score check.
FULL = replace(SMOKE, profile="full", epochs=20, sample_epochs=20, lr=1e-4, threads=0, n_dpc=13432,
               min_sentences=ENCODERS["full"]["min_sentences"], manifest="runs/data/ava_manifest.csv")

PROFILES = Profiles(smoke=SMOKE, full=FULL)


@dataclass
class Chapter:
    """The chapter's shared set-up: settings, inputs and splits of both sets, their datasets, the models."""

    settings: CDCMSettings
    run_dir: str
    data: ChapterData
    synthetic: dict[str, Dataset]  # split -> dataset of the synthetic set
    real: dict[str, Dataset]  # split -> dataset of the real photos

    def synthetic_model(self, name: str, seed: int | None = None, aux_weight: float = 1.0
                        ) -> tuple[nn.Module, dict]:
        """(model, history) of SYNTHETIC_MODELS[name] trained on the synthetic set (or loaded); seed None = the
        settings' seed; aux_weight scales the memory and confidence losses against the EMD (fit_cdcm)."""
        modality, variant = SYNTHETIC_MODELS[name]
        s = self.settings
        seed = s.seed if seed is None else seed
        run = name + ("" if seed == s.seed else f"-seed{seed}") + ("" if aux_weight == 1.0 else f"-aux{aux_weight:g}")
        return fit_cdcm(self.synthetic, f"{self.run_dir}/synthetic/{run}", profile=s.profile, modality=modality,
                        variant=variant, epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, seed=seed,
                        aux_weight=aux_weight, max_steps=s.max_steps)

    def sample_model(self) -> tuple[nn.Module, dict]:
        """(model, history) of CDCM-Net trained on the real photos (or loaded)."""
        s = self.settings
        return fit_cdcm(self.real, f"{self.run_dir}/sample/cdcm", profile=s.profile, epochs=s.sample_epochs,
                        lr=s.lr, batch_size=SAMPLE_BATCH_SIZE, seed=s.seed, max_steps=s.max_steps)

    def evidence(self) -> dict:
        """What proves which configuration ran: weights, max_steps, the encoders and image size, token shapes and
        the parameter counts of CDCM-Net (memory + fusion) and of the frozen image encoder."""
        from iaa_lib.cdcm.model import CDCMNet, create_image_tokens

        s, spec = self.settings, self.data.real["encoders"]
        with torch.random.fork_rng():
            encoder = create_image_tokens(spec["image"], None)  # only counted: random init, nothing downloaded
        return {"weights": s.weights, "max_steps": s.max_steps, "image_encoder": spec["image"],
                "text_encoder": spec["text"], "image_size": spec["image_size"],
                "n_visual_tokens": int(self.data.real["tokens"].shape[1]),
                "visual_dim": int(self.data.real["tokens"].shape[2]), "text_dim": int(self.data.real["comments"].shape[2]),
                "cdcm_parameters": sum(p.numel() for p in CDCMNet(s.profile).parameters()),
                "image_encoder_parameters": sum(p.numel() for p in encoder.parameters()),
                "n_synthetic": s.n_synthetic, "min_sentences": s.min_sentences,
                "real_split_sizes": {k: len(v) for k, v in self.data.real_splits.items()}}


def load_chapter(settings: CDCMSettings, run_dir: str | os.PathLike = "runs/cdcm") -> Chapter:
    """Check the profile's inputs, set the torch threads, and load (or compute and cache) both sets' inputs."""
    settings.check_inputs()
    if settings.threads:  # on a shared 2-core CPU one thread avoids oversubscription stalls
        torch.set_num_threads(settings.threads)
    data = chapter_data(settings.profile, settings.n_synthetic, settings.seed, settings.data_root or None,
                        str(run_dir), weights=settings.weights, manifest=settings.manifest or None,
                        comments_file=settings.comments_file or None, min_sentences=settings.min_sentences)
    return Chapter(settings, str(run_dir), data, split_datasets(data.synthetic, data.synthetic_splits),
                   split_datasets(data.real, data.real_splits))
