"""The NIMA baseline's entry in the book: registry name, benchmark, comparison recipe, published rows."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from iaa_lib.data.datasets import split_loaders
from iaa_lib.losses import EMDLoss
from iaa_lib.nima.pipeline import NIMA_PROFILES, new_nima
from iaa_lib.profiles import PROFILE_NAMES
from iaa_lib.spec import BenchSpec, PaperSpec
from iaa_lib.training import evaluate, fit_or_load

BENCH_IMAGE_SIZE = 224


def build(config: str) -> nn.Module:
    """NIMA at `config` with random weights (for the benchmark)."""
    from iaa_lib.nima.model import NIMA

    return NIMA(config=config, weights=None)


def example_inputs(model: nn.Module, batch: int, device: torch.device) -> dict[str, Tensor]:
    """Random normalised images (batch, 3, 224, 224)."""
    return {"image": torch.randn(batch, 3, BENCH_IMAGE_SIZE, BENCH_IMAGE_SIZE, device=device)}


def compare(data, s: dict, out_dir: Path, seed: int):
    """Train NIMA with the baseline notebook's recipe on the protocol's split; (model, history, predictions, {})."""
    recipe = replace(s["recipe"], seed=seed)
    torch.manual_seed(seed)
    model = new_nima(recipe)
    loaders = split_loaders(data.parts(), None, recipe.image_size, model.mean, model.std, recipe.batch_size,
                            seed=seed, cache_images=data.dataset != "ava")
    model, history = fit_or_load(model, EMDLoss(r=2), loaders["train"], loaders["val"],
                                 recipe.fit_config(out_dir, progress=False))
    _, predictions = evaluate(model, loaders["test"], return_predictions=True)
    return model, history, predictions, {}


SPEC = PaperSpec(
    name="nima",
    title="NIMA baseline",
    models={"nima": "iaa_lib.nima.model:NIMA"},
    bench=BenchSpec(
        "NIMA (Inception-v3)", "image 3×224×224",
        "timm inception_v3 + dropout + linear; NIMA's 224 px crops (Inception-v3's native size is 299 px)",
        build, example_inputs),
    compare_settings={profile: dict(recipe=NIMA_PROFILES.get(profile)) for profile in PROFILE_NAMES},
    compare=compare,
    sota_methods=("NIMA (Inception-v2)", "NIMA retrained (IRv2)"),
)
