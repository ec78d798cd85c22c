"""The EAT chapter's settings, data and training runs: what notebooks 02-04 share, written once.

``EATSettings`` (one frozen dataclass; ``EAT_PROFILES.smoke`` = the CPU run, ``EAT_PROFILES.full`` = the paper's
recipe), ``eat_data(dataset, settings)`` (parts, image folder, loaders), ``train_eat(data, settings, variant,
out_dir)`` (``fit_or_load`` into ``out_dir``) and ``load_chapter(settings, run_dir)``: notebook 02's three runs,
trained once and loaded by notebooks 03-04 (``fit_or_load`` keys a run on its configuration).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
from torch.utils.data import DataLoader

from iaa_lib.data.datasets import AestheticDataset, split_loaders
from iaa_lib.data.labelled_sets import AVA_VOTES_FILE, labelled_set
from iaa_lib.data.labels import read_ava_votes
from iaa_lib.data.splits import apply_split, random_split
from iaa_lib.data.transforms import eval_transform
from iaa_lib.eat.model import EAT, eat_loss, load_official_checkpoint
from iaa_lib.paths import resolve
from iaa_lib.data.sota import published
from iaa_lib.profiles import Profiles, check_rehearsal_switches
from iaa_lib.seed import seed_everything
from iaa_lib.training import FitConfig, evaluate, fit_or_load

SPLIT_RATIOS = {"synthetic": (0.7, 0.15, 0.15), "ava": (0.9, 0.05, 0.05)}  # ava: EAT's seeded 90/5/5


@dataclass(frozen=True)
class EATSettings:
    """The chapter's settings (defaults: the CPU smoke run, AdamW + cosine, which a random-init DAT needs).

    Training: config .. gamma, seed (also read by the comparison); data: n_synthetic, synthetic_size (px),
    manifest (the AVA data check's manifest, `python -m iaa_lib data check --dataset ava`) or data_root (a full
    AVA copy with images/<id>.jpg; both "" = the synthetic set); ava_epochs (the run on the AVA sample);
    dat_checkpoint (official DAT weights; "" = random init); threads (0 = torch's default); ig_steps
    (integrated-gradients steps of notebook 04). Rehearsal: max_steps (> 0: at most this many optimiser steps per
    training run), weights ("random": DAT built by name with random init, dat_checkpoint not read)."""

    config: str = "smoke"
    image_size: int = 64
    epochs: int = 12
    batch_size: int = 16
    lr: float = 0.001
    weight_decay: float = 0.05
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = 1.0
    step_epochs: int = 5
    gamma: float = 0.1
    n_synthetic: int = 480
    synthetic_size: int = 96
    ava_epochs: int = 12
    data_root: str = ""
    dat_checkpoint: str = ""
    threads: int = 1
    ig_steps: int = 32
    seed: int = 0
    max_steps: int = 0
    weights: str = "pretrained"
    manifest: str = ""

    def __post_init__(self) -> None:
        check_rehearsal_switches(self)

    @property
    def dat_weights(self) -> str:
        """The DAT checkpoint to load: dat_checkpoint, or "" (random init) when weights == "random"."""
        return "" if self.weights == "random" else self.dat_checkpoint

    def fit_config(self, out_dir: str | os.PathLike) -> FitConfig:
        """The engine's settings for this recipe, checkpoints in out_dir (a notebook path such as runs/eat/x)."""
        return FitConfig(epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay, optimizer=self.optimizer,
                         schedule=self.schedule, warmup_epochs=self.warmup_epochs, step_epochs=self.step_epochs,
                         gamma=self.gamma, seed=self.seed, progress=False, out_dir=str(resolve(out_dir)),
                         max_steps=self.max_steps or None)


EAT_PROFILES = Profiles(
    smoke=EATSettings(),
    # the paper: DAT-B at 224 px from the official ImageNet weights, Adam lr 1e-6, x0.1 every 5 epochs, 20 epochs,
    # batch 16, on a full AVA copy
    full=EATSettings(config="full", image_size=224, epochs=20, batch_size=16, lr=1e-6, weight_decay=0.0,
                     optimizer="adam", schedule="step", warmup_epochs=0.0, step_epochs=5, ava_epochs=20,
                     manifest="runs/data/ava_manifest.csv", dat_checkpoint="data/weights/dat_base_in1k_224.pth",
                     threads=0, ig_steps=64),
)


@dataclass
class EATData:
    """A split data set: label frames per split, their image folder (None: frames hold paths), loaders per split."""

    parts: dict[str, pd.DataFrame]
    image_dir: Path | None
    loaders: dict[str, DataLoader]


def labelled_parts(
    dataset: Literal["synthetic", "ava_sample", "ava"],
    settings: EATSettings,
    run_dir: str | os.PathLike = "runs/eat",
) -> tuple[dict[str, pd.DataFrame], Path | None]:
    """({split: label frame}, image folder) of a chapter data set. synthetic (70/15/15, cached under run_dir) and
    ava_sample as in iaa_lib.data.labelled_sets; ava = EAT's own seeded 90/5/5 random split, of the images the
    data check found readable (settings.manifest; the frame holds their paths), or of the AVA labels with images
    in settings.data_root/images/<id>.jpg."""
    if dataset == "ava":
        if settings.manifest and settings.data_root:
            raise ValueError(f"EAT's AVA data: give manifest ({settings.manifest!r}) or data_root "
                             f"({settings.data_root!r}), not both (the full profile sets manifest; pass -p manifest '' "
                             "to read data_root instead)")
        if settings.manifest:
            frame, image_dir, _ = labelled_set("ava", manifest=settings.manifest, seed=settings.seed)
        elif settings.data_root:
            frame, image_dir = read_ava_votes(AVA_VOTES_FILE), resolve(settings.data_root) / "images"
        else:
            raise ValueError("dataset='ava' needs manifest (written by `python -m iaa_lib data check --dataset ava "
                             "--root DIR`) or data_root, a folder with images/<image_id>.jpg")
        split = random_split(frame["image_id"], SPLIT_RATIOS["ava"], seed=settings.seed)
        return apply_split(frame, split), image_dir
    frame, image_dir, splits = labelled_set(dataset, run_dir=run_dir, n_synthetic=settings.n_synthetic,
                                            synthetic_size=settings.synthetic_size, seed=settings.seed,
                                            synthetic_ratios=SPLIT_RATIOS["synthetic"])
    return apply_split(frame, splits), image_dir


def eat_data(dataset: Literal["synthetic", "ava_sample", "ava"], settings: EATSettings,
             run_dir: str | os.PathLike = "runs/eat") -> EATData:
    """The data set's parts and EAT's loaders: squash + flip for training, squash for evaluation, batches of
    settings.batch_size everywhere (the as-published model's scores depend on the evaluation batch).
    Images are cached in memory except for full AVA."""
    parts, image_dir = labelled_parts(dataset, settings, run_dir)
    loaders = split_loaders(parts, image_dir, settings.image_size, batch_size=settings.batch_size,
                            eval_batch_size=settings.batch_size, cache_images=dataset != "ava", seed=settings.seed)
    return EATData(parts, image_dir, loaders)


def new_eat(config: str, variant: str, dat_checkpoint: str | os.PathLike | None = None) -> EAT:
    """EAT(config, variant); with dat_checkpoint, the official DAT weights loaded (EAT's own layers stay fresh)."""
    model = EAT(config=config, variant=variant)
    if dat_checkpoint:
        report = load_official_checkpoint(model, resolve(dat_checkpoint), trust_pickle=True)
        print(f"loaded {len(report['loaded'])} tensors; fresh init kept for {len(report['missing'])}: "
              f"{report['missing'][:3]} ...")
    return model


def train_eat(
    data: EATData,
    settings: EATSettings,
    variant: str,
    out_dir: str | os.PathLike,
    dat_checkpoint: str | os.PathLike | None = None,
) -> tuple[EAT, dict]:
    """Train EAT `variant` on data's train split, selected on val (or load the finished run in out_dir)."""
    torch.manual_seed(settings.seed)  # the same initial weights whichever notebook trains first
    model = new_eat(settings.config, variant, dat_checkpoint)
    return fit_or_load(model, eat_loss(variant), data.loaders["train"], data.loaders["val"],
                       settings.fit_config(out_dir))


@dataclass
class EATChapter:
    """Notebook 02's three runs with their data: textbook and as-published on `main`, textbook on `real`."""

    settings: EATSettings
    main: EATData
    real: EATData
    models: dict[str, EAT]  # "textbook", "as_published" (trained on main), "ava_sample" (trained on real)
    histories: dict[str, dict]


def load_chapter(settings: EATSettings, run_dir: str = "runs/eat") -> EATChapter:
    """Seed, set torch's threads, then train or load notebook 02's runs into <run_dir>/<name>: main data = full
    AVA when settings.manifest or settings.data_root is set, else the synthetic set; real = the embedded AVA sample, trained for
    settings.ava_epochs."""
    seed_everything(settings.seed)
    if settings.threads:  # small tensors: one thread avoids oversubscription on a shared CPU
        torch.set_num_threads(settings.threads)
    main = eat_data("ava" if settings.manifest or settings.data_root else "synthetic", settings, run_dir)
    real = eat_data("ava_sample", settings, run_dir)
    plan = {"textbook": (main, settings, "eat_textbook"), "as_published": (main, settings, "eat_as_published"),
            "ava_sample": (real, replace(settings, epochs=settings.ava_epochs), "eat_textbook")}
    models, histories = {}, {}
    for name, (data, run_settings, variant) in plan.items():
        models[name], histories[name] = train_eat(data, run_settings, variant, f"{run_dir}/{name}",
                                                  settings.dat_weights)
    return EATChapter(settings, main, real, models, histories)


# The released checkpoints' own numbers are the "EAT" rows of book/results/sota.csv (read from their file names).
RELEASED_DATASETS = {"ava": "AVA", "tad66k": "TAD66K"}
RELEASED_PROTOCOLS = {
    "ava": "EAT as published (AVA): 224 px squash resize (BICUBIC), 10 raw outputs, predicted score sum_i i*y_i "
           "(no softmax), evaluation batches of {batch} in the frame's order (learned batch-mean references make a "
           "score depend on its batch companions), Acc with score <= 5 low for prediction and truth",
    "tad66k": "EAT as published (TAD66K): 224 px squash resize (BICUBIC), 1 scalar output against score/10, "
              "evaluation batches of {batch} in the frame's order, Acc with <= 0.5 low for prediction and truth",
}


def save_official_layout(model: EAT, path: str | os.PathLike) -> Path:
    """Save `model`'s weights as the official EAT run saved its released files: a bare state dict whose keys carry
    DataParallel's "module." prefix (what `load_official_checkpoint` reads); returns the path."""
    path = resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"module.{key}": value for key, value in model.state_dict().items()}, path)
    return path


def evaluate_released_checkpoint(
    checkpoint: str | os.PathLike | dict,
    frame: pd.DataFrame,
    image_dir: str | os.PathLike | None = None,
    dataset: Literal["ava", "tad66k"] = "ava",
    config: str = "full",
    batch_size: int = 16,
    device: str | None = None,
) -> dict:
    """SRCC / PLCC / Acc of a released EAT checkpoint (official key layout, a path or a state dict) on a label frame.

    frame: image_id, mos (AVA: 1..10 mean of votes; TAD66K: the native 1..10 score, compared as score/10) and
    `path` (or images in image_dir/<image_id>.jpg), scored in its row order. Returns {"srcc", "plcc", "acc"
    (fraction), "n", "batch_size", "protocol", "published"}: the checkpoint's own numbers, for comparison only on
    the split they were measured on. config="smoke" evaluates a small checkpoint of the same layout (tests).
    """
    if dataset not in RELEASED_DATASETS:
        raise ValueError(f"dataset must be one of {sorted(RELEASED_DATASETS)}, got {dataset!r}")
    model = EAT(config=config, variant="eat_as_published", **({} if dataset == "ava" else {"head": "scalar"}))
    load_official_checkpoint(model, checkpoint if isinstance(checkpoint, dict) else resolve(checkpoint))
    if dataset == "tad66k":
        frame = frame.assign(mos=frame["mos"] / 10.0).drop(columns=[c for c in frame.columns if c.startswith("dist_")])
    images = AestheticDataset(frame, image_dir, eval_transform(model.cfg.img_size))
    loader = DataLoader(images, batch_size=batch_size, shuffle=False)
    metrics = evaluate(model, loader, device=device, threshold=5.0 if dataset == "ava" else 0.5, high_if="gt")
    return {"srcc": metrics["srcc"], "plcc": metrics["plcc"], "acc": metrics["acc"], "n": metrics["n"],
            "batch_size": batch_size, "protocol": RELEASED_PROTOCOLS[dataset].format(batch=batch_size),
            "published": published("EAT", RELEASED_DATASETS[dataset])}
