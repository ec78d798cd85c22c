"""CDCM-Net's released weights in the official key layout -> CDCMNet.

The authors distribute two state dicts (Baidu pan, named in ``main.py`` of leiyaqi/CDCM-Net@18a75e2):
``0.87AVA_mem_conf_mmfusion.pth`` (``TransformerEncoder.MMDF``: encoders ``img_encoder`` / ``text_encoder`` /
``fusion_encoder`` with blocks ``layer.<i>.{attention_norm, attn.{query,key,value,out}, ffn_norm, ffn.fc1, ffn.fc2}``
and ``encoder_norm``; ``Confidence.{ConfidenceLayer,ClassifierLayer}.<m>.clf.0``; the head ``proj.0`` / ``proj.1``)
and ``0.87AVA_mem_conf_memory.pth`` (``MemoryNetWork.Memory``: ``key``, ``value``, ``q_embd``, ``v_embd``,
``fusion``). ``Confidence.FeatureInforEncoder`` is built but never used by the official forward: it is dropped
and reported. The weights were trained by that code, so they load only into ``variant="as_published"`` (ReLU +
sum-normalised heads, ReLU confidences) with the paper's 512-wide CLIP tokens (``config="full"``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from iaa_lib.cdcm.model import CDCMNet

ENCODER_NAMES = {"image_encoder": "img_encoder", "text_encoder": "text_encoder", "fusion_encoder": "fusion_encoder"}
BLOCK_NAMES = {"attention_norm": "attention_norm", "query": "attn.query", "key": "attn.key", "value": "attn.value",
               "out": "attn.out", "mlp_norm": "ffn_norm", "fc1": "ffn.fc1", "fc2": "ffn.fc2"}
MODALITY_INDEX = {"image": 0, "text": 1}
MEMORY_NAMES = {"key": "key", "value": "value", "query_proj": "q_embd", "text_query_proj": "v_embd",
                "recall_proj": "fusion"}
UNUSED_OFFICIAL = ("Confidence.FeatureInforEncoder.",)
RELEASED_FILES = "0.87AVA_mem_conf_mmfusion.pth and 0.87AVA_mem_conf_memory.pth (Baidu pan link in the CDCM-Net README)"


def _official_name(key: str) -> tuple[str, str]:
    """Our parameter name -> (file "mmfusion" | "memory", official name); KeyError for names without a counterpart."""
    parts = key.split(".")
    if parts[0] in ENCODER_NAMES:
        encoder = ENCODER_NAMES[parts[0]]
        if parts[1] == "norm":
            return "mmfusion", f"{encoder}.encoder_norm.{parts[2]}"
        if parts[1] == "blocks" and parts[3] in BLOCK_NAMES:
            return "mmfusion", f"{encoder}.layer.{parts[2]}.{BLOCK_NAMES[parts[3]]}.{parts[4]}"
    if parts[0] in ("modality_confidence", "modality_classifier") and parts[1] in MODALITY_INDEX:
        layer = "ConfidenceLayer" if parts[0] == "modality_confidence" else "ClassifierLayer"
        return "mmfusion", f"Confidence.{layer}.{MODALITY_INDEX[parts[1]]}.clf.0.{parts[2]}"
    if parts[0] in ("head_hidden", "head_out"):
        return "mmfusion", f"proj.{0 if parts[0] == 'head_hidden' else 1}.{parts[1]}"
    if parts[0] == "memory" and parts[1] in MEMORY_NAMES:
        return "memory", ".".join([MEMORY_NAMES[parts[1]], *parts[2:]])
    raise KeyError(key)


def official_key_map(model: CDCMNet) -> dict[str, tuple[str, str]]:
    """{our state-dict key: (file, official key)} for every key the released files must provide (the frozen token
    encoder is excluded: its weights are CLIP's). KeyError naming keys the official model has no counterpart for."""
    keys = [k for k in model.state_dict() if not k.startswith("frozen_encoder.")]
    mapping, unmatched = {}, []
    for key in keys:
        try:
            mapping[key] = _official_name(key)
        except KeyError:
            unmatched.append(key)
    if unmatched:
        raise KeyError(f"the official CDCM-Net layout has no counterpart for {unmatched[:5]} ({len(unmatched)} keys); "
                       "the released weights fit CDCMNet(config='full', variant='as_published') on 512-d CLIP tokens")
    return mapping


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a DataParallel "module." prefix shared by every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def convert_official_state_dicts(model: CDCMNet, mmfusion: dict[str, torch.Tensor],
                                 memory: dict[str, torch.Tensor] | None = None
                                 ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(state dict for `model`, dropped official keys) from the released MMDF (and Memory) state dicts.

    ValueError for a variant other than as_published, a missing memory file where the model recalls text, and
    any missing, unexpected or mis-shaped key (each named)."""
    if model.variant != "as_published" or model.modality == "image_only":
        raise ValueError(f"CDCM-Net's released weights were trained by the official code: load them into "
                         f"CDCMNet(config='full', variant='as_published', modality='recalled'); this model has "
                         f"variant={model.variant!r}, modality={model.modality!r}")
    sources = {"mmfusion": _strip_prefix(mmfusion), "memory": _strip_prefix(memory or {})}
    if model.modality == "recalled" and memory is None:
        raise ValueError("modality='recalled' needs the memory state dict too (0.87AVA_mem_conf_memory.pth)")
    own = model.state_dict()
    converted, problems = {}, []
    for key, (file, official) in official_key_map(model).items():
        tensor = sources[file].get(official)
        if tensor is None:
            problems.append(f"{file} file lacks {official}")
        elif tuple(tensor.shape) != tuple(own[key].shape):
            problems.append(f"{file}:{official} has shape {tuple(tensor.shape)}, model {key} needs {tuple(own[key].shape)}")
        else:
            converted[key] = tensor
    used = {(file, official) for file, official in official_key_map(model).values()}
    dropped = sorted(f"{file}:{k}" for file, state in sources.items() for k in state
                     if (file, k) not in used and k.startswith(UNUSED_OFFICIAL))
    unexpected = sorted(f"{file}:{k}" for file, state in sources.items() for k in state
                        if (file, k) not in used and not k.startswith(UNUSED_OFFICIAL))
    problems += [f"unexpected official key {k}" for k in unexpected]
    if problems:
        raise ValueError(f"the CDCM-Net state dicts do not fit this model ({len(problems)} problems): "
                         + "; ".join(problems[:8]) + (" ..." if len(problems) > 8 else ""))
    return converted, dropped


def _read(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A released CDCM-Net state dict file; FileNotFoundError naming the files to download."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; the released CDCM-Net weights are {RELEASED_FILES}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors")
    return state


def load_official_cdcm(model: CDCMNet, mmfusion_path: str | os.PathLike,
                       memory_path: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Load the released CDCM-Net files into `model` (in place); returns {"loaded": our keys, "dropped": official
    keys the official forward never uses}. The frozen token encoder keeps its CLIP weights."""
    memory = _read(memory_path) if memory_path is not None else None
    converted, dropped = convert_official_state_dicts(model, _read(mmfusion_path), memory)
    model.load_state_dict(converted, strict=False)
    return {"loaded": sorted(converted), "dropped": dropped}
