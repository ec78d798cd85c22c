"""The NIMA baseline's entry in the book: registry name, benchmark, comparison recipe, published rows."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from iaa_lib.data.datasets import split_loaders
from iaa_lib.losses import EMDLoss
from iaa_lib.spec import BenchSpec, PaperSpec
from iaa_lib.training import FitConfig, evaluate, fit_or_load

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
    from iaa_lib.nima.model import NIMA

    torch.manual_seed(seed)
    model = NIMA(config=s["config"])
    loaders = split_loaders(data.parts(), None, s["image_size"], model.mean, model.std, s["batch_size"], seed=seed,
                            cache_images=data.dataset != "ava")
    cfg = FitConfig(epochs=s["epochs"], lr=s["lr"], backbone_lr=s["backbone_lr"], weight_decay=1e-4,
                    warmup_epochs=0.5, seed=seed, out_dir=str(out_dir), progress=False)
    model, history = fit_or_load(model, EMDLoss(r=2), loaders["train"], loaders["val"], cfg)
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
    compare_settings={
        "smoke": dict(config="smoke", image_size=128, epochs=6, batch_size=16, lr=3e-3, backbone_lr=3e-4),
        "full": dict(config="full", image_size=224, epochs=20, batch_size=64, lr=3e-4, backbone_lr=3e-5),
    },
    compare=compare,
    sota_methods=("NIMA (Inception-v2)", "NIMA retrained (IRv2)"),
)
