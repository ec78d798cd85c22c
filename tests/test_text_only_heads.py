"""The papers' text heads run text-only: CDCM-Net's text branch and CG-IAA's MAP head over attribute critiques."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from iaa_lib.cdcm.model import CDCMNet
from iaa_lib.cdcm.text_only import CDCMTextBranch, fit_text_branch, text_only_datasets
from iaa_lib.cgiaa.attributes import ATTRIBUTES
from iaa_lib.cgiaa.text_only import PROMPT_TEXTS, attribute_critique_embeddings, sentence_attributes
from iaa_lib.data.labels import DIST_COLUMNS


def test_text_branch_is_cdcm_nets_real_comment_path():
    torch.manual_seed(0)
    branch = CDCMTextBranch("smoke").eval()
    features, mask = torch.randn(3, 5, 384), torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]).bool()
    out = branch(features, mask)
    assert out["pred"].shape == (3, 10) and torch.allclose(out["pred"].sum(1), torch.ones(3))
    assert (out["confidence"] > 0).all() and float(out["aux_loss"]) == 0.0
    # the same weights inside a full CDCMNet(modality="real") give the same text head on the same rows
    net = CDCMNet("smoke", modality="real").eval()
    net.load_state_dict(branch.net.state_dict())
    full = net(visual_tokens=torch.randn(3, 5, 1280), comment_features=features, comment_mask=mask)
    assert torch.allclose(full["modality_pred"][:, 1], out["pred"], atol=1e-6)
    assert torch.allclose(full["confidence"][:, 1], out["confidence"], atol=1e-6)


def test_text_branch_ignores_padded_rows_and_trains_with_the_confidence_loss():
    torch.manual_seed(0)
    branch = CDCMTextBranch("smoke").eval()
    features, mask = torch.randn(2, 4, 384), torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]).bool()
    changed = features.clone()
    changed[~mask] = 5.0
    assert torch.allclose(branch(features, mask)["pred"], branch(changed, mask)["pred"], atol=1e-6)
    branch.train()
    dist = torch.softmax(torch.randn(2, 10), dim=1)
    out = branch(features, mask, dist)
    assert float(out["aux_loss"].detach()) > 0
    out["aux_loss"].backward()
    assert branch.net.text_encoder.blocks[0].fc1.weight.grad is not None
    assert branch.net.image_encoder.blocks[0].fc1.weight.grad is None  # the image side is never used
    with pytest.raises(ValueError, match="dist"):
        branch(features, mask)


def toy_text_set(n: int = 200, seed: int = 0):
    """Images whose one 'sentence' feature points along +e0 for high scores and -e0 for low ones."""
    rng = np.random.default_rng(seed)
    high = rng.random(n) > 0.5
    peaks = np.where(high, 8, 3) + rng.integers(-1, 2, size=n)
    dist = np.zeros((n, 10))
    dist[np.arange(n), peaks - 1] = 1.0
    frame = pd.DataFrame({"image_id": [str(i) for i in range(n)], "mos": peaks.astype(float)})
    frame[DIST_COLUMNS] = dist
    features = torch.tensor(rng.normal(scale=0.3, size=(n, 3, 384)), dtype=torch.float32)
    features[:, 0, 0] += torch.tensor(np.where(high, 3.0, -3.0), dtype=torch.float32)
    mask = torch.tensor([[1, 0, 0]] * n).bool()
    ids = frame["image_id"].tolist()
    return frame, features, mask, {"train": ids[:140], "val": ids[140:160], "test": ids[160:]}


def test_text_branch_learns_a_score_from_text_alone(tmp_path):
    from torch.utils.data import DataLoader

    from iaa_lib.training import evaluate

    frame, features, mask, splits = toy_text_set()
    datasets = text_only_datasets(frame, features, mask, splits)
    model, history = fit_text_branch(datasets, str(tmp_path / "branch"), epochs=8, batch_size=16)
    metrics = evaluate(model, DataLoader(datasets["test"], batch_size=64))
    assert metrics["srcc"] > 0.6 and history["best_epoch"] is not None


def test_attribute_critiques_average_each_attributes_sentences():
    vectors = {"warm colours here": [1.0, 0.0], "nice colours": [0.0, 1.0], "sharp focus": [3.0, 4.0],
               "what a moment": [0.0, 2.0]}
    attribute_of = {"warm colours here": "colour_and_light", "nice colours": "colour_and_light",
                    "sharp focus": "depth_and_focus", "what a moment": "general"}
    encoder = lambda texts: torch.tensor([vectors[t] for t in texts])  # noqa: E731
    out = attribute_critique_embeddings([["warm colours here", "nice colours", "sharp focus"], ["what a moment"]],
                                        attribute_of, encoder)
    assert out.shape == (2, 4, 2)
    assert out[0, 0].tolist() == pytest.approx([2 ** -0.5, 2 ** -0.5])  # mean (0.5, 0.5), unit norm
    assert out[0, 1].tolist() == [0.0, 0.0] and out[0, 2].tolist() == pytest.approx([0.6, 0.8])
    assert out[1, 3].tolist() == pytest.approx([0.0, 1.0]) and out[1, :3].abs().sum() == 0


def test_sentence_attributes_use_the_lexicon_and_the_prompt_embeddings():
    prompts = {p: [1.0, 0.0, 0.0, 0.0] if k < 6 else [0.0, 0.0, 0.0, 1.0] for k, p in enumerate(PROMPT_TEXTS)}
    vectors = {**prompts, "such a lovely moment": [0.0, 0.0, 0.0, 1.0]}
    encoder = lambda texts: torch.tensor([vectors[t] for t in texts])  # noqa: E731
    labels = sentence_attributes(["the colours are vivid", "the horizon is tilted", "such a lovely moment"], encoder)
    assert labels == {"the colours are vivid": "colour_and_light", "the horizon is tilted": "composition",
                      "such a lovely moment": "general"}
    assert set(labels.values()) <= set(ATTRIBUTES)
