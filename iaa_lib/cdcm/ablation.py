"""Checks of CDCM-Net's memory that can fail: zero the value memory, compare the recall with the mean sentence."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from iaa_lib.cdcm.data import CDCMFeatureDataset
from iaa_lib.cdcm.model import CDCMNet


@torch.no_grad()
def predicted_scores(model: CDCMNet, visual_tokens: torch.Tensor, zero_value_memory: bool = False
                     ) -> dict[str, torch.Tensor]:
    """Eval-mode mos [B] (1..10), confidence [B, 2] and memory read-out [B, N, D] of visual tokens [B, N, C];
    zero_value_memory runs the same model with V = 0 (nothing recalled), then restores V."""
    model.eval()
    saved = model.memory.value.detach().clone() if zero_value_memory else None
    if zero_value_memory:
        model.memory.value.zero_()
    try:
        out = model(visual_tokens=visual_tokens)
    finally:
        if saved is not None:
            model.memory.value.copy_(saved)
    bins = torch.arange(1, out["pred"].shape[-1] + 1, dtype=out["pred"].dtype)
    return dict(mos=out["pred"] @ bins, confidence=out["confidence"], readout=out["memory_readout"])


@torch.no_grad()
def recall_cosine(model: CDCMNet, train: CDCMFeatureDataset, test: CDCMFeatureDataset) -> dict[str, float]:
    """Mean cosine, over the test images' real sentence rows, between the actual sentence feature and (a) the
    memory read-out of its paired token, (b) the mean training sentence feature (the recall-free baseline)."""
    n_tokens = test.visual_tokens.shape[1]
    actual, mask = model.text_rows(test.comment_features, test.comment_mask, n_tokens)
    train_rows, train_mask = model.text_rows(train.comment_features, train.comment_mask, n_tokens)
    readout = predicted_scores(model, test.visual_tokens)["readout"]
    mean_sentence = train_rows[train_mask].mean(dim=0)
    recalled = F.cosine_similarity(readout[mask], actual[mask], dim=-1)
    baseline = F.cosine_similarity(mean_sentence.expand_as(actual[mask]), actual[mask], dim=-1)
    return dict(recall=float(recalled.mean()), mean_sentence=float(baseline.mean()))


def reconstruction_of_zero(train: CDCMFeatureDataset, model: CDCMNet) -> float:
    """L_rec of predicting 0 for every real training row: mean over rows of ||t||^2 / D (the bar L_rec must beat)."""
    rows, mask = model.text_rows(train.comment_features, train.comment_mask, train.comment_features.shape[1])
    return float(rows[mask].pow(2).mean())
