"""SSMR's entry in the book: registry name, benchmark, comparison recipe, published rows."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from iaa_lib.profiles import PROFILE_NAMES
from iaa_lib.spec import BenchSpec, PaperSpec
from iaa_lib.ssmr.chapter import PROFILES, SSMRSettings
from iaa_lib.training import evaluate


def build(config: str) -> nn.Module:
    """SSMR's MRGR head at `config` with random weights (for the benchmark)."""
    from iaa_lib.ssmr.model import SSMR

    return SSMR(config=config, min_score=1.0, max_score=10.0)


def example_inputs(model: nn.Module, batch: int, device: torch.device) -> dict[str, Tensor]:
    """Random node features (batch, nodes, in_dim) and a row-stochastic edge prior (batch, nodes, nodes)."""
    nodes, dim = model.model_config["nodes"], model.model_config["in_dim"]
    return {"nodes": torch.randn(batch, nodes, dim, device=device),
            "prior": torch.rand(batch, nodes, nodes, device=device).softmax(dim=-1)}


def compare(data, s: dict, out_dir: Path, seed: int):
    """Train SSMR's graph head with the chapter's settings on the protocol's split (SRIG references cached)."""
    from iaa_lib.ssmr.pipeline import train_ssmr

    chapter: SSMRSettings = s["settings"]
    setup = chapter.features().setup(data.frame, data.splits, s["image_size"], out_dir.parent / "features")
    run = train_ssmr(setup, out_dir, alpha=chapter.alpha, num_references=chapter.num_references,
                     **{**chapter.training(), "seed": seed})
    _, predictions = evaluate(run.model, DataLoader(run.datasets["test"], batch_size=256), return_predictions=True)
    return run.model, run.history, predictions, {"references": run.references["test"].as_dict()}


SPEC = PaperSpec(
    name="ssmr",
    title="SSMR",
    models={"ssmr": "iaa_lib.ssmr.model:SSMR"},
    bench=BenchSpec(
        "SSMR (MRGR head)", "node features 5×1024 + prior 5×5 (frozen Swin-V2, precomputed)",
        "graph head only (textbook variant, edge prior added): the Swin-V2 extractor is frozen, features cached",
        build, example_inputs),
    compare_settings={  # the chapter's settings, features at its synthetic images' size
        name: dict(settings=PROFILES.get(name), image_size=PROFILES.get(name).synthetic_size) for name in PROFILE_NAMES
    },
    compare=compare,
)
