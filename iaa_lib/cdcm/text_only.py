"""CDCM-Net's textual branch on its own: the path real comments take when they are present (modality="real"),
scored from text alone.

Comment rows [B, T, text_dim] -> the fixed projection to D -> the text encoder (key-padding mask in the textbook
variant) -> its token 0 -> the text classifier's 10-bin distribution p_txt and the text confidence c_txt. The
training loss is the model's own for this branch: the main EMD1 on p_txt plus L_conf,txt = (c_txt - (1 - EMD1))^2
+ EMD2(p_txt, y). The image encoder, the memory and the fusion are not used (the wrapped CDCMNet keeps them
untrained, so its state dict stays loadable as a CDCMNet).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from iaa_lib.cdcm.data import fit_cdcm, split_datasets
from iaa_lib.cdcm.model import CDCMNet
from iaa_lib.seed import seed_everything


class CDCMTextBranch(nn.Module):
    """Text-only CDCM-Net: comment_features [B,T,text_dim], comment_mask [B,T] -> dict(pred [B,10], confidence [B],
    aux_loss = w_conf * L_conf,txt in training)."""

    input_keys = ("comment_features", "comment_mask", "dist")

    def __init__(self, config: str = "smoke", variant: str = "textbook", w_conf: float = 1.0, **overrides: Any) -> None:
        super().__init__()
        self.net = CDCMNet(config, variant=variant, modality="real", w_conf=w_conf, **overrides)
        self.model_config = {**self.net.model_config, "name": "cdcm_text_branch"}

    def forward(self, comment_features: torch.Tensor, comment_mask: torch.Tensor | None = None,
                dist: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Distribution and confidence of the text head; `dist` [B,10] is read in training only."""
        net = self.net
        if comment_features.ndim != 3 or comment_features.shape[-1] != net.cfg["text_dim"]:
            raise ValueError(f"CDCMTextBranch: comment_features must be [B, T, {net.cfg['text_dim']}], "
                             f"got {tuple(comment_features.shape)}")
        rows, mask = net.text_rows(comment_features.float(), comment_mask, comment_features.shape[1])
        summary = net.text_encoder(rows, net.text_padding(mask))[:, 0]
        pred = net._distribution(net.modality_classifier["text"](summary))
        confidence = net.modality_confidence_of("text", summary)
        aux = pred.new_zeros(())
        if self.training:
            if dist is None:
                raise ValueError("CDCMTextBranch: training needs `dist` [B, 10] (target of the confidence loss)")
            aux = net.loss_weights["conf"] * net.confidence_loss(confidence, pred, dist.float())
        return {"pred": pred, "confidence": confidence, "aux_loss": aux}


def text_only_datasets(frame: pd.DataFrame, comment_features: torch.Tensor, comment_mask: torch.Tensor,
                       splits: Mapping[str, Sequence[str]]) -> dict:
    """{split: CDCMFeatureDataset} of padded comment rows (no visual tokens: the branch never reads them)."""
    inputs = dict(frame=frame.reset_index(drop=True), tokens=torch.empty(len(frame), 0, 0),
                  comments=comment_features, mask=comment_mask)
    return split_datasets(inputs, splits)


def fit_text_branch(datasets: Mapping, out_dir: str, profile: str = "smoke", variant: str = "textbook",
                    epochs: int = 8, lr: float = 1e-3, batch_size: int = 32, seed: int = 0, **overrides: Any):
    """Train (or load) CDCMTextBranch(profile, variant, **overrides) with fit_cdcm's recipe (Adam, cosine, EMD1 + aux,
    best val SRCC); overrides are CDCMNet config keys (e.g. text_dim for another sentence encoder)."""
    seed_everything(seed)
    branch = CDCMTextBranch(profile, variant=variant, **overrides)
    return fit_cdcm(datasets, out_dir, profile=profile, variant=variant, epochs=epochs, lr=lr,
                    batch_size=batch_size, seed=seed, model=branch)
