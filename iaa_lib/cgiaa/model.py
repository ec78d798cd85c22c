"""CG-IAA: aesthetic CLIP (VLAP), attribute critique experts (ClipCap-style prefix + GPT) and the MAP scoring head.

Stages (spec /work/shared/papers/cgiaa.md): VLAP fine-tunes a CLIP contrastively on (image, critique) pairs;
MAEL trains one prefix mapper per attribute in front of a GPT-2-shaped decoder; MAP encodes the generated
critiques with the text tower, concatenates them with the visual feature (pre-projection) and predicts a
10-bin score distribution.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from iaa_lib.blocks.decoding import DecodeResult, PrefixLMDecoder, beam_search, greedy_decode
from iaa_lib.blocks.gpt import GPT, GPTConfig, load_gpt2
from iaa_lib.metrics import predicted_mos

ATTRIBUTES = ("colour_and_light", "composition", "depth_and_focus", "general")
ATTRIBUTE_TITLES = {"colour_and_light": "Colour & light", "composition": "Composition",
                    "depth_and_focus": "Depth & focus", "general": "General feeling"}
LOSS_PADDING_MODES = ("mask", "as_published")


@dataclass(frozen=True)
class CGIAAConfig:
    """All sizes of the three stages; `full` = the released generator + the project's MAP design (cgiaa_map_v1)."""

    image_tower: str = "open_clip:ViT-B-16"
    image_weights: str | None = "openai"
    image_size: int = 224
    embed_dim: int = 512
    context_length: int = 77
    text_width: int = 512  # used only for the small text tower of `smoke` (full takes CLIP's)
    text_layers: int = 12
    text_heads: int = 8
    temperature: float = 0.07
    prefix_length: int = 40
    mapper_layers: int = 8
    mapper_heads: int = 8
    mapper_mlp_ratio: float = 2.0
    gpt2_path: str | None = None
    lm_weights: str = "pretrained"  # "random": GPT-2 small's shape (cfg.decoder) with random init, frozen as loaded
    # GPT-2 weights are, over open_clip's bundled BPE (GPT-2's vocab.json is not shipped); smoke trains its tiny LM
    decoder: GPTConfig = field(default_factory=GPTConfig)
    caption_tokens: int = 40
    max_generate: int = 67
    beam_width: int = 5
    loss_padding: str = "mask"
    map_hidden: int = 512
    map_dropout: float = 0.1
    n_bins: int = 10
    attributes: tuple[str, ...] = ATTRIBUTES

    def as_dict(self) -> dict:
        """Plain dict (for run hashes and checkpoints)."""
        return asdict(self)


CONFIGS: dict[str, CGIAAConfig] = {
    "full": CGIAAConfig(),
    "smoke": CGIAAConfig(
        image_tower="timm:tf_efficientnet_lite0", image_weights="imagenet", image_size=96, embed_dim=128,
        context_length=32, text_width=64, text_layers=2, text_heads=2, prefix_length=4, mapper_layers=1,
        mapper_heads=2, decoder=GPTConfig(vocab_size=0, n_positions=48, d_model=64, n_layers=2, n_heads=2),
        caption_tokens=24, max_generate=24, map_hidden=128),
}


def get_config(config: str | CGIAAConfig = "smoke", **overrides) -> CGIAAConfig:
    """A named config with keyword overrides (unknown keys -> TypeError naming them)."""
    if isinstance(config, CGIAAConfig):
        base = config
    elif config in CONFIGS:
        base = CONFIGS[config]
    else:
        raise ValueError(f"unknown CG-IAA config {config!r}; use one of {sorted(CONFIGS)}")
    unknown = set(overrides) - set(CGIAAConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown CG-IAA config keys {sorted(unknown)}")
    return replace(base, **overrides)


# ----------------------------------------------------------------------------------------------- VLAP
class OpenClipTextTower(nn.Module):
    """Text side of an open_clip CLIP (image tower removed): tokens (N, 77) -> projected features (N, E)."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        clip.visual = nn.Identity()
        self.clip = clip

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(tokens)


class AestheticCLIP(nn.Module):
    """Two-tower model for VLAP: image tower -> visual feature (B, Dv) -> proj -> (B, E); text tower -> (B, E).

    The visual feature before `proj` (CLIP ViT: the 768-d CLS after ln_post) is what MAP concatenates; the
    unit-norm projected embedding is what the contrastive loss and the experts' prefixes use.
    """

    def __init__(self, image_tower: nn.Module, visual_dim: int, text_tower: nn.Module, embed_dim: int,
                 context_length: int, mean: Sequence[float], std: Sequence[float], image_size: int,
                 temperature: float = 0.07) -> None:
        super().__init__()
        self.image_tower = image_tower
        self.proj = nn.Linear(visual_dim, embed_dim, bias=False)
        self.text_tower = text_tower
        self.visual_dim, self.embed_dim, self.context_length = visual_dim, embed_dim, context_length
        self.mean, self.std, self.image_size = tuple(mean), tuple(std), image_size
        self.temperature = temperature

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts -> open_clip BPE ids (N, context_length) with start/end tokens (long texts truncated)."""
        import open_clip

        return open_clip.tokenize(list(texts), context_length=self.context_length)

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, 3, H, W) -> visual feature before the projection (B, Dv)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        return self.image_tower(image)

    def embed_image_features(self, features: torch.Tensor) -> torch.Tensor:
        """Visual features (B, Dv) -> unit-norm image embeddings (B, E)."""
        return F.normalize(self.proj(features), dim=-1)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) -> unit-norm image embeddings (B, E)."""
        return self.embed_image_features(self.image_features(image))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """BPE ids (N, context_length) -> unit-norm text embeddings (N, E)."""
        return F.normalize(self.text_tower(tokens), dim=-1)


def build_clip(cfg: CGIAAConfig) -> AestheticCLIP:
    """The VLAP model: `full` = open_clip weights by name (visual proj split off); `smoke` = EfficientNet + small text tower."""
    from iaa_lib.blocks.backbones import create_backbone

    family, _, arch = cfg.image_tower.partition(":")
    if family == "open_clip":
        from iaa_lib.blocks.backbones import open_clip_model

        clip = open_clip_model(arch, cfg.image_weights)
        visual = clip.visual
        if getattr(visual, "proj", None) is None:
            raise ValueError(f"open_clip {arch}: its image tower has no `proj` to split off (need a ViT tower)")
        projection = visual.proj.detach().clone()  # (Dv, E)
        visual.proj = None  # the tower now returns the pooled CLS after ln_post
        pre = getattr(visual, "preprocess_cfg", {}) or {}
        model = AestheticCLIP(visual, projection.shape[0], OpenClipTextTower(clip), projection.shape[1],
                              clip.context_length, pre.get("mean", (0.48145466, 0.4578275, 0.40821073)),
                              pre.get("std", (0.26862954, 0.26130258, 0.27577711)), cfg.image_size, cfg.temperature)
        with torch.no_grad():
            model.proj.weight.copy_(projection.t())
        return model
    from open_clip.transformer import TextTransformer

    backbone = create_backbone(cfg.image_tower, weights=cfg.image_weights)
    text = TextTransformer(context_length=cfg.context_length, width=cfg.text_width, heads=cfg.text_heads,
                           layers=cfg.text_layers, output_dim=cfg.embed_dim)
    return AestheticCLIP(backbone, backbone.dim, text, cfg.embed_dim, cfg.context_length, backbone.mean,
                         backbone.std, cfg.image_size, cfg.temperature)


# ----------------------------------------------------------------------------------------------- MAEL
class MapperBlock(nn.Module):
    """ClipCap mapper block: pre-LN, bias-free q and kv projections, MLP (ratio 2, ReLU), no causal mask."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.ReLU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D)."""
        batch, length, dim = x.shape
        h = self.ln1(x)
        split = lambda t: t.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)  # noqa: E731
        k, v = self.kv(h).chunk(2, dim=-1)
        attended = F.scaled_dot_product_attention(split(self.q(h)), split(k), split(v))
        x = x + self.out(attended.transpose(1, 2).reshape(batch, length, dim))
        return x + self.mlp(self.ln2(x))


class PrefixMapper(nn.Module):
    """ClipCap transformer mapper: e (B, E) -> Linear -> (B, P, D), concat a learned constant (P, D), transform, keep the last P."""

    def __init__(self, embed_dim: int, d_model: int, prefix_length: int, n_layers: int, n_heads: int,
                 mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"PrefixMapper: d_model={d_model} must be divisible by n_heads={n_heads}")
        self.prefix_length, self.d_model = prefix_length, d_model
        self.linear = nn.Linear(embed_dim, prefix_length * d_model)
        self.constant = nn.Parameter(torch.randn(prefix_length, d_model))
        self.blocks = nn.ModuleList(MapperBlock(d_model, n_heads, mlp_ratio) for _ in range(n_layers))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Image embeddings (B, E) -> decoder prefix (B, P, D)."""
        if embedding.ndim != 2 or embedding.shape[1] != self.linear.in_features:
            raise ValueError(f"embedding must be (B, {self.linear.in_features}), got {tuple(embedding.shape)}")
        x = self.linear(embedding).view(-1, self.prefix_length, self.d_model)
        x = torch.cat([x, self.constant.expand(x.shape[0], -1, -1).to(x.dtype)], dim=1)
        for block in self.blocks:
            x = block(x)
        return x[:, self.prefix_length:]


def caption_loss(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, prefix_length: int,
                 loss_padding: str = "mask") -> torch.Tensor:
    """Next-token CE of the caption part of (B, P + L, V) logits against tokens (B, L).

    Logit position P - 1 + i predicts caption token i. "mask" ignores exactly the padded positions;
    "as_published" (released code) pads with id 0 and ignores id 0 everywhere, so a real id-0 token ("!")
    is never learned.
    """
    if loss_padding not in LOSS_PADDING_MODES:
        raise ValueError(f"loss_padding must be one of {LOSS_PADDING_MODES}, got {loss_padding!r}")
    predictions = logits[:, prefix_length - 1: -1].float()
    if predictions.shape[1] != tokens.shape[1]:
        raise ValueError(f"logits cover {predictions.shape[1]} caption positions, tokens have {tokens.shape[1]}")
    if loss_padding == "as_published":
        return F.cross_entropy(predictions.transpose(1, 2), tokens.masked_fill(~mask, 0), ignore_index=0)
    return F.cross_entropy(predictions.transpose(1, 2), tokens.masked_fill(~mask, -100), ignore_index=-100)


class CritiqueExperts(nn.Module):
    """One PrefixMapper per attribute in front of one shared causal LM (the spec's default, equivalent to 4
    frozen GPT-2 copies); `generate` writes one critique per image and attribute with beam search."""

    def __init__(self, lm: GPT, embed_dim: int, attributes: Sequence[str], prefix_length: int, mapper_layers: int,
                 mapper_heads: int, mapper_mlp_ratio: float = 2.0, loss_padding: str = "mask") -> None:
        super().__init__()
        if loss_padding not in LOSS_PADDING_MODES:
            raise ValueError(f"loss_padding must be one of {LOSS_PADDING_MODES}, got {loss_padding!r}")
        self.lm = lm
        self.attributes = tuple(attributes)
        self.prefix_length, self.loss_padding = prefix_length, loss_padding
        self.mappers = nn.ModuleDict({a: PrefixMapper(embed_dim, lm.cfg.d_model, prefix_length, mapper_layers,
                                                      mapper_heads, mapper_mlp_ratio) for a in self.attributes})

    def prefix(self, attribute: str, embedding: torch.Tensor) -> torch.Tensor:
        """Image embeddings (B, E) (re-normalised to unit length) -> the attribute's prefix (B, P, D)."""
        if attribute not in self.mappers:
            raise KeyError(f"unknown attribute {attribute!r}; experts exist for {self.attributes}")
        return self.mappers[attribute](F.normalize(embedding, dim=-1))

    def loss(self, embedding: torch.Tensor, attribute_index: torch.Tensor, tokens: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """Caption loss of a mixed-attribute batch: embeddings (B, E), attribute ids (B,), tokens/mask (B, L)."""
        prefixes = torch.zeros(embedding.shape[0], self.prefix_length, self.lm.cfg.d_model,
                               device=embedding.device, dtype=embedding.dtype)
        for index, attribute in enumerate(self.attributes):
            rows = (attribute_index == index).nonzero(as_tuple=True)[0]
            if rows.numel():
                prefixes = prefixes.index_put((rows,), self.prefix(attribute, embedding[rows]).to(prefixes.dtype))
        inputs = torch.cat([prefixes, self.lm.embed(tokens).to(prefixes.dtype)], dim=1)
        logits, _ = self.lm(inputs_embeds=inputs)
        return caption_loss(logits, tokens, mask, self.prefix_length, self.loss_padding)

    @torch.no_grad()
    def generate(self, attribute: str, embedding: torch.Tensor, stop_ids: Sequence[int], max_tokens: int,
                 beam_width: int = 5, temperature: float = 1.0, early_stopping: bool = True) -> DecodeResult:
        """Token ids of one critique per image (beam search; beam_width=1 -> greedy)."""
        decoder = PrefixLMDecoder(self.lm, self.prefix(attribute, embedding), temperature)
        if beam_width == 1:
            return greedy_decode(decoder, max_tokens, stop_ids)
        return beam_search(decoder, beam_width, max_tokens, stop_ids, early_stopping=early_stopping)


def build_decoder(cfg: CGIAAConfig, vocab_size: int) -> GPT:
    """The experts' LM: GPT-2 weights from cfg.gpt2_path (HF layout) when given, else a random cfg.decoder (GPT-2
    small's shape only with cfg.lm_weights == "random")."""
    if cfg.gpt2_path is not None:
        lm = load_gpt2(cfg.gpt2_path, n_heads=cfg.decoder.n_heads)
        if lm.cfg.vocab_size != vocab_size:
            raise ValueError(f"GPT-2 at {cfg.gpt2_path} has {lm.cfg.vocab_size} ids but the tokenizer has {vocab_size}; "
                             "use LocalGPT2Tokenizer on the same folder")
        return lm
    if cfg.lm_weights == "random":
        return GPT(replace(cfg.decoder, vocab_size=vocab_size))
    if cfg.decoder.d_model == GPTConfig().d_model and cfg.decoder.n_layers == GPTConfig().n_layers:
        raise ValueError("the full CG-IAA experts decode with GPT-2 small: pass gpt2_path='gpt2' (the Hugging Face hub "
                         "name; needs network once) or '/path/to/gpt2' (a folder with model.safetensors, config.json, "
                         "vocab.json, merges.txt)")
    return GPT(replace(cfg.decoder, vocab_size=vocab_size))


def build_experts(cfg: CGIAAConfig, vocab_size: int) -> CritiqueExperts:
    """Four attribute mappers + the decoder; a GPT-2 loaded from weights (or its random twin) is frozen (ClipCap
    --only_prefix)."""
    lm = build_decoder(cfg, vocab_size)
    if cfg.gpt2_path is not None or cfg.lm_weights == "random":
        lm.requires_grad_(False)
    return CritiqueExperts(lm, cfg.embed_dim, cfg.attributes, cfg.prefix_length, cfg.mapper_layers,
                           cfg.mapper_heads, cfg.mapper_mlp_ratio, cfg.loss_padding)


# ----------------------------------------------------------------------------------------------- MAP
class MAPHead(nn.Module):
    """cgiaa_map_v1 [design]: concat(visual (B, Dv), C critique embeddings (B, C, E)) -> MLP -> 10-bin softmax.

    With n_critiques = 0 it is the image-only baseline; with visual_dim = 0 the text-only one. n_bins = 1 gives
    a sigmoid score in [0, 1] (scalar datasets).
    """

    input_keys = ("visual_feature", "critique_embeddings")

    def __init__(self, visual_dim: int, text_dim: int, n_critiques: int, hidden: int = 512, dropout: float = 0.1,
                 n_bins: int = 10) -> None:
        super().__init__()
        if visual_dim == 0 and n_critiques == 0:
            raise ValueError("MAPHead needs a visual feature, critiques, or both")
        self.visual_dim, self.text_dim, self.n_critiques, self.n_bins = visual_dim, text_dim, n_critiques, n_bins
        self.mlp = nn.Sequential(nn.Linear(visual_dim + n_critiques * text_dim, hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_bins))

    def forward(self, visual_feature: torch.Tensor, critique_embeddings: torch.Tensor) -> torch.Tensor:
        """(B, Dv) and (B, C, E) -> (B, 10) distribution, or (B,) score when n_bins = 1."""
        parts = []
        if self.visual_dim:
            if visual_feature.ndim != 2 or visual_feature.shape[1] != self.visual_dim:
                raise ValueError(f"visual_feature must be (B, {self.visual_dim}), got {tuple(visual_feature.shape)}")
            parts.append(visual_feature)
        if self.n_critiques:
            expected = (self.n_critiques, self.text_dim)
            if critique_embeddings.ndim != 3 or tuple(critique_embeddings.shape[1:]) != expected:
                raise ValueError(f"critique_embeddings must be (B, {expected[0]}, {expected[1]}), "
                                 f"got {tuple(critique_embeddings.shape)}")
            parts.append(critique_embeddings.flatten(1))
        out = self.mlp(torch.cat(parts, dim=1))
        return torch.sigmoid(out.squeeze(1)) if self.n_bins == 1 else torch.softmax(out.float(), dim=-1)


class ScoreFromPixels(nn.Module):
    """Predicted mean score (B,) from normalised images (B, 3, H, W), one image's critiques (1, C, E) held fixed:
    the function integrated gradients differentiates."""

    def __init__(self, clip: AestheticCLIP, head: MAPHead, critiques: torch.Tensor) -> None:
        super().__init__()
        self.clip, self.head, self.critiques = clip, head, critiques

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return predicted_mos(self.head(self.clip.image_features(image), self.critiques.expand(image.shape[0], -1, -1)))


class CGIAA(nn.Module):
    """End-to-end MAP model: images (B, 3, H, W) + tokenised critiques (B, C, context) -> (B, 10) distribution."""

    input_keys = ("image", "critique_tokens")

    def __init__(self, clip: AestheticCLIP, head: MAPHead) -> None:
        super().__init__()
        self.clip, self.head = clip, head

    def forward(self, image: torch.Tensor, critique_tokens: torch.Tensor) -> torch.Tensor:
        """Predicted distribution (B, 10) from the image and its C generated critiques."""
        if critique_tokens.ndim != 3 or critique_tokens.shape[0] != image.shape[0]:
            raise ValueError(f"critique_tokens must be (B, C, context) with B = {image.shape[0]}, "
                             f"got {tuple(critique_tokens.shape)}")
        batch, n_critiques, context = critique_tokens.shape
        visual = self.clip.image_features(image)
        text = self.clip.encode_text(critique_tokens.reshape(batch * n_critiques, context))
        return self.head(visual, text.view(batch, n_critiques, -1))


def create_cgiaa(config: str | CGIAAConfig = "smoke", **overrides) -> CGIAA:
    """Registry factory "cgiaa": the scoring model (aesthetic CLIP towers + MAP head over the 4 critiques)."""
    cfg = get_config(config, **overrides)
    clip = build_clip(cfg)
    head = MAPHead(clip.visual_dim, clip.embed_dim, len(cfg.attributes), cfg.map_hidden, cfg.map_dropout, cfg.n_bins)
    return CGIAA(clip, head)
