"""CDCM-Net's entry in the book: registry name, benchmark, comparison recipe (the chapter's profiles), published rows."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from iaa_lib.cdcm.chapter import COMPARE_FIELDS, PROFILES
from iaa_lib.profiles import PROFILE_NAMES
from iaa_lib.spec import BenchSpec, PaperSpec
from iaa_lib.training import evaluate

VISUAL_TOKENS = {"full": 50, "smoke": 17}  # CLIP ViT-B/32: CLS + 7x7; smoke EfficientNet-Lite0 at 128 px: mean + 4x4


def build(config: str) -> nn.Module:
    """CDCM-Net (memory + fusion, frozen encoders excluded) at `config` with random weights."""
    from iaa_lib.cdcm.model import CDCMNet

    return CDCMNet(config=config)


def example_inputs(model: nn.Module, batch: int, device: torch.device) -> dict[str, Tensor]:
    """Random visual tokens, comment features, a full comment mask and a vote distribution."""
    tokens = VISUAL_TOKENS[model.config]
    return {"visual_tokens": torch.randn(batch, tokens, model.cfg["visual_dim"], device=device),
            "comment_features": torch.randn(batch, tokens, model.cfg["text_dim"], device=device),
            "comment_mask": torch.ones(batch, tokens, dtype=torch.bool, device=device),
            "dist": torch.rand(batch, model.cfg["n_bins"], device=device).softmax(dim=-1)}


def compare(data, s: dict, out_dir: Path, seed: int):
    """Train CDCM-Net on the protocol's split; test images are scored without comments."""
    from iaa_lib.cdcm.data import fit_cdcm, frame_inputs, nearest_training_sentences, split_datasets

    comments = {str(i): list(c) for i, c in zip(data.frame["image_id"], data.frame["comments"])}
    inputs = frame_inputs(data.frame, None, comments, out_dir.parent / "features", s["profile"], weights=s["weights"])
    datasets = split_datasets(inputs, data.splits, blank_comments=("test",))
    model, history = fit_cdcm(datasets, out_dir, profile=s["profile"], epochs=s["epochs"], lr=s["lr"],
                              batch_size=s["batch_size"], seed=seed, max_steps=s["max_steps"])
    recalled = nearest_training_sentences(model, inputs, data.splits["train"], data.splits["test"])
    _, predictions = evaluate(model, DataLoader(datasets["test"], batch_size=256), return_predictions=True)
    return model, history, predictions, {"recalled": recalled}


SPEC = PaperSpec(
    name="cdcm",
    title="CDCM-Net",
    models={"cdcm": "iaa_lib.cdcm.model:cdcm"},
    bench=BenchSpec(
        "CDCM-Net", "CLIP ViT-B/32 tokens 50×512 (+ 50 comment rows ×512 in training; frozen CLIP, precomputed)",
        "memory + CDMF transformer only: the CLIP encoders are frozen and their features cached",
        build, example_inputs),
    compare_settings={name: {f: getattr(PROFILES.get(name), f) for f in COMPARE_FIELDS} for name in PROFILE_NAMES},
    compare=compare,
)
