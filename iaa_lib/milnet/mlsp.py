"""MILNet's node features: MLSP (Hosu et al., CVPR 2019) multi-level pooled backbone features, built with hooks.

MLSP taps every block of an Inception-ResNet-v2 and pools each map: ``mixed_5b`` (320), the branch concatenation
feeding the 1×1 conv of each of the 10 Block35 (128 each), ``mixed_6a`` (1,088), 20 Block17 (384 each),
``mixed_7a`` (2,080) and 10 Block8 incl. the final one (448 each): 16,928 channels (``MLSP_TAPS``). The paper
pools each to 5×5 and trains a reducer head to 6,144-d; the book pools each to 1×1 (MLSP's "narrow" features,
16,928-d) and, where a 6,144-d node is wanted, reduces them by a PCA fitted on the training split only
(``pca_reduce``), a [design] stand-in for the unreleased reducer. For EfficientNet-Lite0 (smoke) the taps are
the outputs of its 16 inverted-residual blocks (1,808 channels).

``MultiLevelPooled(backbone, taps)``: images (B, 3, H, W) -> (B, Σ C_tap), concatenated in tap order; it carries
the backbone's ``mean``, ``std`` and ``input_size`` so ``extract_features`` can build the default transform.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from iaa_lib.blocks.retrieval import FeatureStore

# (module name, "input" | "output"): "input" taps what enters the module (a residual block's branch concat before
# its 1×1 conv), "output" what leaves it.
Tap = tuple[str, str]
_IRV2_TAPS: tuple[Tap, ...] = (
    ("mixed_5b", "output"),
    *((f"repeat.{i}.conv2d", "input") for i in range(10)),
    ("mixed_6a", "output"),
    *((f"repeat_1.{i}.conv2d", "input") for i in range(20)),
    ("mixed_7a", "output"),
    *((f"repeat_2.{i}.conv2d", "input") for i in range(9)),
    ("block8.conv2d", "input"),
)
_LITE0_BLOCKS = (1, 2, 2, 3, 3, 4, 1)  # inverted-residual blocks per stage of EfficientNet-Lite0
MLSP_TAPS: dict[str, tuple[Tap, ...]] = {
    "timm:inception_resnet_v2": _IRV2_TAPS,
    "timm:tf_efficientnet_lite0": tuple(
        (f"blocks.{stage}.{block}", "output") for stage, n in enumerate(_LITE0_BLOCKS) for block in range(n)
    ),
}
IRV2_MLSP_CHANNELS = 16_928


class MultiLevelPooled(nn.Module):
    """Frozen multi-level encoder: images (B, 3, H, W) -> global-average-pooled taps, concatenated (B, Σ C)."""

    def __init__(self, backbone: nn.Module, taps: Sequence[Tap]) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.taps = tuple(taps)
        modules = dict(self.backbone.model.named_modules())
        unknown = [name for name, _ in self.taps if name not in modules]
        if unknown or any(kind not in ("input", "output") for _, kind in self.taps):
            raise ValueError(f"MLSP taps {unknown[:3]} are not modules of {type(backbone.model).__name__} (or a tap "
                             "kind is not 'input'/'output'); pass names from backbone.model.named_modules()")
        self.mean, self.std, self.input_size = backbone.mean, backbone.std, backbone.input_size

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Pooled taps (B, Σ C_tap) in tap order (one backbone pass; hooks live for this call only)."""
        captured: dict[int, Tensor] = {}
        modules = dict(self.backbone.model.named_modules())
        handles = []
        for slot, (name, kind) in enumerate(self.taps):
            def keep(tensor: Tensor, slot: int = slot) -> None:
                captured[slot] = tensor.float().mean(dim=(2, 3))
            if kind == "input":
                handles.append(modules[name].register_forward_pre_hook(lambda _m, args, keep=keep: keep(args[0])))
            else:
                handles.append(modules[name].register_forward_hook(lambda _m, _a, out, keep=keep: keep(out)))
        try:
            self.backbone(images)
        finally:
            for handle in handles:
                handle.remove()
        return torch.cat([captured[slot] for slot in range(len(self.taps))], dim=1)


def mlsp_encoder(backbone_name: str, weights: str | None) -> MultiLevelPooled:
    """MultiLevelPooled over `backbone_name` (a key of MLSP_TAPS) with `weights` (see create_backbone)."""
    from iaa_lib.blocks.backbones import create_backbone

    if backbone_name not in MLSP_TAPS:
        raise ValueError(f"no MLSP taps for {backbone_name!r}; choose one of {sorted(MLSP_TAPS)}")
    return MultiLevelPooled(create_backbone(backbone_name, weights=weights), MLSP_TAPS[backbone_name])


def pca_reduce(store: FeatureStore, train_ids: Sequence[str], dim: int) -> FeatureStore:
    """Project every row of `store` (N, D) on the top-`dim` principal axes of its TRAINING rows -> (N, dim).

    Centred by the training mean; the axes come from the training rows only, so no held-out image shapes them.
    The store's key is derived from (source key, training ids, dim).
    """
    from iaa_lib.training.fingerprint import fingerprint

    train = store.rows(train_ids).double()
    if not 1 <= dim <= min(train.shape):
        raise ValueError(f"pca_reduce: dim must be in [1, {min(train.shape)}] (training rows x feature dim), got {dim}")
    mean = train.mean(dim=0)
    covariance = (train - mean).T @ (train - mean) / max(len(train) - 1, 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    axes = vectors[:, -dim:].flip(1)
    reduced = ((store.features.double() - mean) @ axes).float()
    key = fingerprint("pca_reduce", store.key, list(map(str, train_ids)), dim)
    return FeatureStore(list(store.ids), reduced, key=key)
