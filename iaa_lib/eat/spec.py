"""EAT's entry in the book: registry names, benchmark, comparison recipe, published rows."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from iaa_lib.data.datasets import split_loaders
from iaa_lib.eat.pipeline import EAT_PROFILES, EATData, train_eat
from iaa_lib.profiles import PROFILE_NAMES
from iaa_lib.spec import BenchSpec, PaperSpec
from iaa_lib.training import evaluate


def build(config: str) -> nn.Module:
    """EAT at `config` with random weights (for the benchmark)."""
    from iaa_lib.eat.model import EAT

    return EAT(config=config)


def example_inputs(model: nn.Module, batch: int, device: torch.device) -> dict[str, Tensor]:
    """Random normalised images at the model's own size (batch, 3, img_size, img_size)."""
    size = model.cfg.img_size
    return {"image": torch.randn(batch, 3, size, size, device=device)}


def compare(data, s: dict, out_dir: Path, seed: int):
    """Train EAT (textbook variant) with the chapter's recipe (random init) on the protocol's split."""
    recipe = replace(s["recipe"], seed=seed)
    parts = data.parts()
    loaders = split_loaders(parts, None, recipe.image_size, batch_size=recipe.batch_size,
                            eval_batch_size=recipe.batch_size, cache_images=data.dataset != "ava", seed=seed)
    model, history = train_eat(EATData(parts, None, loaders), recipe, "eat_textbook", out_dir)
    _, predictions = evaluate(model, loaders["test"], return_predictions=True)
    return model, history, predictions, {"transform_size": recipe.image_size}


@torch.no_grad()
def sampling_pixels(model: nn.Module, image, image_size: int, display_size: int) -> np.ndarray:
    """(P, 2) pixel (x, y) positions, on a display_size square, where EAT's last deformable block samples its keys
    for a PIL image (all offset groups)."""
    from iaa_lib.data.transforms import eval_transform
    from iaa_lib.eat.dat import normalised_to_pixels

    model.eval()
    positions = model(eval_transform(image_size)(image)[None])["positions"][-1][0]  # (groups, h, w, 2) as (y, x)
    pixels = normalised_to_pixels(positions, positions.shape[1], display_size).reshape(-1, 2)
    return pixels.flip(-1).numpy()


SPEC = PaperSpec(
    name="eat",
    title="EAT",
    models={"eat": "iaa_lib.eat.model:EAT", "dat": "iaa_lib.eat.dat:DAT"},
    bench=BenchSpec("EAT-base", "image 3×224×224", "DAT-B with learned references and sign-agreement offset mask",
                    build, example_inputs),
    compare_settings={profile: dict(recipe=EAT_PROFILES.get(profile)) for profile in PROFILE_NAMES},
    compare=compare,
    sota_methods=("EAT",),
)
