"""CG-IAA's entry in the book: registry name, benchmark, comparison recipe (the chapter's profiles), published rows."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn

from iaa_lib.cgiaa.chapter import COMPARE_FIELDS, PROFILES
from iaa_lib.profiles import PROFILE_NAMES
from iaa_lib.spec import BenchSpec, PaperSpec

CRITIQUE_TOKEN_IDS = 1000  # random critique ids below this bound are valid for every CLIP text vocabulary


def build(config: str) -> nn.Module:
    """CG-IAA end to end (CLIP towers + MAP head) at `config` with random weights."""
    from iaa_lib.cgiaa.model import create_cgiaa

    return create_cgiaa(config, image_weights=None)


def example_inputs(model: nn.Module, batch: int, device: torch.device) -> dict[str, Tensor]:
    """Random images at the CLIP tower's size and random critique token ids (batch, n_critiques, context)."""
    size = model.clip.image_size
    shape = (batch, model.head.n_critiques, model.clip.context_length)
    return {"image": torch.randn(batch, 3, size, size, device=device),
            "critique_tokens": torch.randint(1, CRITIQUE_TOKEN_IDS, shape, device=device)}


def catalogue(data) -> pd.DataFrame:
    """A protocol's frame in CG-IAA's catalogue layout (row position = image index; source, split, comment_attributes)."""
    from iaa_lib.data.synthetic import COMMENT_ATTRIBUTES

    split_of = {i: name for name, ids in data.splits.items() for i in ids}
    synthetic = data.dataset == "synthetic"
    frame = data.frame.assign(
        image_id=data.frame["image_id"].astype(str),
        source="synthetic" if synthetic else "ava_sample",
        comment_attributes=[list(COMMENT_ATTRIBUTES) if synthetic else [] for _ in range(len(data.frame))])
    frame["split"] = frame["image_id"].map(split_of)
    return frame[frame["split"].notna()].reset_index(drop=True)


def compare(data, s: dict, out_dir: Path, seed: int):
    """Run CG-IAA's stages (VLAP, experts, MAP on image + generated critiques) on the protocol's split, with the
    chapter's settings of profile s["profile"] updated by s."""
    from iaa_lib.cgiaa.pipeline import load_stages, map_stage, protocol_critiques

    settings = replace(PROFILES.get(s["profile"]), **s, seed=seed)
    if settings.config == "full" and not settings.gpt2_path and settings.weights == "pretrained":
        raise ValueError("CG-IAA's full profile needs GPT-2 weights in a local folder (Hugging Face layout): "
                         "pass overrides={'cgiaa': {'gpt2_path': '/path/to/gpt2'}} (notebook: -p cgiaa_gpt2_path ...)")
    frame = catalogue(data)
    stages = load_stages(settings.model_config(), frame, out_dir, settings.vlap_schedule(),
                         settings.train_image_tower, settings.expert_schedule(), settings.zero_shot)
    rows = {name: list(frame.index[frame["split"] == name]) for name in ("train", "val", "test")}
    texts, generated = protocol_critiques(stages, settings.model_config(), out_dir, settings.expert_schedule(),
                                          settings.critique_protocol)
    head, history, _, predictions = map_stage("image_generated_critiques", stages.features, generated, frame,
                                              rows, out_dir, **settings.map_options())
    critiques = {frame["image_id"].iloc[r]: texts[r] for r in rows["test"]}
    return head, history, predictions, {"critiques": critiques}


SPEC = PaperSpec(
    name="cgiaa",
    title="CG-IAA",
    models={"cgiaa": "iaa_lib.cgiaa.model:create_cgiaa"},
    bench=BenchSpec(
        "CG-IAA (MAP)", "image 3×224×224 + 4 critiques ×77 tokens",
        "end to end: open_clip ViT-B/16 image and text towers + MAP head; critique generation (GPT-2 beam "
        "search) is not included, the critiques are given as tokens",
        build, example_inputs),
    compare_settings={name: {f: getattr(PROFILES.get(name), f) for f in COMPARE_FIELDS} for name in PROFILE_NAMES},
    compare=compare,
    sota_methods=("CG-IAA critiques (text only)",),
)
