"""Symmetric InfoNCE for image-text pairs (VLAP; AesCLIP recipe: cosine similarity, tau = 0.07, L = NCE(i->t) + NCE(t->i))."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: float = 0.07,
             positives: torch.Tensor | None = None, combine: str = "sum") -> torch.Tensor:
    """Symmetric InfoNCE of paired embeddings (B, E) (row i of each is a positive pair); returns a scalar.

    `positives` (B, B) bool marks extra positives (e.g. the same templated comment on two images): the target
    of each row/column is then uniform over its positives. `combine="sum"` is the spec's NCE(i->t) + NCE(t->i);
    "mean" halves it, as CLIP does.
    """
    if image_emb.ndim != 2 or image_emb.shape != text_emb.shape:
        raise ValueError(f"image_emb and text_emb must both be (B, E), got {tuple(image_emb.shape)} and "
                         f"{tuple(text_emb.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if combine not in ("sum", "mean"):
        raise ValueError(f"combine must be 'sum' or 'mean', got {combine!r}")
    logits = F.normalize(image_emb.float(), dim=-1) @ F.normalize(text_emb.float(), dim=-1).t() / temperature
    batch = logits.shape[0]
    eye = torch.eye(batch, dtype=torch.bool, device=logits.device)
    if positives is None:
        target = eye.float()
    else:
        if positives.shape != (batch, batch):
            raise ValueError(f"positives must be ({batch}, {batch}), got {tuple(positives.shape)}")
        target = (positives.to(logits.device) | eye).float()
    image_to_text = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    text_to_image = -(target.t() / target.t().sum(1, keepdim=True) * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    total = image_to_text + text_to_image
    return total if combine == "sum" else total / 2
