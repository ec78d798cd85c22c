"""CDCM-Net: a visual-key / textual-value memory (VTM) recalls comment features from image tokens, and a
confidence-based dynamic multimodal fusion (CDMF) transformer predicts the 10-bin score distribution.

Shapes: B images, N visual tokens (CLIP ViT-B/32: CLS + 7x7 patches = 50), D model width (512 in `full`),
S memory slots (512 in `full`), T comment rows (sentences, padded/truncated to N inside the model).

Variants (spec section 6): ``variant="textbook"`` (default, the correct version) and ``variant="as_published"``
(the released code's behaviour):

| switch             | textbook                                   | as_published                          |
|--------------------|--------------------------------------------|---------------------------------------|
| confidence target  | per-sample 1 - EMD1(p_m,b, y_b), detached   | one batch scalar 1 - EMD1, not detached|
| EMD reduction      | per sample                                 | batch-pooled                          |
| padding            | key-padding mask; pad rows out of L_rec/L_add | no mask, pad rows reconstructed to 0 |
| heads              | softmax                                    | ReLU + sum-normalisation              |
| confidence c_m     | softplus(w h + b) > 0                       | ReLU(w h + b) >= 0                    |

The softplus is a project choice: with ReLU the score loss drives a modality's confidence to exactly 0 within a
few Adam steps (measured in the book), after which that modality is erased from the fusion for good (dead ReLU).
Sum-normalisation is x / (sum x + eps) (the released guard never fires; documented project choice).
At eval time (``model.eval()``) a ``modality="recalled"`` model never reads comments or labels: the prediction
depends on the visual tokens only.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from iaa_lib.losses import EMDLoss, emd_loss

VARIANTS = ("textbook", "as_published")
MODALITIES = ("recalled", "real", "image_only")
SUM_NORM_EPS = 1e-8

CONFIGS: dict[str, dict[str, Any]] = {
    # The paper's model: frozen CLIP ViT-B/32 tokens (50 x 512) and CLIP text features (512).
    "full": dict(
        dim=512, visual_dim=512, text_dim=512, n_slot=512, radius=16.0, memory_init_std=0.5, value_init_std=None,
        heads=16, mlp_dim=1024, image_depth=3, text_depth=3, fusion_depth=6,
        dropout=0.5, memory_dropout=0.5, n_bins=10,
    ),
    # CPU profile: EfficientNet-Lite0 feature-map tokens (1280-d) and MiniLM sentence features (384-d).
    "smoke": dict(
        dim=64, visual_dim=1280, text_dim=384, n_slot=32, radius=16.0, memory_init_std=0.5, value_init_std=None,
        heads=4, mlp_dim=128, image_depth=1, text_depth=1, fusion_depth=2,
        dropout=0.1, memory_dropout=0.1, n_bins=10,
    ),
}

# Which frozen encoders produce the inputs of each profile (used by the data side, iaa_lib.blocks.text / notebooks).
# resize: CLIP's own preprocessing (shorter side to 224, centre crop) in full; the smoke CNN squashes.
# min_sentences: images with fewer comment sentences leave the real set (the released AVA filter; 0 = no filter).
ENCODERS: dict[str, dict[str, Any]] = {
    "full": dict(image="open_clip:ViT-B-32", image_weights="openai", text="open_clip:ViT-B-32",
                 text_weights="openai", image_size=224, resize="center_crop", max_sentences=50, min_sentences=5),
    "smoke": dict(image="timm:tf_efficientnet_lite0", image_weights="imagenet", text="minilm",
                  text_weights=None, image_size=128, resize="squash", max_sentences=17, min_sentences=0),
}


def encoder_spec(profile: str, weights: str = "pretrained") -> dict[str, Any]:
    """ENCODERS[profile]; weights="random" builds the same encoders by name with random init (image_weights and
    text_weights None, OpenAI CLIP as its QuickGELU architecture). ValueError for an encoder without random init."""
    from iaa_lib.blocks.backbones import random_twin
    from iaa_lib.profiles import check_weights

    check_weights(weights)
    spec = dict(ENCODERS[profile])
    if weights == "pretrained":
        return spec
    if spec["text"] == "minilm":
        raise ValueError(f"weights='random' needs CLIP text features (profile='full'); profile {profile!r} reads the "
                         "bundled MiniLM, which has no random build")
    for role in ("image", "text"):
        spec[role] = random_twin(spec[role], spec[f"{role}_weights"])
        spec[f"{role}_weights"] = None
    return spec


def sum_normalise(x: torch.Tensor, eps: float = SUM_NORM_EPS) -> torch.Tensor:
    """x / (sum over the last axis + eps): the released heads' N(x) with the NaN guard that actually fires."""
    return x / (x.sum(dim=-1, keepdim=True) + eps)


# ----------------------------------------------------------------------------------------------------------
# Frozen visual tokens
# ----------------------------------------------------------------------------------------------------------
class ImageTokens(nn.Module):
    """Frozen image encoder -> token sequence [B, N, C]: CLIP ViT = all tokens after ln_post and proj (CLS
    first, patches in raster order); CNN = [global average ; feature-map cells in raster order]."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.name = getattr(backbone, "name", type(backbone).__name__)
        visual = getattr(backbone, "model", backbone)
        self.is_clip_vit = all(hasattr(visual, a) for a in ("forward_intermediates", "transformer", "ln_post", "proj"))

    def train(self, mode: bool = True) -> "ImageTokens":
        """Stay in eval mode: the encoder is frozen (no dropout, fixed BatchNorm statistics)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Tokens [B, N, C] of normalised images [B, 3, H, W]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"ImageTokens: images must be [B, 3, H, W], got {tuple(images.shape)}")
        if self.is_clip_vit:
            visual = getattr(self.backbone, "model", self.backbone)
            out = visual.forward_intermediates(images, indices=1, intermediates_only=True, output_fmt="NLC",
                                               output_extra_tokens=True)  # last block: CLS and patches apart
            last = torch.cat([out["image_intermediates_prefix"][-1], out["image_intermediates"][-1]], dim=1)
            tokens = visual.ln_post(last)
            return tokens @ visual.proj if visual.proj is not None else tokens
        feature_map = self.backbone.forward_features(images)
        if feature_map.ndim != 4:
            raise ValueError(f"ImageTokens: {self.name} gave features of shape {tuple(feature_map.shape)}; "
                             "expected a CNN map [B, C, h, w] or a CLIP ViT tower")
        cells = feature_map.flatten(2).transpose(1, 2)
        return torch.cat([cells.mean(dim=1, keepdim=True), cells], dim=1)


def create_image_tokens(name: str, weights: str | None) -> ImageTokens:
    """Frozen token encoder by backbone name, e.g. ("open_clip:ViT-B-32", "openai") or ("timm:tf_efficientnet_lite0", "imagenet")."""
    from iaa_lib.blocks.backbones import create_backbone

    return ImageTokens(create_backbone(name, weights=weights))


# ----------------------------------------------------------------------------------------------------------
# VTM: visual-key / textual-value memory
# ----------------------------------------------------------------------------------------------------------
class KeyValueMemory(nn.Module):
    """Visual-key / textual-value memory: alpha = softmax(r cos(W_q v, K)) addresses S slots; the recalled text
    token is t_hat = W_f Dropout([v ; alpha sg(V)]). With real text t (training), beta = softmax(r cos(W_v sg(t), V))
    gives t_check = beta V and the losses L_rec = mean ||t_check - sg(t)||^2, L_add = KL(sg(beta) || alpha)."""

    def __init__(self, n_slot: int = 512, dim: int = 512, radius: float = 16.0, dropout: float = 0.5,
                 init_std: float = 0.5, value_init_std: float | None = None) -> None:
        super().__init__()
        self.radius = float(radius)
        self.key = nn.Parameter(torch.randn(n_slot, dim) * init_std)
        # V reconstructs text features, so it starts at their scale (value_init_std; None: init_std).
        self.value = nn.Parameter(torch.randn(n_slot, dim) * (init_std if value_init_std is None else value_init_std))
        self.query_proj = nn.Linear(dim, dim)
        self.text_query_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.recall_proj = nn.Linear(2 * dim, dim)

    def address(self, queries: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """Log of the softmax over slots of radius * cosine(query, slot): [..., S]."""
        cosine = F.normalize(queries, dim=-1) @ F.normalize(slots, dim=-1).transpose(0, 1)
        return torch.log_softmax(self.radius * cosine.float(), dim=-1)

    def forward(self, visual: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """visual [B,N,D] (and text [B,N,D], text_mask [B,N] True = real row, None = count every row) ->
        recalled [B,N,D], readout [B,N,D], address [B,N,S]; with text also value_address, rec_loss, add_loss."""
        log_alpha = self.address(self.query_proj(visual), self.key)
        alpha = log_alpha.exp()
        readout = (alpha @ self.value.detach().float()).to(visual.dtype)
        recalled = self.recall_proj(self.dropout(torch.cat([visual, readout], dim=-1)))
        out = {"recalled": recalled, "readout": readout, "address": alpha}
        if text is None:
            return out
        target = text.detach()
        log_beta = self.address(self.text_query_proj(target), self.value)
        beta = log_beta.exp()
        reconstruction = beta @ self.value.float()
        rec_rows = (reconstruction - target.float()).pow(2).mean(dim=-1)
        beta_fixed, log_beta_fixed = beta.detach(), log_beta.detach()
        add_rows = (beta_fixed * (log_beta_fixed - log_alpha)).sum(dim=-1)
        if text_mask is None:
            rec_loss, add_loss = rec_rows.mean(), add_rows.mean()
        else:
            weight = text_mask.to(rec_rows.dtype)
            count = weight.sum().clamp(min=1.0)
            rec_loss, add_loss = (rec_rows * weight).sum() / count, (add_rows * weight).sum() / count
        out.update(value_address=beta, reconstruction=reconstruction, rec_loss=rec_loss, add_loss=add_loss)
        return out


# ----------------------------------------------------------------------------------------------------------
# CDMF: pre-LN transformer encoders, confidence heads, fusion
# ----------------------------------------------------------------------------------------------------------
class EncoderBlock(nn.Module):
    """Pre-LN ViT block (LN eps 1e-6): multi-head self-attention with separate q/k/v Linears, then a GELU MLP."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"EncoderBlock: dim={dim} is not divisible by heads={heads}")
        self.heads = heads
        self.attention_dropout = dropout
        self.attention_norm = nn.LayerNorm(dim, eps=1e-6)
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.out_dropout = nn.Dropout(dropout)
        self.mlp_norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_dim), nn.Linear(mlp_dim, dim)
        self.mlp_dropout = nn.Dropout(dropout)
        for layer in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=1e-6)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        return x.view(batch, tokens, self.heads, dim // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, D]; key_padding_mask [B, L] True = padding (not attended to)."""
        h = self.attention_norm(x)
        attend = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            self._split_heads(self.query(h)), self._split_heads(self.key(h)), self._split_heads(self.value(h)),
            attn_mask=attend, dropout_p=self.attention_dropout if self.training else 0.0,
        )
        x = x + self.out_dropout(self.out(attended.transpose(1, 2).flatten(2)))
        h = self.mlp_dropout(F.gelu(self.fc1(self.mlp_norm(x))))
        return x + self.mlp_dropout(self.fc2(h))


class TokenEncoder(nn.Module):
    """`depth` EncoderBlocks then a final LayerNorm; no positional embedding, no extra CLS (token 0 summarises)."""

    def __init__(self, depth: int, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, D] -> [B, L, D]."""
        for block in self.blocks:
            x = block(x, key_padding_mask)
        return self.norm(x)


def _xavier_linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class CDCMNet(nn.Module):
    """CDCM-Net over frozen visual tokens -> dict(pred [B,10], aux_loss, address, recalled_text, confidence, ...).

    modality="recalled" (CDCM-Net): the fusion reads [c_img v ; c_txt t_hat] with t_hat recalled from memory.
    modality="real": the full-modality upper bound, real comment rows replace t_hat (needs comments at test time).
    modality="image_only": the image-only baseline, a fusion_depth encoder on v with the head on token 0.
    Inputs: visual_tokens [B,N,visual_dim] (or image [B,3,H,W] when a token_encoder is attached),
    comment_features [B,T,text_dim] and comment_mask [B,T] (True = real sentence), dist [B,10] (training only).
    token_encoder: an optional frozen ImageTokens module (stored as `frozen_encoder`) so the model takes images.
    value_init_std: the std of the value memory's initial entries (None: memory_init_std); fit_cdcm sets it to
    the std of the projected training text features, the scale V must reconstruct (smoke MiniLM: about 0.13).
    Loss weights w_rec, w_add, w_conf scale L_rec, L_add, sum_m L_conf,m inside aux_loss (all 1 by default).
    """

    def __init__(self, config: str = "smoke", variant: str = "textbook", modality: str = "recalled",
                 token_encoder: nn.Module | None = None, w_rec: float = 1.0, w_add: float = 1.0,
                 w_conf: float = 1.0, **overrides: Any) -> None:
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"CDCMNet: config must be one of {sorted(CONFIGS)}, got {config!r}")
        if variant not in VARIANTS:
            raise ValueError(f"CDCMNet: variant must be one of {VARIANTS}, got {variant!r}")
        if modality not in MODALITIES:
            raise ValueError(f"CDCMNet: modality must be one of {MODALITIES}, got {modality!r}")
        unknown = set(overrides) - set(CONFIGS[config])
        if unknown:
            raise ValueError(f"CDCMNet: unknown config key(s) {sorted(unknown)}; valid keys are {sorted(CONFIGS[config])}")
        cfg = {**CONFIGS[config], **overrides}
        self.config, self.variant, self.modality, self.cfg = config, variant, modality, cfg
        self.loss_weights = dict(rec=float(w_rec), add=float(w_add), conf=float(w_conf))
        self.model_config = dict(name="cdcm", config=config, variant=variant, modality=modality,
                                 loss_weights=self.loss_weights, **cfg)
        dim, heads, mlp, drop = cfg["dim"], cfg["heads"], cfg["mlp_dim"], cfg["dropout"]
        self.frozen_encoder = token_encoder
        # A learned adapter only when the frozen tokens are not already D-wide (smoke: 1280 -> 64).
        self.visual_adapter = (nn.Identity() if cfg["visual_dim"] == dim else
                               nn.Sequential(nn.LayerNorm(cfg["visual_dim"]), nn.Linear(cfg["visual_dim"], dim)))
        # Text features are the memory's reconstruction target, so their projection must not be learned (it
        # could collapse to 0): smoke uses a fixed random orthonormal map 384 -> 64, rescaled to keep norms.
        if cfg["text_dim"] == dim:
            self.text_projection = None
        else:
            generator = torch.Generator().manual_seed(0)
            wide, narrow = max(cfg["text_dim"], dim), min(cfg["text_dim"], dim)
            basis, _ = torch.linalg.qr(torch.randn(wide, narrow, generator=generator))
            basis = basis if cfg["text_dim"] >= dim else basis.T
            self.register_buffer("text_projection", basis * math.sqrt(max(cfg["text_dim"] / dim, 1.0)))
        n_bins = cfg["n_bins"]
        if modality == "image_only":
            self.fusion_encoder = TokenEncoder(cfg["fusion_depth"], dim, heads, mlp, drop)
            self.head_hidden = nn.Linear(dim, dim)
        else:
            if modality == "recalled":
                self.memory = KeyValueMemory(cfg["n_slot"], dim, cfg["radius"], cfg["memory_dropout"],
                                             cfg["memory_init_std"], cfg["value_init_std"])
            self.image_encoder = TokenEncoder(cfg["image_depth"], dim, heads, mlp, drop)
            self.text_encoder = TokenEncoder(cfg["text_depth"], dim, heads, mlp, drop)
            self.modality_classifier = nn.ModuleDict({m: _xavier_linear(dim, n_bins) for m in ("image", "text")})
            self.modality_confidence = nn.ModuleDict({m: _xavier_linear(dim, 1) for m in ("image", "text")})
            self.fusion_encoder = TokenEncoder(cfg["fusion_depth"], dim, heads, mlp, drop)
            self.head_hidden = nn.Linear(2 * dim, dim)
        self.head_out = nn.Linear(dim, n_bins)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """Batch keys the training engine passes to forward."""
        visual = "image" if self.frozen_encoder is not None else "visual_tokens"
        return (visual, "comment_features", "comment_mask", "dist")

    def _distribution(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax (textbook) or ReLU + sum-normalisation (as published) over the last axis, in float32."""
        logits = logits.float()
        return sum_normalise(F.relu(logits)) if self.variant == "as_published" else logits.softmax(dim=-1)

    def _emd(self, pred: torch.Tensor, target: torch.Tensor, r: int) -> torch.Tensor:
        """Scalar EMD_r, batch-pooled (as published) or the mean of per-sample EMDs (textbook)."""
        reduction = "batch_pooled" if self.variant == "as_published" else "sample"
        return emd_loss(pred, target, r=r, reduction=reduction)

    def confidence_loss(self, confidence: torch.Tensor, modality_pred: torch.Tensor,
                        target: torch.Tensor) -> torch.Tensor:
        """L_conf,m = mean_b (c_b - (1 - EMD1))^2 + EMD2(p_m, y); confidence [B], modality_pred/target [B,10]."""
        if self.variant == "as_published":
            confidence_target = 1.0 - emd_loss(modality_pred, target, r=1, reduction="batch_pooled")
        else:
            confidence_target = 1.0 - emd_loss(modality_pred, target, r=1, reduction="none").detach()
        return (confidence.float() - confidence_target).pow(2).mean() + self._emd(modality_pred, target, r=2)

    def _check_inputs(self, visual: torch.Tensor, comments: torch.Tensor | None, mask: torch.Tensor | None,
                      dist: torch.Tensor | None) -> None:
        if visual.ndim != 3 or visual.shape[-1] != self.cfg["visual_dim"]:
            raise ValueError(f"CDCMNet: visual_tokens must be [B, N, {self.cfg['visual_dim']}], got {tuple(visual.shape)}")
        if comments is not None:
            if comments.ndim != 3 or comments.shape[0] != visual.shape[0] or comments.shape[-1] != self.cfg["text_dim"]:
                raise ValueError(f"CDCMNet: comment_features must be [B={visual.shape[0]}, T, {self.cfg['text_dim']}], "
                                 f"got {tuple(comments.shape)}")
            if mask is not None and tuple(mask.shape) != tuple(comments.shape[:2]):
                raise ValueError(f"CDCMNet: comment_mask must be [B, T] = {tuple(comments.shape[:2])}, got {tuple(mask.shape)}")
        if dist is not None and tuple(dist.shape) != (visual.shape[0], self.cfg["n_bins"]):
            raise ValueError(f"CDCMNet: dist must be [B, {self.cfg['n_bins']}], got {tuple(dist.shape)}")

    def project_text(self, features: torch.Tensor) -> torch.Tensor:
        """Text features [..., text_dim] -> the model's text space [..., D] (the fixed map, or as is when text_dim == D)."""
        if self.text_projection is None:
            return features
        return features @ self.text_projection.to(features.dtype)

    def text_rows(self, comments: torch.Tensor, mask: torch.Tensor | None, n_rows: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Comment rows projected to D and zero-padded / truncated to the N visual tokens, with their mask [B, N]."""
        if mask is None:
            mask = torch.ones(comments.shape[:2], dtype=torch.bool, device=comments.device)
        comments = self.project_text(comments * mask.unsqueeze(-1).to(comments.dtype))
        rows = comments.shape[1]
        if rows >= n_rows:
            return comments[:, :n_rows], mask[:, :n_rows].bool()
        pad = n_rows - rows
        return F.pad(comments, (0, 0, 0, pad)), F.pad(mask.bool(), (0, pad), value=False)

    def text_padding(self, text_mask: torch.Tensor) -> torch.Tensor | None:
        """Key-padding mask [B, T] of real comment rows (True = padding) in the textbook variant, None as published.
        An image without any comment keeps its zero rows unmasked so attention never sees an all-masked row."""
        if self.variant != "textbook":
            return None
        return ~text_mask & text_mask.any(dim=1, keepdim=True)

    def modality_confidence_of(self, modality: str, summary: torch.Tensor) -> torch.Tensor:
        """Confidence c_m [B] of a modality's summary token [B, D]: softplus (textbook) or ReLU (as published)."""
        activation = F.relu if self.variant == "as_published" else F.softplus
        return activation(self.modality_confidence[modality](summary)).squeeze(-1)

    def forward(self, visual_tokens: torch.Tensor | None = None, image: torch.Tensor | None = None,
                comment_features: torch.Tensor | None = None, comment_mask: torch.Tensor | None = None,
                dist: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Predicted distribution and diagnostics; comments and dist are read only in training mode (or by
        modality="real", which needs comments at test time by construction)."""
        if visual_tokens is None:
            if image is None or self.frozen_encoder is None:
                raise ValueError("CDCMNet: pass visual_tokens [B, N, C], or image [B, 3, H, W] with a token_encoder "
                                 "attached (CDCMNet(token_encoder=create_image_tokens(...)))")
            visual_tokens = self.frozen_encoder(image)
        reads_text = self.training or self.modality == "real"
        if not reads_text:
            comment_features = comment_mask = None
        if not self.training:
            dist = None
        self._check_inputs(visual_tokens, comment_features, comment_mask, dist)
        visual = self.visual_adapter(visual_tokens.float())
        n_tokens = visual.shape[1]
        text = text_mask = None
        if comment_features is not None:
            text, text_mask = self.text_rows(comment_features.float(), comment_mask, n_tokens)
        out: dict[str, torch.Tensor] = {}
        aux = visual.new_zeros((), dtype=torch.float32)

        if self.modality == "image_only":
            z = self.fusion_encoder(visual)
            out["pred"] = self._distribution(self.head_out(self.head_hidden(z[:, 0])))
            out["aux_loss"] = aux
            return out

        if self.modality == "recalled":
            use_mask = self.variant == "textbook"
            memory = self.memory(visual, text, text_mask if use_mask else None)
            second = memory["recalled"]
            out.update(address=memory["address"], recalled_text=memory["recalled"], memory_readout=memory["readout"])
            if "rec_loss" in memory:
                out.update(rec_loss=memory["rec_loss"].detach(), add_loss=memory["add_loss"].detach(),
                           value_address=memory["value_address"])
                aux = aux + self.loss_weights["rec"] * memory["rec_loss"] + self.loss_weights["add"] * memory["add_loss"]
            second_padding = None
        else:
            if text is None:
                raise ValueError("CDCMNet(modality='real') needs comment_features (and comment_mask) at train and test time")
            second = text
            second_padding = self.text_padding(text_mask)

        h_image = self.image_encoder(visual)[:, 0]
        h_text = self.text_encoder(second, second_padding)[:, 0]
        confidence = torch.stack([self.modality_confidence_of("image", h_image),
                                  self.modality_confidence_of("text", h_text)], dim=-1)
        modality_pred = torch.stack([self._distribution(self.modality_classifier["image"](h_image)),
                                     self._distribution(self.modality_classifier["text"](h_text))], dim=1)
        fused_input = torch.cat([confidence[:, 0, None, None].to(visual.dtype) * visual,
                                 confidence[:, 1, None, None].to(second.dtype) * second], dim=1)
        fusion_padding = None
        if second_padding is not None:
            fusion_padding = torch.cat([torch.zeros_like(second_padding), second_padding], dim=1)
        z = self.fusion_encoder(fused_input, fusion_padding)
        out["pred"] = self._distribution(self.head_out(self.head_hidden(torch.cat([z[:, 0], z[:, n_tokens]], dim=-1))))
        out.update(confidence=confidence, modality_pred=modality_pred)
        if self.training:
            if dist is None:
                raise ValueError("CDCMNet: training needs `dist` [B, 10] in the batch (target of the confidence losses)")
            conf_loss = (self.confidence_loss(confidence[:, 0], modality_pred[:, 0], dist)
                         + self.confidence_loss(confidence[:, 1], modality_pred[:, 1], dist))
            out["conf_loss"] = conf_loss.detach()
            aux = aux + self.loss_weights["conf"] * conf_loss
        out["aux_loss"] = aux
        return out


def cdcm_main_loss(variant: str = "textbook") -> EMDLoss:
    """Main aesthetic loss L_EMD = EMD1 (r = 1): batch-pooled as published, per sample in the textbook variant."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return EMDLoss(r=1, reduction="batch_pooled" if variant == "as_published" else "sample")


def cdcm(config: str = "smoke", **kwargs: Any) -> CDCMNet:
    """Registry factory: CDCM-Net (`full` = the paper's sizes, `smoke` = CPU)."""
    return CDCMNet(config=config, **kwargs)
