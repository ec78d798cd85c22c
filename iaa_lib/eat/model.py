"""EAT (He et al., ACM MM 2023): DAT-B with learned reference points and a sign-agreement offset mask in its D blocks.

Two named variants (the spec's last table):
- ``eat_textbook`` (default, the correct/paper-spirit version): per-sample learned references, sign-agree mask
  (ratio 0.25, outward), softmax 10-bin head, trained with the textbook per-sample EMD (r=2).
- ``eat_as_published`` (the official code): batch-mean learned references (an image's score depends on its batch
  companions), the same mask, 10 raw outputs (no softmax), batch-pooled EMD (r=2).
``config="full"`` is EAT-base at 224 px (86,878,166 parameters with the 10-output head); ``config="smoke"`` is a
3-stage, 64 px model for CPU training in the book. The official checkpoint layout loads with
``load_official_checkpoint`` (re-exported from iaa_lib.eat.dat).
"""
from __future__ import annotations

from typing import Any


from iaa_lib.losses import EMDLoss
from iaa_lib.eat.dat import (
    DAT,
    OFFICIAL_EAT_SWITCHES,
    DATConfig,
    load_official_checkpoint,
    make_dat_config,
    record_attention,
    set_offset_mask_progress,
)

__all__ = ["EAT", "EAT_CONFIGS", "EAT_VARIANTS", "eat_loss", "load_official_checkpoint", "record_attention", "set_offset_mask_progress"]

EAT_VARIANTS: dict[str, dict[str, Any]] = {
    "eat_as_published": {**OFFICIAL_EAT_SWITCHES, "head": "raw10", "loss_reduction": "batch_pooled"},
    "eat_textbook": {"reference": "learned_per_sample", "offset_mask": "sign_agree", "mask_ratio": 0.25,
                     "mask_direction": "outward", "head": "softmax10", "loss_reduction": "sample"},
}
DEFAULT_VARIANT = "eat_textbook"

EAT_CONFIGS: dict[str, DATConfig] = {
    "full": make_dat_config("base"),
    "smoke": make_dat_config("smoke"),
}


def eat_loss(variant: str = DEFAULT_VARIANT) -> EMDLoss:
    """The variant's training loss: EMD r=2, "sample" (textbook NIMA) or "batch_pooled" (EAT's EDMLoss as published)."""
    if variant not in EAT_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(EAT_VARIANTS)}, got {variant!r}")
    return EMDLoss(r=2, reduction=EAT_VARIANTS[variant]["loss_reduction"])


class EAT(DAT):
    """EAT model: forward(image (B, 3, S, S)) -> {"pred", "positions", "references"} (see DAT.forward).

    config: "full" (EAT-base, 224 px) or "smoke" (CPU); variant: "eat_textbook" (default) or "eat_as_published";
    keyword overrides replace single switches (reference=, offset_mask=, mask_ratio=, mask_direction=, head=) or
    DATConfig fields (img_size=, drop_path_rate=, ...).
    """

    def __init__(self, config: str = "smoke", variant: str = DEFAULT_VARIANT, **overrides: Any) -> None:
        if config not in EAT_CONFIGS:
            raise ValueError(f"config must be one of {sorted(EAT_CONFIGS)}, got {config!r}")
        if variant not in EAT_VARIANTS:
            raise ValueError(f"variant must be one of {sorted(EAT_VARIANTS)}, got {variant!r}")
        settings = {k: v for k, v in EAT_VARIANTS[variant].items() if k != "loss_reduction"}
        settings.update(overrides)
        head = settings.pop("head")
        if head == "logits":
            raise ValueError("EAT heads are 'raw10', 'softmax10' (AVA) or 'scalar' (TAD66K); use DAT for class logits")
        super().__init__(EAT_CONFIGS[config], head=head, **settings)
        self.variant = variant


