"""Style descriptors for SSMR's reference retrieval: Gram matrices (or AdaIN statistics) of early CNN layers.

What the SSMR paper states: its SRIG module ranks training images by "semantics and artistic style". It does
not say which style descriptor, which layers, which distance or how the two rankings are fused, and the
released code contains no style feature at all (see /work/shared/papers/ssmr.md, section 1).

What is a project design choice (labelled as such in the book):
- the descriptor: Gram matrices G^l = F^l F^lᵀ / (C_l·H_l·W_l) of a few early/mid layers of an ImageNet CNN
  (Gatys et al. 2016), upper triangle vectorised, L2-normalised per layer, concatenated and scaled by
  1/sqrt(#layers) so the whole descriptor has unit norm; channel mean/std ("AdaIN statistics") as the option
  `kind="adain"`;
- the layers: for EfficientNet-Lite0 the stem and stages 1-3 (`DEFAULT_STYLE_LAYERS`), the analogue of VGG's
  relu1_1..relu4_1; any CNN works with an explicit layer list;
- an optional fixed random projection (seeded Gaussian) to shrink the descriptor before the kNN search.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

# Module-name suffixes of the early/mid layers tapped by default (timm EfficientNet naming).
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("bn1", "blocks.1", "blocks.2", "blocks.3")


def gram_matrix(feature_map: Tensor) -> Tensor:
    """Gram matrix (B, C, C) of a feature map (B, C, H, W), normalised by C·H·W (Gatys et al.)."""
    if feature_map.ndim != 4:
        raise ValueError(f"gram_matrix expects a (B, C, H, W) feature map, got shape {tuple(feature_map.shape)}")
    b, c, h, w = feature_map.shape
    flat = feature_map.float().reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_descriptor(feature_maps: Sequence[Tensor]) -> Tensor:
    """Unit-norm style vector (B, Σ C_l(C_l+1)/2): per-layer Gram upper triangles, L2-normalised, concatenated."""
    parts = []
    for fmap in feature_maps:
        gram = gram_matrix(fmap)
        rows, cols = torch.triu_indices(gram.shape[1], gram.shape[2], device=gram.device)
        parts.append(nn.functional.normalize(gram[:, rows, cols], dim=1))
    return torch.cat(parts, dim=1) / math.sqrt(len(parts))


def adain_descriptor(feature_maps: Sequence[Tensor]) -> Tensor:
    """Unit-norm style vector (B, Σ 2·C_l): per-layer channel mean and std, L2-normalised, concatenated."""
    parts = []
    for fmap in feature_maps:
        if fmap.ndim != 4:
            raise ValueError(f"adain_descriptor expects (B, C, H, W) maps, got shape {tuple(fmap.shape)}")
        flat = fmap.float().flatten(2)
        stats = torch.cat([flat.mean(dim=2), flat.std(dim=2, unbiased=False)], dim=1)
        parts.append(nn.functional.normalize(stats, dim=1))
    return torch.cat(parts, dim=1) / math.sqrt(len(parts))


def resolve_layer_names(network: nn.Module, layers: Iterable[str]) -> list[str]:
    """Full module names in `network` for each requested name or suffix, shallowest match ("blocks.1" -> "model.blocks.1")."""
    names = [name for name, _ in network.named_modules() if name]
    resolved = []
    for wanted in layers:
        matches = [n for n in names if n == wanted or n.endswith("." + wanted)]
        if matches:  # the shallowest match wins: "bn1" is the stem's bn1, not a block's
            depth = min(n.count(".") for n in matches)
            matches = [n for n in matches if n.count(".") == depth]
        if len(matches) != 1:
            raise ValueError(
                f"style layer {wanted!r} matches {len(matches)} modules of {type(network).__name__} "
                f"({matches[:4]}); pass `layers=` with exact names from network.named_modules()"
            )
        resolved.append(matches[0])
    return resolved


class _EnoughLayers(Exception):
    """Raised by the last hook so the backbone stops once every tapped layer has run (saves the deep stages)."""


class StyleEncoder(nn.Module):
    """Frozen style encoder: images (B, 3, H, W), normalised like the backbone expects -> style vectors (B, D).

    `with_pooled=True` runs the whole backbone once and returns its pooled features followed by the style
    vector, so semantic and style features cost one pass (split them with `iaa_lib.ssmr.srig`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
        kind: str = "gram",
        projection_dim: int | None = None,
        projection_seed: int = 0,
        with_pooled: bool = False,
    ) -> None:
        super().__init__()
        if kind not in ("gram", "adain"):
            raise ValueError(f"StyleEncoder kind must be 'gram' or 'adain', got {kind!r}")
        self.backbone = backbone.eval().requires_grad_(False)
        self.kind = kind
        self.layer_names = resolve_layer_names(backbone, layers)
        self.projection_dim = projection_dim
        self.projection_seed = projection_seed
        self.with_pooled = with_pooled
        self._stop_early = True
        self._captured: dict[str, Tensor] = {}
        self.register_buffer("projection", torch.empty(0), persistent=False)

    def _make_hook(self, name: str):
        def hook(_module: nn.Module, _inputs, output: Tensor) -> None:
            self._captured[name] = output
            if self._stop_early and len(self._captured) == len(self.layer_names):
                raise _EnoughLayers

        return hook

    def feature_maps(self, images: Tensor, pooled: bool = False) -> tuple[list[Tensor], Tensor | None]:
        """The tapped feature maps in `layer_names` order, and the backbone's full output when `pooled`."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"StyleEncoder expects images (B, 3, H, W), got shape {tuple(images.shape)}")
        self._captured, self._stop_early = {}, not pooled
        # Hooks live only for this call, so the same backbone can also serve plain (semantic) forwards.
        modules = dict(self.backbone.named_modules())
        handles = [modules[name].register_forward_hook(self._make_hook(name)) for name in self.layer_names]
        output = None
        try:
            output = self.backbone(images)
        except _EnoughLayers:
            pass
        finally:
            for handle in handles:
                handle.remove()
        maps = [self._captured[name] for name in self.layer_names]
        self._captured = {}
        return maps, output

    def style_vectors(self, maps: list[Tensor]) -> Tensor:
        """Style descriptor (B, D) of tapped feature maps (projected when projection_dim is set)."""
        descriptor = gram_descriptor(maps) if self.kind == "gram" else adain_descriptor(maps)
        if self.projection_dim is None:
            return descriptor
        if self.projection.numel() == 0:
            generator = torch.Generator().manual_seed(self.projection_seed)
            matrix = torch.randn(descriptor.shape[1], self.projection_dim, generator=generator)
            self.projection = (matrix / math.sqrt(self.projection_dim)).to(descriptor.device)
        return nn.functional.normalize(descriptor @ self.projection, dim=1)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Style vectors (B, D_style), or [pooled backbone features | style vectors] when with_pooled (one pass)."""
        maps, pooled = self.feature_maps(images, pooled=self.with_pooled)
        style = self.style_vectors(maps)
        return torch.cat([pooled.float(), style], dim=1) if self.with_pooled else style
