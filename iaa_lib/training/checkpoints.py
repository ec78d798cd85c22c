"""Checkpoint files of the training engine: atomic saves, weights-only loads, clear errors naming file and model.

A checkpoint holds only tensors and plain Python types (the RNG states included), so it loads with
``torch.load(weights_only=True)``: opening one never runs code.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from iaa_lib.files import UnreadableFileError, atomic_torch_save, safe_torch_load
from iaa_lib.training.evaluation import unwrap

_MAX_LISTED = 4


class CheckpointError(ValueError):
    """A checkpoint is unreadable, is not a checkpoint, or holds another model; the message names file and model."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write a checkpoint atomically (unique temporary file, fsync, rename): readers never see a partial file."""
    return atomic_torch_save(state, path)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict at `path` (a bare state dict comes back as {"model": it}); CheckpointError otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = safe_torch_load(path)
    except UnreadableFileError as error:
        raise CheckpointError(f"{error}; expected a checkpoint written by the book's training (best.pt / last.pt)") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(checkpoint).__name__}, not a dict of weights")
    if "model" not in checkpoint:
        if not checkpoint or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            keys = ", ".join(map(str, list(checkpoint)[:_MAX_LISTED]))
            raise CheckpointError(f"{path} is not a checkpoint: a dict without 'model' weights whose entries are "
                                  f"not all tensors (keys {keys or 'none'})")
        checkpoint = {"model": checkpoint}
    return checkpoint


def held_model(checkpoint: dict) -> str:
    """What model a checkpoint holds, in words: its model_config name and settings, or 'a bare state dict'."""
    config = checkpoint.get("model_config")
    if isinstance(config, dict) and config.get("name"):
        settings = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "name")
        return f"model {config['name']!r}" + (f" ({settings})" if settings else "")
    return f"a bare state dict ({len(checkpoint['model'])} tensors, no model record)"


def _model_name(model: nn.Module) -> str:
    config = getattr(model, "model_config", None)
    name = config.get("name") if isinstance(config, dict) else None
    return f"model {name!r}" if name else f"a {type(model).__name__}"


def _mismatch(expected: dict[str, torch.Tensor], saved: dict[str, Any]) -> str:
    """Missing keys, unexpected keys and shape differences between a model's state dict and saved weights."""
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    shapes = [f"{k} {tuple(saved[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in saved and isinstance(saved[k], torch.Tensor) and isinstance(v, torch.Tensor) and saved[k].shape != v.shape]
    parts = [f"{label} {len(items)} ({', '.join(items[:_MAX_LISTED])}{', ...' if len(items) > _MAX_LISTED else ''})"
             for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatches", shapes)) if items]
    return "; ".join(parts)


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, strict: bool = True) -> dict:
    """Read a checkpoint written by fit (or a bare state dict); load its weights into `model` when given.

    CheckpointError names the file for a truncated or foreign file, and the model it holds when it does not fit."""
    path = Path(path).expanduser()
    checkpoint = read_checkpoint(path)
    if model is not None:
        target = unwrap(model)
        problems = _mismatch(target.state_dict(), checkpoint["model"])
        if problems and (strict or "shape" in problems):
            raise CheckpointError(f"{path} holds {held_model(checkpoint)}, which does not fit {_model_name(target)}: {problems}")
        target.load_state_dict(checkpoint["model"], strict=strict)
    return checkpoint


def rng_state() -> dict:
    """RNG states of python, numpy, torch CPU and CUDA as tensors and plain types (weights-only loadable)."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()` output."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
