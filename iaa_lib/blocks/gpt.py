"""A GPT-2-shaped causal language model with a KV cache, and a loader for GPT-2 weights in the HF key layout."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from iaa_lib.files import safe_torch_load

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the decoder; the defaults are GPT-2 small (124 M parameters, 768-d)."""

    vocab_size: int = 50257
    n_positions: int = 1024
    d_model: int = 768
    n_layers: int = 12
    n_heads: int = 12
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"GPTConfig: d_model={self.d_model} must be divisible by n_heads={self.n_heads}")


GPT2_SMALL = GPTConfig()


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a fused qkv projection (GPT-2's c_attn) and an optional KV cache."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, D) -> (B, T, D) and the (key, value) cache, each (B, heads, T_past + T, D/heads)."""
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, dim // self.n_heads).transpose(1, 2) for t in (q, k, v))
        past_length = 0
        if past is not None:
            past_length = past[0].shape[2]
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        drop = self.dropout if self.training else 0.0
        if past_length == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        else:
            # query i sits at absolute position past_length + i and may see keys 0..past_length + i
            rows = torch.arange(length, device=x.device)[:, None] + past_length
            allowed = torch.arange(past_length + length, device=x.device)[None, :] <= rows
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=drop)
        y = y.transpose(1, 2).reshape(batch, length, dim)
        return self.out(y), (k, v)


class GPTBlock(nn.Module):
    """Pre-LN transformer block: x + attn(ln1 x), then x + mlp(ln2 x) with tanh-GELU as GPT-2."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        hidden = int(cfg.d_model * cfg.mlp_ratio)
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.fc = nn.Linear(cfg.d_model, hidden)
        self.proj = nn.Linear(hidden, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, D) -> (B, T, D) and this layer's KV cache."""
        attended, present = self.attn(self.ln1(x), past)
        x = x + self.drop(attended)
        x = x + self.drop(self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))
        return x, present


class GPT(nn.Module):
    """GPT-2-shaped causal LM: token + learned position embeddings, pre-LN blocks, final LN, tied output head."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(GPTBlock(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2's scaled init of the residual projections
            for proj in (block.attn.out, block.proj):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> token embeddings (B, T, D) (no positions: forward adds them)."""
        return self.wte(token_ids)

    def forward(self, token_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                past: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """Ids (B, T) or embeddings (B, T, D) -> next-token logits (B, T, vocab) and the updated KV cache."""
        if (token_ids is None) == (inputs_embeds is None):
            raise ValueError("GPT.forward: pass exactly one of token_ids or inputs_embeds")
        x = self.embed(token_ids) if inputs_embeds is None else inputs_embeds
        past_length = 0 if past is None else past[0][0].shape[2]
        length = x.shape[1]
        if past_length + length > self.cfg.n_positions:
            raise ValueError(f"GPT.forward: sequence of {past_length + length} positions exceeds "
                             f"n_positions={self.cfg.n_positions}")
        positions = torch.arange(past_length, past_length + length, device=x.device)
        x = self.drop(x + self.wpe(positions))
        presents: KVCache = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, None if past is None else past[i])
            presents.append(present)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return logits, presents


def _hf_gpt2_key_map(n_layers: int) -> dict[str, tuple[str, bool]]:
    """HF GPT-2 key -> (our key, transpose?) ; HF stores its Conv1D weights as (in, out), nn.Linear as (out, in)."""
    mapping = {"wte.weight": ("wte.weight", False), "wpe.weight": ("wpe.weight", False),
               "ln_f.weight": ("ln_f.weight", False), "ln_f.bias": ("ln_f.bias", False)}
    per_layer = {"ln_1.weight": ("ln1.weight", False), "ln_1.bias": ("ln1.bias", False),
                 "attn.c_attn.weight": ("attn.qkv.weight", True), "attn.c_attn.bias": ("attn.qkv.bias", False),
                 "attn.c_proj.weight": ("attn.out.weight", True), "attn.c_proj.bias": ("attn.out.bias", False),
                 "ln_2.weight": ("ln2.weight", False), "ln_2.bias": ("ln2.bias", False),
                 "mlp.c_fc.weight": ("fc.weight", True), "mlp.c_fc.bias": ("fc.bias", False),
                 "mlp.c_proj.weight": ("proj.weight", True), "mlp.c_proj.bias": ("proj.bias", False)}
    for i in range(n_layers):
        for hf_key, (ours, transpose) in per_layer.items():
            mapping[f"h.{i}.{hf_key}"] = (f"blocks.{i}.{ours}", transpose)
    return mapping


def convert_hf_gpt2_state_dict(hf_state: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Rename/transpose a HF GPT2Model or GPT2LMHeadModel state dict into this module's layout."""
    stripped = {k.removeprefix("transformer."): v for k, v in hf_state.items()}
    converted = {}
    for hf_key, (ours, transpose) in _hf_gpt2_key_map(n_layers).items():
        if hf_key not in stripped:
            raise KeyError(f"GPT-2 state dict lacks {hf_key!r} (expected HF GPT-2 layout with {n_layers} layers)")
        tensor = stripped[hf_key]
        converted[ours] = tensor.t().contiguous() if transpose else tensor
    if "lm_head.weight" in stripped and not torch.equal(stripped["lm_head.weight"], stripped["wte.weight"]):
        raise ValueError("GPT-2 state dict has an lm_head different from wte; this decoder ties them")
    return converted


def gpt_config_from_hf_state_dict(hf_state: dict[str, torch.Tensor], n_heads: int | None = None,
                                  dropout: float = 0.0) -> GPTConfig:
    """Infer vocab, positions, width and depth from a HF GPT-2 state dict (heads default to width / 64)."""
    stripped = {k.removeprefix("transformer."): v for k, v in hf_state.items()}
    vocab_size, d_model = stripped["wte.weight"].shape
    n_layers = 1 + max(int(k.split(".")[1]) for k in stripped if k.startswith("h."))
    mlp_ratio = stripped["h.0.mlp.c_fc.weight"].shape[1] / d_model
    return GPTConfig(vocab_size=vocab_size, n_positions=stripped["wpe.weight"].shape[0], d_model=d_model,
                     n_layers=n_layers, n_heads=n_heads or d_model // 64, mlp_ratio=mlp_ratio, dropout=dropout)


GPT2_NAME = "gpt2"
GPT2_REPO = "openai-community/gpt2"  # GPT-2 small, 124 M parameters
GPT2_FILES = ("model.safetensors", "config.json", "vocab.json", "merges.txt")  # weights + the BPE tokenizer


def gpt2_folder(name_or_path: str | Path = GPT2_NAME) -> Path:
    """A folder holding GPT-2 (GPT2_FILES): a local path as given, or the name "gpt2" from the Hugging Face hub
    (its cache offline, downloaded when online); WeightsUnavailableError saying what to fetch when neither works."""
    if str(name_or_path) != GPT2_NAME:
        return Path(name_or_path).expanduser()
    from huggingface_hub import snapshot_download

    from iaa_lib.blocks.backbones import hub_offline, weights_unavailable

    offline = hub_offline()
    try:
        folder = Path(snapshot_download(GPT2_REPO, allow_patterns=list(GPT2_FILES), local_files_only=offline))
    except Exception as err:  # offline cache miss or a failed download
        raise weights_unavailable("GPT-2 124M ('gpt2')", GPT2_REPO, GPT2_FILES,
                                  "put them in one folder and pass that folder, gpt2_path='/path/to/gpt2'") from err
    absent = tuple(name for name in GPT2_FILES if not (folder / name).is_file())
    if absent:
        raise weights_unavailable(f"GPT-2 124M ('gpt2'; the cached copy lacks {', '.join(absent)})", GPT2_REPO,
                                  absent, "pass a folder holding all four files, gpt2_path='/path/to/gpt2'")
    return folder


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from a .safetensors/.bin/.pt file or a folder holding model.safetensors/pytorch_model.bin."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidates = [path / "model.safetensors", path / "pytorch_model.bin"]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise FileNotFoundError(f"{path} holds neither model.safetensors nor pytorch_model.bin; download GPT-2 "
                                    "(e.g. `huggingface-cli download gpt2`) and pass that folder")
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"GPT-2 weights not found at {path}; download GPT-2 (e.g. `huggingface-cli download "
                                "gpt2`) and pass its folder or model.safetensors")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    return safe_torch_load(path)


def load_gpt2(path_or_state: str | Path | dict[str, torch.Tensor], n_heads: int | None = None,
              dropout: float = 0.0) -> GPT:
    """Build a GPT from HF GPT-2 weights: the name "gpt2" (hub, see gpt2_folder), a local path, or an in-memory
    state dict in the HF key layout."""
    hf_state = path_or_state if isinstance(path_or_state, dict) else read_state_dict(gpt2_folder(path_or_state))
    cfg = gpt_config_from_hf_state_dict(hf_state, n_heads=n_heads, dropout=dropout)
    model = GPT(cfg)
    model.load_state_dict(convert_hf_gpt2_state_dict(hf_state, cfg.n_layers), strict=True)
    return model
