"""The EAT chapter's pipeline: its data splits and loaders, and the training recipe of notebook 02.

``EATRecipe`` (training settings; ``EATRecipe.paper()`` = the paper's schedule), ``eat_data(dataset, recipe)``
(parts, image folder, loaders) and ``train_eat(data, recipe, variant, out_dir)`` (``fit_or_load`` into
``out_dir``). ``chapter_runs`` trains or loads the three runs of notebook 02, so notebooks 03-04 asking with the
same parameters reuse its checkpoints (``fit_or_load`` keys a run on its configuration).
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
from iaa_lib.training import FitConfig, evaluate, fit_or_load

SPLIT_RATIOS = {"synthetic": (0.7, 0.15, 0.15), "ava": (0.9, 0.05, 0.05)}  # ava: EAT's seeded 90/5/5


@dataclass(frozen=True)
class EATRecipe:
    """How EAT is trained (defaults: the CPU smoke run, AdamW + cosine, which a random-init DAT needs)."""

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
    seed: int = 0

    @classmethod
    def paper(cls, **overrides) -> EATRecipe:
        """The paper's recipe: DAT-B at 224 px, Adam lr 1e-6, x0.1 every 5 epochs, 20 epochs, batch 16."""
        settings = dict(config="full", image_size=224, epochs=20, batch_size=16, lr=1e-6, weight_decay=0.0,
                        optimizer="adam", schedule="step", warmup_epochs=0.0, step_epochs=5)
        return cls(**{**settings, **overrides})

    def fit_config(self, out_dir: str | os.PathLike) -> FitConfig:
        """The engine's settings for this recipe, checkpoints in out_dir (a notebook path such as runs/eat/x)."""
        return FitConfig(epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay, optimizer=self.optimizer,
                         schedule=self.schedule, warmup_epochs=self.warmup_epochs, step_epochs=self.step_epochs,
                         gamma=self.gamma, seed=self.seed, progress=False, out_dir=str(resolve(out_dir)))


@dataclass
class EATData:
    """A split data set: label frames per split, their image folder (None: frames hold paths), loaders per split."""

    parts: dict[str, pd.DataFrame]
    image_dir: Path | None
    loaders: dict[str, DataLoader]


def labelled_parts(
    dataset: Literal["synthetic", "ava_sample", "ava"],
    *,
    run_dir: str | os.PathLike = "runs/eat",
    n_synthetic: int = 480,
    synthetic_size: int = 96,
    data_root: str | os.PathLike | None = None,
    seed: int = 0,
) -> tuple[dict[str, pd.DataFrame], Path | None]:
    """({split: label frame}, image folder) of a chapter data set. synthetic (70/15/15) and ava_sample as in
    iaa_lib.data.labelled_sets; ava = EAT's own seeded 90/5/5 random split, images in data_root/images/<id>.jpg."""
    if dataset == "ava":
        if not data_root:
            raise ValueError("dataset='ava' needs data_root, a folder with images/<image_id>.jpg")
        frame = read_ava_votes(AVA_VOTES_FILE)
        return apply_split(frame, random_split(frame["image_id"], SPLIT_RATIOS["ava"], seed=seed)), resolve(data_root) / "images"
    frame, image_dir, splits = labelled_set(dataset, run_dir=run_dir, n_synthetic=n_synthetic,
                                            synthetic_size=synthetic_size, seed=seed,
                                            synthetic_ratios=SPLIT_RATIOS["synthetic"])
    return apply_split(frame, splits), image_dir


def eat_data(dataset: Literal["synthetic", "ava_sample", "ava"], recipe: EATRecipe, **where) -> EATData:
    """The data set's parts and EAT's loaders: squash + flip for training, squash for evaluation, batches of
    recipe.batch_size everywhere (the as-published model's scores depend on the evaluation batch).

    `where`: labelled_parts' run_dir, n_synthetic, synthetic_size, data_root. Images are cached in memory except
    for full AVA."""
    parts, image_dir = labelled_parts(dataset, seed=recipe.seed, **where)
    loaders = split_loaders(parts, image_dir, recipe.image_size, batch_size=recipe.batch_size,
                            eval_batch_size=recipe.batch_size, cache_images=dataset != "ava", seed=recipe.seed)
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
    recipe: EATRecipe,
    variant: str,
    out_dir: str | os.PathLike,
    dat_checkpoint: str | os.PathLike | None = None,
) -> tuple[EAT, dict]:
    """Train EAT `variant` on data's train split, selected on val (or load the finished run in out_dir)."""
    torch.manual_seed(recipe.seed)  # the same initial weights whichever notebook trains first
    model = new_eat(recipe.config, variant, dat_checkpoint)
    return fit_or_load(model, eat_loss(variant), data.loaders["train"], data.loaders["val"],
                       recipe.fit_config(out_dir))


@dataclass
class EATRuns:
    """Notebook 02's three runs with their data: textbook and as-published on `main`, textbook on `real`."""

    main: EATData
    real: EATData
    models: dict[str, EAT]  # "textbook", "as_published" (trained on main), "ava_sample" (trained on real)
    histories: dict[str, dict]


def chapter_runs(
    recipe: EATRecipe,
    ava_epochs: int,
    *,
    run_dir: str = "runs/eat",
    n_synthetic: int = 480,
    synthetic_size: int = 96,
    data_root: str | None = None,
    dat_checkpoint: str | None = None,
) -> EATRuns:
    """Train or load notebook 02's runs into <run_dir>/<name>: main data = full AVA when data_root is given,
    else the synthetic set; real = the embedded AVA sample, trained for ava_epochs."""
    main = eat_data("ava" if data_root else "synthetic", recipe, run_dir=run_dir, n_synthetic=n_synthetic,
                    synthetic_size=synthetic_size, data_root=data_root)
    real = eat_data("ava_sample", recipe)
    plan = {"textbook": (main, recipe, "eat_textbook"), "as_published": (main, recipe, "eat_as_published"),
            "ava_sample": (real, replace(recipe, epochs=ava_epochs), "eat_textbook")}
    models, histories = {}, {}
    for name, (data, run_recipe, variant) in plan.items():
        models[name], histories[name] = train_eat(data, run_recipe, variant, f"{run_dir}/{name}", dat_checkpoint)
    return EATRuns(main, real, models, histories)


# The released checkpoints' own numbers, read from their file names (EAT spec section 6; the paper's table is
# to-verify): AVA_AOT_vacc_0.8259_srcc_0.7596_vlcc_0.7710.pth, TAD66K_AOT_vacc_0.6882_srcc_0.5171_vlcc_0.5460.pth.
RELEASED_RESULTS = {
    "ava": {"srcc": 0.7596, "plcc": 0.7710, "acc": 0.8259, "split": "ava_eat_random (EAT/TANet random test, ~12.8k)"},
    "tad66k": {"srcc": 0.5171, "plcc": 0.5460, "acc": 0.6882, "split": "tad66k_official test (14,079)"},
}
RELEASED_PROTOCOLS = {
    "ava": "EAT as published (AVA): 224 px squash resize (BICUBIC), 10 raw outputs, predicted score sum_i i*y_i "
           "(no softmax), evaluation batches of {batch} in the frame's order (learned batch-mean references make a "
           "score depend on its batch companions), Acc with score <= 5 low for prediction and truth",
    "tad66k": "EAT as published (TAD66K): 224 px squash resize (BICUBIC), 1 scalar output against score/10, "
              "evaluation batches of {batch} in the frame's order, Acc with <= 0.5 low for prediction and truth",
}


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
    if dataset not in RELEASED_RESULTS:
        raise ValueError(f"dataset must be one of {sorted(RELEASED_RESULTS)}, got {dataset!r}")
    model = EAT(config=config, variant="eat_as_published", **({} if dataset == "ava" else {"head": "scalar"}))
    load_official_checkpoint(model, checkpoint if isinstance(checkpoint, dict) else resolve(checkpoint))
    if dataset == "tad66k":
        frame = frame.assign(mos=frame["mos"] / 10.0).drop(columns=[c for c in frame.columns if c.startswith("dist_")])
    images = AestheticDataset(frame, image_dir, eval_transform(model.cfg.img_size))
    loader = DataLoader(images, batch_size=batch_size, shuffle=False)
    metrics = evaluate(model, loader, device=device, threshold=5.0 if dataset == "ava" else 0.5, high_if="gt")
    return {"srcc": metrics["srcc"], "plcc": metrics["plcc"], "acc": metrics["acc"], "n": metrics["n"],
            "batch_size": batch_size, "protocol": RELEASED_PROTOCOLS[dataset].format(batch=batch_size),
            "published": dict(RELEASED_RESULTS[dataset])}
