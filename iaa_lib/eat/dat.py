"""DAT v1 (Deformable Attention Transformer, Xia et al., CVPR 2022) with the switches EAT adds to its deformable blocks.

Layout (per stage): blocks of type "L" (7x7 window attention), "S" (shifted window, shift = ceil(w/2)) and
"D" (deformable attention). Module and parameter names follow the official DAT v1 code (tag ``CVPR2022``) so
that its checkpoints load as they are (see ``load_official_checkpoint``); the code itself is written here.

Tensors inside a stage are channels-last (B, H, W, C); the official checkpoints store 1x1 convolutions, which are
applied here as linear maps on that layout (same weights, same numbers). Sampling positions and reference points
are in normalised (y, x) coordinates in [-1, 1] (``align_corners=True`` for every ``grid_sample``, as in DAT).

Deformable-attention switches (EAT, see the book's EAT chapter):
- ``reference``: "grid" (DAT's fixed uniform grid), "learned_batch_mean" (EAT as published: tanh of the batch mean
  of a 1x1 conv ``ref_point14``, one map shared by every image of the batch), "learned_per_sample" (same conv,
  no batch mean: an image's prediction does not depend on its batch companions).
- ``offset_mask``: "none", "sign_agree" (EAT: offsets that push further into their reference point's quadrant keep
  full strength, all others are scaled by ``mask_ratio``), "schedule" (README_CN's exploration -> exploitation
  idea, a project design: the sign-agree mask whose ratio rises linearly from ``mask_ratio`` to 1 with
  ``set_offset_mask_progress``). ``mask_direction="inward"`` inverts which offsets are shrunk (README_CN wording).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

from iaa_lib.files import UnreadableFileError, safe_torch_load

REFERENCES = ("grid", "learned_batch_mean", "learned_per_sample")
OFFSET_MASKS = ("none", "sign_agree", "schedule")
MASK_DIRECTIONS = ("outward", "inward")
HEADS = ("raw10", "softmax10", "scalar", "logits")
BLOCK_TYPES = ("L", "S", "D")


@dataclass(frozen=True)
class DATConfig:
    """Architecture of a DAT v1 model; lists hold one entry per stage."""

    img_size: int = 224
    patch_size: int = 4
    dim_stem: int = 128
    dims: tuple[int, ...] = (128, 256, 512, 1024)
    depths: tuple[int, ...] = (2, 2, 18, 2)
    heads: tuple[int, ...] = (4, 8, 16, 32)
    window_sizes: tuple[int, ...] = (7, 7, 7, 7)
    stage_spec: tuple[tuple[str, ...], ...] = (("L", "S"), ("L", "S"), ("L", "D") * 9, ("L", "D"))
    groups: tuple[int, ...] = (-1, -1, 4, 8)
    offset_kernel_sizes: tuple[int, ...] = (9, 7, 5, 3)
    offset_range_factor: tuple[float, ...] = (-1, -1, 2, 2)
    expansion: int = 4
    drop_path_rate: float = 0.5
    reference: str = "grid"
    offset_mask: str = "none"
    mask_ratio: float = 0.25
    mask_direction: str = "outward"

    def __post_init__(self) -> None:
        n = len(self.dims)
        for name in ("depths", "heads", "window_sizes", "stage_spec", "groups", "offset_kernel_sizes", "offset_range_factor"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"DATConfig.{name} needs one entry per stage ({n} stages from dims), got {getattr(self, name)!r}")
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {self.reference!r}")
        if self.offset_mask not in OFFSET_MASKS:
            raise ValueError(f"offset_mask must be one of {OFFSET_MASKS}, got {self.offset_mask!r}")
        if self.mask_direction not in MASK_DIRECTIONS:
            raise ValueError(f"mask_direction must be one of {MASK_DIRECTIONS}, got {self.mask_direction!r}")
        if not 0.0 <= self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio (strength kept by masked offsets) must be in [0, 1], got {self.mask_ratio}")
        size = self.img_size // self.patch_size
        if size * self.patch_size != self.img_size:
            raise ValueError(f"img_size {self.img_size} must be a multiple of patch_size {self.patch_size}")
        for i in range(n):
            spec = self.stage_spec[i]
            if len(spec) != self.depths[i] or any(b not in BLOCK_TYPES for b in spec):
                raise ValueError(f"stage_spec[{i}]={spec!r} must list depths[{i}]={self.depths[i]} blocks from {BLOCK_TYPES}")
            if self.dims[i] % self.heads[i]:
                raise ValueError(f"dims[{i}]={self.dims[i]} is not divisible by heads[{i}]={self.heads[i]}")
            if "D" in spec and (self.groups[i] < 1 or self.heads[i] % self.groups[i]):
                raise ValueError(f"stage {i} has D blocks: heads[{i}]={self.heads[i]} must be a multiple of groups[{i}]={self.groups[i]} >= 1")
            if ("L" in spec or "S" in spec) and size % self.window_sizes[i]:
                raise ValueError(
                    f"stage {i}: feature map {size}x{size} (img_size {self.img_size}) is not divisible by window_sizes[{i}]="
                    f"{self.window_sizes[i]}; pick an img_size or window size that divides it"
                )
            if "S" in spec and not 0 < math.ceil(self.window_sizes[i] / 2) < self.window_sizes[i]:
                raise ValueError(f"stage {i}: shifted windows need window_sizes[{i}] >= 2, got {self.window_sizes[i]}")
            if i < n - 1:
                size //= 2

    @property
    def feature_sizes(self) -> tuple[int, ...]:
        """Side length (cells) of each stage's square feature map."""
        size = self.img_size // self.patch_size
        return tuple(size // 2**i for i in range(len(self.dims)))


DAT_CONFIGS: dict[str, DATConfig] = {
    "tiny": DATConfig(
        dim_stem=96, dims=(96, 192, 384, 768), depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), groups=(-1, -1, 3, 6),
        stage_spec=(("L", "S"), ("L", "S"), ("L", "D") * 3, ("L", "D")), drop_path_rate=0.2,
    ),
    "small": DATConfig(
        dim_stem=96, dims=(96, 192, 384, 768), depths=(2, 2, 18, 2), heads=(3, 6, 12, 24), groups=(-1, -1, 3, 6),
        drop_path_rate=0.3,
    ),
    "base": DATConfig(),
    # CPU-sized: 64 px, three stages (16/8/4 cells), D blocks at 8x8 and 4x4 (2 and 4 groups); ~0.6 M parameters.
    "smoke": DATConfig(
        img_size=64, dim_stem=32, dims=(32, 64, 128), depths=(2, 2, 2), heads=(1, 2, 4), window_sizes=(4, 4, 4),
        stage_spec=(("L", "S"), ("L", "D"), ("L", "D")), groups=(-1, 2, 4), offset_kernel_sizes=(9, 5, 3),
        offset_range_factor=(-1, 2, 2), drop_path_rate=0.0,
    ),
}
DAT_CONFIGS["full"] = DAT_CONFIGS["base"]


def make_dat_config(config: str | DATConfig = "smoke", **overrides: Any) -> DATConfig:
    """A DATConfig from a named config ("tiny", "small", "base"="full", "smoke") with keyword overrides."""
    if isinstance(config, DATConfig):
        base = config
    elif config in DAT_CONFIGS:
        base = DAT_CONFIGS[config]
    else:
        raise ValueError(f"config must be one of {sorted(DAT_CONFIGS)} or a DATConfig, got {config!r}")
    unknown = set(overrides) - set(DATConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown DAT config keys {sorted(unknown)}; valid keys: {sorted(DATConfig.__dataclass_fields__)}")
    tuple_fields = {"dims", "depths", "heads", "window_sizes", "groups", "offset_kernel_sizes", "offset_range_factor"}
    clean = {k: tuple(v) if k in tuple_fields else v for k, v in overrides.items()}
    if "stage_spec" in clean:
        clean["stage_spec"] = tuple(tuple(s) for s in clean["stage_spec"])
    return replace(base, **clean)


class LayerNormProxy(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (checkpoint name ``.norm``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class TransformerMLP(nn.Module):
    """Linear(C->eC), GELU, Linear(eC->C) on channels-last tokens (checkpoint names ``chunk.linear1/2``)."""

    def __init__(self, dim: int, expansion: int) -> None:
        super().__init__()
        self.chunk = nn.Sequential()
        self.chunk.add_module("linear1", nn.Linear(dim, dim * expansion))
        self.chunk.add_module("act", nn.GELU())
        self.chunk.add_module("linear2", nn.Linear(dim * expansion, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        return self.chunk(x)


def _conv1x1(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Apply a 1x1 Conv2d to channels-last x (..., C_in) -> (..., C_out) as a linear map (same weights)."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


def uniform_grid(height: int, width: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """DAT's reference grid (H, W, 2): cell centres ((i+0.5)/H*2-1, (j+0.5)/W*2-1) in (y, x) order."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)


class LocalAttention(nn.Module):
    """Window multi-head self-attention ("L") with a Swin relative-position bias; input/output (B, H, W, C)."""

    relative_position_index: torch.Tensor

    def __init__(self, dim: int, heads: int, window_size: int) -> None:
        super().__init__()
        self.heads = heads
        self.window_size = window_size
        self.proj_qkv = nn.Linear(dim, 3 * dim)
        self.proj_out = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, heads))
        trunc_normal_(self.relative_position_bias_table, std=0.01)
        coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")).flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
        self.register_buffer("relative_position_index", relative[..., 0] * (2 * window_size - 1) + relative[..., 1])
        self.record_attention = False
        self.last_attention: torch.Tensor | None = None

    def window_mask(self, batch: int) -> torch.Tensor:
        """Additive attention mask (1 or B*nW, heads, N, N) for the windows of a batch: the relative-position bias."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, self.heads)
        return bias.permute(2, 0, 1).unsqueeze(0)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """Attention inside non-overlapping windows of x (B, H, W, C) -> (B, H, W, C)."""
        B, H, W, C = x.shape
        w, heads = self.window_size, self.heads
        n_windows = (H // w) * (W // w)
        tokens = x.reshape(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B * n_windows, w * w, C)
        q, k, v = self.proj_qkv(tokens).view(B * n_windows, w * w, 3, heads, C // heads).permute(2, 0, 3, 1, 4).unbind(0)
        mask = self.window_mask(B).to(q.dtype)
        if self.record_attention:
            logits = q @ k.transpose(-1, -2) * (C // heads) ** -0.5 + mask
            attn = logits.float().softmax(-1)
            self.last_attention = attn.detach().view(B, n_windows, heads, w * w, w * w)
            out = (attn.to(v.dtype) @ v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = self.proj_out(out.transpose(1, 2).reshape(B * n_windows, w * w, C))
        return out.view(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        """(B, H, W, C) -> (out, None, None), the DAT block interface (no positions/references)."""
        return self.attend(x), None, None


class ShiftWindowAttention(LocalAttention):
    """Shifted-window attention ("S"): roll by -shift, window attention with a -100 cross-region mask, roll back."""

    attn_mask: torch.Tensor

    def __init__(self, dim: int, heads: int, window_size: int, shift_size: int, fmap_size: int) -> None:
        super().__init__(dim, heads, window_size)
        self.shift_size = shift_size
        region = torch.zeros(fmap_size, fmap_size)
        bounds = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
        for label, (hs, ws) in enumerate((hs, ws) for hs in bounds for ws in bounds):
            region[hs, ws] = label
        r = fmap_size // window_size
        windows = region.view(r, window_size, r, window_size).permute(0, 2, 1, 3).reshape(r * r, window_size**2)
        different = windows.unsqueeze(1) != windows.unsqueeze(2)
        self.register_buffer("attn_mask", torch.zeros(different.shape).masked_fill(different, -100.0))

    def window_mask(self, batch: int) -> torch.Tensor:
        """Relative-position bias plus the shifted-region mask, (B*nW, heads, N, N)."""
        n_windows, n, _ = self.attn_mask.shape
        mask = super().window_mask(batch) + self.attn_mask.unsqueeze(1)
        return mask.unsqueeze(0).expand(batch, -1, -1, -1, -1).reshape(batch * n_windows, self.heads, n, n)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        """(B, H, W, C) -> (out, None, None)."""
        s = self.shift_size
        out = self.attend(torch.roll(x, shifts=(-s, -s), dims=(1, 2)))
        return torch.roll(out, shifts=(s, s), dims=(1, 2)), None, None


class DeformableAttention(nn.Module):
    """Deformable multi-head attention ("D", DAT's ``DAttentionBaseline``) with EAT's reference/offset-mask switches.

    Input/output (B, H, W, C). Queries on every cell; keys/values from H*W points sampled bilinearly from x at
    positions = reference + offset (offset network on the grouped queries, shared by the heads of a group); a
    relative-position bias is read bilinearly from ``rpe_table`` at the (query grid - position)/2 displacement.
    forward returns (out, positions, references), both (B, G, H, W, 2) in normalised (y, x).
    """

    offset_mask_progress: torch.Tensor

    def __init__(
        self, dim: int, heads: int, groups: int, fmap_size: int, offset_kernel: int, offset_range_factor: float,
        reference: str = "grid", offset_mask: str = "none", mask_ratio: float = 0.25, mask_direction: str = "outward",
    ) -> None:
        super().__init__()
        self.heads, self.groups, self.fmap_size = heads, groups, fmap_size
        self.head_dim = dim // heads
        self.group_channels = dim // groups
        self.offset_range_factor = offset_range_factor
        self.reference, self.offset_mask = reference, offset_mask
        self.mask_ratio, self.mask_direction = mask_ratio, mask_direction
        c = self.group_channels
        self.conv_offset = nn.Sequential(
            nn.Conv2d(c, c, offset_kernel, 1, offset_kernel // 2, groups=c),
            LayerNormProxy(c),
            nn.GELU(),
            nn.Conv2d(c, 2, 1, 1, 0, bias=False),
        )
        self.proj_q = nn.Conv2d(dim, dim, 1)
        self.proj_k = nn.Conv2d(dim, dim, 1)
        self.proj_v = nn.Conv2d(dim, dim, 1)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.rpe_table = nn.Parameter(torch.zeros(heads, 2 * fmap_size - 1, 2 * fmap_size - 1))
        trunc_normal_(self.rpe_table, std=0.01)
        self.ref_point14 = nn.Conv2d(dim, 2, 1) if reference != "grid" else None
        self.register_buffer("offset_mask_progress", torch.zeros(()), persistent=False)
        scale = torch.tensor([offset_range_factor / fmap_size, offset_range_factor / fmap_size])
        self.register_buffer("offset_range", scale, persistent=False)
        self.record_attention = False
        self.last_attention: torch.Tensor | None = None

    def reference_points(self, x: torch.Tensor) -> torch.Tensor:
        """Reference points (B*G, H, W, 2) in (y, x): DAT's grid, or EAT's learned map (batch mean or per sample)."""
        B, H, W, _ = x.shape
        if self.ref_point14 is None:
            return uniform_grid(H, W, x.device, x.dtype).expand(B * self.groups, H, W, 2)
        logits = _conv1x1(x, self.ref_point14).float()  # (B, H, W, 2)
        if self.reference == "learned_batch_mean":
            logits = logits.mean(dim=0, keepdim=True).expand(B, H, W, 2)
        ref = logits.tanh()
        return ref.unsqueeze(1).expand(B, self.groups, H, W, 2).reshape(B * self.groups, H, W, 2)

    def mask_offsets(self, offset: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """EAT's sign-agreement mask: scale (B*G, H, W, 2) offsets by 1 or the ratio; the mask carries no gradient."""
        if self.offset_mask == "none":
            return offset
        agree = ((offset.detach() * reference.detach()) > 0).all(dim=-1, keepdim=True)
        shrink = ~agree if self.mask_direction == "outward" else agree
        if self.offset_mask == "schedule":
            ratio = self.mask_ratio + (1 - self.mask_ratio) * self.offset_mask_progress.to(offset.dtype)
            return offset * torch.where(shrink, ratio, torch.ones_like(ratio))
        return offset * torch.where(shrink, self.mask_ratio, 1.0).to(offset.dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, H, W, C) -> (out (B, H, W, C), positions (B, G, H, W, 2), references (B, G, H, W, 2))."""
        B, H, W, C = x.shape
        G, M, c, d = self.groups, self.heads, self.group_channels, self.head_dim
        n = H * W
        q = _conv1x1(x, self.proj_q)
        # (B*G, c, H, W) in channels-last memory: the depthwise offset conv runs ~1.5x faster on the CPU than on NCHW
        grouped_q = q.view(B, H, W, G, c).permute(0, 3, 1, 2, 4).reshape(B * G, H, W, c).permute(0, 3, 1, 2)
        offset = self.conv_offset(grouped_q).permute(0, 2, 3, 1).float()  # (B*G, H, W, 2) as (y, x)
        reference = self.reference_points(x).float()
        if self.offset_range_factor > 0:  # bound factor * (1/H, 1/W): just under factor/2 cells (align_corners=True)
            offset = offset.tanh() * self.offset_range
        offset = self.mask_offsets(offset, reference)
        positions = reference + offset if self.offset_range_factor >= 0 else (reference + offset).tanh()
        grouped_x = x.view(B, H, W, G, c).permute(0, 3, 4, 1, 2).reshape(B * G, c, H, W)
        sampled = F.grid_sample(grouped_x.float(), positions.flip(-1), mode="bilinear", align_corners=True)
        sampled = sampled.view(B, C, n).transpose(1, 2).to(x.dtype)  # (B, Ns, C)
        k = _conv1x1(sampled, self.proj_k).view(B, n, M, d).transpose(1, 2)
        v = _conv1x1(sampled, self.proj_v).view(B, n, M, d).transpose(1, 2)
        q = q.view(B, n, M, d).transpose(1, 2)
        # Bias for query i and sampled key j: the table read at (query grid_i - position_j) / 2.
        q_grid = uniform_grid(H, W, x.device).view(1, n, 1, 2)
        displacement = (q_grid - positions.view(B * G, 1, n, 2)) * 0.5
        table = self.rpe_table.float().unsqueeze(0).expand(B, -1, -1, -1).reshape(B * G, M // G, 2 * H - 1, 2 * W - 1)
        bias = F.grid_sample(table, displacement.flip(-1), mode="bilinear", align_corners=True).view(B, M, n, n)
        if self.record_attention:
            logits = (q.float() @ k.float().transpose(-1, -2)) * d**-0.5 + bias
            attn = logits.softmax(-1)
            self.last_attention = attn.detach().view(B, M, H, W, H, W)
            out = attn.to(v.dtype) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        out = _conv1x1(out.transpose(1, 2).reshape(B, H, W, C), self.proj_out)
        return out, positions.view(B, G, H, W, 2), reference.view(B, G, H, W, 2)


class TransformerStage(nn.Module):
    """A DAT stage: pre-norm blocks x += DropPath(Attn(LN x)); x += DropPath(MLP(LN x)); one DropPath per block."""

    def __init__(self, cfg: DATConfig, stage: int, drop_path_rates: Sequence[float]) -> None:
        super().__init__()
        dim, heads, depth = cfg.dims[stage], cfg.heads[stage], cfg.depths[stage]
        fmap = cfg.feature_sizes[stage]
        self.spec = cfg.stage_spec[stage]
        self.layer_norms = nn.ModuleList([LayerNormProxy(dim) for _ in range(2 * depth)])
        self.mlps = nn.ModuleList([TransformerMLP(dim, cfg.expansion) for _ in range(depth)])
        self.attns = nn.ModuleList()
        for kind in self.spec:
            if kind == "L":
                self.attns.append(LocalAttention(dim, heads, cfg.window_sizes[stage]))
            elif kind == "S":
                window = cfg.window_sizes[stage]
                self.attns.append(ShiftWindowAttention(dim, heads, window, math.ceil(window / 2), fmap))
            else:
                self.attns.append(DeformableAttention(
                    dim, heads, cfg.groups[stage], fmap, cfg.offset_kernel_sizes[stage], cfg.offset_range_factor[stage],
                    cfg.reference, cfg.offset_mask, cfg.mask_ratio, cfg.mask_direction,
                ))
        self.drop_path = nn.ModuleList([DropPath(p) if p > 0 else nn.Identity() for p in drop_path_rates])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list, list]:
        """(B, H, W, C) -> (B, H, W, C), per-block positions and references (None for L/S blocks)."""
        positions, references = [], []
        for j, attn in enumerate(self.attns):
            out, pos, ref = attn(self.layer_norms[2 * j].norm(x))
            x = x + self.drop_path[j](out)
            x = x + self.drop_path[j](self.mlps[j](self.layer_norms[2 * j + 1].norm(x)))
            positions.append(pos)
            references.append(ref)
        return x, positions, references


class DAT(nn.Module):
    """DAT v1 backbone + head; forward(image (B, 3, S, S)) -> {"pred", "positions", "references"}.

    head: "raw10" (10 raw outputs, EAT as published), "softmax10" (a 10-bin distribution), "scalar" ((B,) score),
    "logits" (``num_classes`` raw outputs, e.g. 1000 for ImageNet checkpoints). "positions"/"references" are
    tuples with one (B, G, H, W, 2) tensor (normalised (y, x)) per D block, in network order.
    """

    input_keys: tuple[str, ...] = ("image",)

    def __init__(self, config: str | DATConfig = "smoke", head: str = "softmax10", num_classes: int = 1000, **overrides: Any) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        cfg = make_dat_config(config, **overrides)
        self.cfg, self.head = cfg, head
        self.patch_proj = nn.Sequential(nn.Conv2d(3, cfg.dim_stem, cfg.patch_size, cfg.patch_size), LayerNormProxy(cfg.dim_stem))
        total = sum(cfg.depths)
        rates = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        start = 0
        for i, depth in enumerate(cfg.depths):
            if (cfg.dim_stem if i == 0 else cfg.dims[i - 1] * 2) != cfg.dims[i]:
                raise ValueError(f"DAT v1 needs dims[0] == dim_stem and dims[i] == 2*dims[i-1], got dim_stem={cfg.dim_stem}, dims={cfg.dims}")
            self.stages.append(TransformerStage(cfg, i, rates[start:start + depth]))
            start += depth
        self.down_projs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cfg.dims[i], cfg.dims[i + 1], 2, 2, bias=False), LayerNormProxy(cfg.dims[i + 1]))
            for i in range(len(cfg.dims) - 1)
        )
        self.cls_norm = LayerNormProxy(cfg.dims[-1])
        outputs = {"raw10": 10, "softmax10": 10, "scalar": 1, "logits": num_classes}[head]
        self.cls_head = nn.Linear(cfg.dims[-1], outputs)

    def deformable_blocks(self) -> list[tuple[str, DeformableAttention]]:
        """(name, module) of every D block in network order, e.g. ("stages.2.attns.1", ...)."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, DeformableAttention)]

    def check_input(self, image: torch.Tensor) -> None:
        """Raise ValueError unless image is (B, 3, img_size, img_size)."""
        size = self.cfg.img_size
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or tuple(image.shape[1:]) != (3, size, size):
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(
                f"image: expected a (B, 3, {size}, {size}) tensor for this DAT/EAT config (img_size={size}), got {shape}; "
                "resize with iaa_lib.data.transforms.eval_transform(size) or build the model with img_size=..."
            )

    def forward_features(self, image: torch.Tensor) -> tuple[torch.Tensor, list, list]:
        """image (B, 3, S, S) -> final normed map (B, H, W, C), per-stage lists of positions and references."""
        self.check_input(image)
        x = self.patch_proj[1].norm(self.patch_proj[0](image).permute(0, 2, 3, 1))
        positions, references = [], []
        for i, stage in enumerate(self.stages):
            x, pos, ref = stage(x)
            positions.append(pos)
            references.append(ref)
            if i < len(self.down_projs):
                down = self.down_projs[i]
                x = down[1].norm(down[0](x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        return self.cls_norm.norm(x), positions, references

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        """image (B, 3, S, S) -> {"pred": (B, 10) or (B,) or (B, num_classes), "positions": (...), "references": (...)}."""
        features, positions, references = self.forward_features(image)
        out = self.cls_head(features.mean(dim=(1, 2)))
        if self.head == "softmax10":
            out = out.softmax(dim=-1)
        elif self.head == "scalar":
            out = out[:, 0]
        return {
            "pred": out,
            "positions": tuple(p for stage in positions for p in stage if p is not None),
            "references": tuple(r for stage in references for r in stage if r is not None),
        }


def set_offset_mask_progress(model: nn.Module, progress: float) -> None:
    """Set the training progress in [0, 1] used by offset_mask="schedule" (ratio -> mask_ratio + (1-mask_ratio)*progress)."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1] (fraction of training done), got {progress}")
    for module in model.modules():
        if isinstance(module, DeformableAttention):
            module.offset_mask_progress.fill_(progress)


class record_attention:
    """Context manager: attention modules of `model` keep their softmax weights in ``.last_attention`` (explicit path, for plots)."""

    def __init__(self, model: nn.Module) -> None:
        self.modules = [m for m in model.modules() if isinstance(m, (LocalAttention, DeformableAttention))]

    def __enter__(self) -> "record_attention":
        for m in self.modules:
            m.record_attention = True
        return self

    def __exit__(self, *exc: object) -> None:
        for m in self.modules:
            m.record_attention = False


# --- official checkpoints -------------------------------------------------------------------------------------

_CONTAINER_KEYS = ("model", "state_dict", "model_state_dict")
_WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


def _unwrap_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The tensor state dict inside a checkpoint object (``ckpt['model']`` for DAT, a bare dict for EAT)."""
    for key in _CONTAINER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{source}: not a DAT/EAT checkpoint (expected a state dict of tensors, or one under 'model')")
    state = dict(obj)
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


# The switches of the official EAT code: its released AVA / TAD66K checkpoints were trained with them.
OFFICIAL_EAT_SWITCHES = {"reference": "learned_batch_mean", "offset_mask": "sign_agree", "mask_ratio": 0.25,
                         "mask_direction": "outward"}
OFFICIAL_EAT_HEADS = {10: ("raw10", "AVA, 10 raw outputs"), 1: ("scalar", "TAD66K, 1 scalar output")}
POSITION_TABLES = ("relative_position_bias_table", "rpe_table")  # resized bicubically across resolutions
LAYOUT_BUFFERS = ("relative_position_index", "attn_mask")  # fixed functions of the window/shift layout


def checkpoint_kind(state: dict[str, torch.Tensor]) -> str:
    """"eat" for a trained EAT checkpoint (learned-reference layers ``ref_point14``), else "dat" (e.g. ImageNet DAT-B)."""
    return "eat" if any(".ref_point14." in k for k in state) else "dat"


def _require_published_variant(model: DAT, state: dict[str, torch.Tensor], source: str) -> None:
    """ValueError unless `model` has the switches (and head) of the official EAT code that trained `state`."""
    outputs = state["cls_head.weight"].shape[0] if "cls_head.weight" in state else None
    if outputs not in OFFICIAL_EAT_HEADS:
        raise ValueError(f"{source}: EAT checkpoint with a {outputs}-output cls_head; the released EAT checkpoints "
                         "have 10 (AVA) or 1 (TAD66K)")
    head, what = OFFICIAL_EAT_HEADS[outputs]
    required = {**OFFICIAL_EAT_SWITCHES, "head": head}
    actual = {**{k: getattr(model.cfg, k) for k in OFFICIAL_EAT_SWITCHES}, "head": model.head}
    wrong = [f"{k}={actual[k]!r} (needs {v!r})" for k, v in required.items() if actual[k] != v]
    variant = getattr(model, "variant", None)
    if variant not in (None, "eat_as_published"):
        wrong.insert(0, f"variant={variant!r}")
    if wrong:
        extra = ", head='scalar'" if head == "scalar" else ""
        raise ValueError(
            f"{source} is an official EAT checkpoint ({what}), trained by the official code: variant "
            f"'eat_as_published'. This model differs: {', '.join(wrong)}. Load it into "
            f"EAT(config='full', variant='eat_as_published'{extra}); other variants would compute a different "
            "function with these weights."
        )


def resize_position_table(table: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Bicubic resize of a relative-position bias table to `shape`: a Swin table ((2w-1)^2, heads) is resized as a
    (2w-1) x (2w-1) grid per head, a DAT ``rpe_table`` (heads, 2H-1, 2W-1) per head (align_corners=False)."""
    shape = tuple(shape)
    if table.ndim == 2:
        side, new_side = math.isqrt(table.shape[0]), math.isqrt(shape[0])
        if side**2 != table.shape[0] or new_side**2 != shape[0] or table.shape[1] != shape[1]:
            raise ValueError(f"cannot resize a relative-position table {tuple(table.shape)} to {shape}")
        grid = table.T.reshape(1, table.shape[1], side, side).float()
        out = F.interpolate(grid, size=(new_side, new_side), mode="bicubic", align_corners=False)
        return out.reshape(table.shape[1], shape[0]).T.contiguous().to(table.dtype)
    if table.ndim != 3 or table.shape[0] != shape[0]:
        raise ValueError(f"cannot resize an rpe table {tuple(table.shape)} to {shape} (heads must match)")
    out = F.interpolate(table[None].float(), size=shape[1:], mode="bicubic", align_corners=False)
    return out[0].to(table.dtype)


def _adapt_resolution(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """For a DAT checkpoint of another resolution: resize its position tables, take the model's layout buffers
    where their shape differs; returns (resized tables, replaced buffers). Edits `state` in place."""
    resized = [k for k, v in state.items() if k.endswith(POSITION_TABLES) and k in own and v.shape != own[k].shape]
    for k in resized:
        state[k] = resize_position_table(state[k], own[k].shape)
    replaced = [k for k, v in state.items() if k.endswith(LAYOUT_BUFFERS) and k in own and v.shape != own[k].shape]
    for k in replaced:
        state[k] = own[k].clone()
    return resized, replaced


def load_official_checkpoint(
    model: DAT, path_or_state_dict: str | PathLike | dict, *, drop_head: bool | None = None, trust_pickle: bool = False,
) -> dict[str, list[str]]:
    """Load a checkpoint in the official DAT v1 / EAT key layout into `model`; returns key lists {"loaded",
    "missing" (kept fresh init), "dropped" (head), "ignored" (checkpoint keys the model lacks), "resized" (position
    tables resized bicubically), "replaced" (layout buffers taken from the model)}.

    - ``dat_base_in1k_224.pth`` (ImageNet, keys under 'model'): ``cls_head`` is dropped (as EAT does), the
      ``ref_point14`` layers, absent from DAT, keep their fresh init (listed under "missing"); keys the model does
      not have are ignored and listed (the official loader tolerates them, strict=False). A DAT checkpoint of
      another resolution loads too: its position tables are resized bicubically and its window/shift buffers
      replaced by the model's.
    - The EAT AVA/TAD66K ``.pth`` (a bare state dict, maybe with a DataParallel ``module.`` prefix) loads strictly,
      and only into the variant that trained it: EAT(config="full", variant="eat_as_published") (head="scalar"
      for TAD66K); any other variant is refused with a ValueError naming that one.
    - drop_head: None = drop ``cls_head`` only when its shape differs from the model's head.
    Any other missing key or shape mismatch raises ValueError naming it (usually a config that differs from the
    checkpoint's: DAT-B/EAT use config="full", img_size=224).
    """
    source = str(path_or_state_dict) if not isinstance(path_or_state_dict, dict) else "state dict"
    if isinstance(path_or_state_dict, dict):
        obj = path_or_state_dict
    else:
        path = Path(path_or_state_dict)
        if not path.is_file():
            raise FileNotFoundError(
                f"checkpoint {path} not found; DAT-B ImageNet weights: dat_base_in1k_224.pth from the DAT v1 README "
                "(LeapLabTHU/DAT, tag CVPR2022); EAT AVA weights: the Google Drive link in the EAT README"
            )
        try:
            obj = safe_torch_load(path, trust=trust_pickle)
        except UnreadableFileError as err:
            hint = "" if trust_pickle else ("; the official DAT checkpoints pickle their yacs config: if this is one, "
                                            "from a source you trust, pass trust_pickle=True")
            raise ValueError(f"{err}{hint}") from err
    state = _unwrap_state_dict(obj, source)
    kind = checkpoint_kind(state)
    if kind == "eat":
        _require_published_variant(model, state, source)
    own = model.state_dict()
    dropped = []
    head_keys = [k for k in state if k.startswith("cls_head.")]
    if drop_head is None:
        drop_head = any(k in own and state[k].shape != own[k].shape for k in head_keys)
    if drop_head:
        dropped = head_keys
        state = {k: v for k, v in state.items() if k not in head_keys}
    ignored = sorted(set(state) - set(own))
    if ignored and kind == "eat":
        raise ValueError(f"{source}: {len(ignored)} keys the model does not have, e.g. {ignored[:5]} (wrong config?)")
    state = {k: v for k, v in state.items() if k in own}
    resized, replaced = _adapt_resolution(state, own) if kind == "dat" else ([], [])
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items() if v.shape != own[k].shape]
    if mismatched:
        raise ValueError(f"{source}: shape mismatch for {len(mismatched)} keys, e.g. {mismatched[:3]} (config/img_size differ from the checkpoint's)")
    missing = sorted(set(own) - set(state))
    allowed_missing = {k for k in missing if ".ref_point14." in k or (drop_head and k.startswith("cls_head."))}
    if set(missing) - allowed_missing:
        bad = sorted(set(missing) - allowed_missing)
        raise ValueError(f"{source}: {len(bad)} model keys missing from the checkpoint, e.g. {bad[:5]}")
    for k in (k for k in state if k.endswith(LAYOUT_BUFFERS)):
        if not torch.equal(state[k].to(own[k].dtype), own[k]):
            raise ValueError(f"{source}: buffer {k} differs from the one this model computes (different window/shift layout)")
    model.load_state_dict(state, strict=False)
    return {"loaded": sorted(state), "missing": missing, "dropped": dropped, "ignored": ignored,
            "resized": sorted(resized), "replaced": sorted(replaced)}


def normalised_to_pixels(points: torch.Tensor, fmap_size: int, image_size: int) -> torch.Tensor:
    """Map (..., 2) normalised (y, x) sampling coordinates (align_corners=True on a fmap_size map) to image pixels (y, x)."""
    cell = (points + 1) / 2 * (fmap_size - 1)  # -1/+1 are the centres of the first/last feature cells
    return (cell + 0.5) * (image_size / fmap_size)


def offset_kept(positions: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Boolean (...) map: True where the offset (positions - references, (..., 2)) points into its reference's quadrant (EAT keeps it at full strength)."""
    return ((positions - references) * references > 0).all(dim=-1)
