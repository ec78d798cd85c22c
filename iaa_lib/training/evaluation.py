"""Evaluation of a model on a labelled loader (SRCC/PLCC/Acc/EMD) and prediction for image files."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from iaa_lib.data.images import ImageLoadError, load_rgb
from iaa_lib.metrics import predicted_mos, score_metrics
from iaa_lib.training import distributed

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def input_keys(model: nn.Module) -> tuple[str, ...]:
    """Batch keys passed to the model as keyword arguments (class attribute `input_keys`, default ("image",))."""
    return tuple(getattr(unwrap(model), "input_keys", ("image",)))


def split_output(output) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Model output -> (pred, aux_loss or None): a Tensor, or a dict with "pred" and optional "aux_loss"."""
    if isinstance(output, torch.Tensor):
        return output, None
    if isinstance(output, dict) and "pred" in output:
        return output["pred"], output.get("aux_loss")
    raise TypeError(
        f"model output must be a Tensor or a dict with key 'pred', got {type(output).__name__}"
        + (f" with keys {sorted(output)}" if isinstance(output, dict) else "")
    )


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for parameter-free modules)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def move_inputs(batch: dict, keys: Iterable[str], device: torch.device, channels_last: bool = False) -> dict:
    """The model's inputs of a batch dict on `device` (4-d image tensors optionally channels_last)."""
    inputs = {}
    for key in keys:
        if key not in batch:
            raise KeyError(f"the model needs batch key {key!r} (input_keys), but the batch has {sorted(batch)}")
        value = batch[key]
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if channels_last and value.dim() == 4:
                value = value.contiguous(memory_format=torch.channels_last)
        inputs[key] = value
    return inputs


@torch.no_grad()
def collect_predictions(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device | str | None = None,
    loss_fn: Callable | None = None,
    target: str = "dist",
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict:
    """Run the model over a loader in eval mode; returns CPU float32 pred [N,...], mos [N], dist [N,10] or None,
    image_id list, and loss (mean over samples of the batch losses, when loss_fn is given). Under torchrun, results
    are gathered over ranks when the loader is sharded (ShardSampler / DistributedSampler), else kept per rank."""
    device = torch.device(device) if device is not None else model_device(model)
    was_training = model.training
    model.eval()
    if isinstance(loss_fn, nn.Module):
        loss_was_training = loss_fn.training
        loss_fn.eval()
    preds, mos, dists, ids = [], [], [], []
    loss_sum = 0.0
    keys = input_keys(model)
    try:
        for batch in loader:
            inputs = move_inputs(batch, keys, device, channels_last)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
                pred, _ = split_output(model(**inputs))
            pred = pred.float()
            if loss_fn is not None and target in batch:
                loss_sum += float(loss_fn(pred, batch[target].to(device).float())) * pred.shape[0]
            preds.append(pred.cpu())
            mos.append(batch["mos"].float().cpu())
            if "dist" in batch:
                dists.append(batch["dist"].float().cpu())
            ids.extend(str(i) for i in batch.get("image_id", [""] * pred.shape[0]))
    finally:
        model.train(was_training)
        if isinstance(loss_fn, nn.Module):
            loss_fn.train(loss_was_training)
    local = {
        "pred": torch.cat(preds) if preds else torch.empty(0),
        "mos": torch.cat(mos) if mos else torch.empty(0),
        "dist": torch.cat(dists) if dists and len(dists) == len(preds) else None,
        "image_id": ids,
        "loss_sum": loss_sum,
    }
    sharded = isinstance(loader.sampler, (distributed.ShardSampler, DistributedSampler))
    parts = distributed.all_gather_objects(local) if sharded else [local]
    result = {
        "pred": torch.cat([p["pred"] for p in parts]),
        "mos": torch.cat([p["mos"] for p in parts]),
        "dist": None if any(p["dist"] is None for p in parts) else torch.cat([p["dist"] for p in parts]),
        "image_id": [i for p in parts for i in p["image_id"]],
    }
    n = len(result["mos"])
    result["loss"] = sum(p["loss_sum"] for p in parts) / n if loss_fn is not None and n else None
    return result


def _prediction_frame(collected: dict) -> pd.DataFrame:
    """image_id, mos, pred_mos and pred_dist_1..K (when the model predicts a distribution)."""
    pred = collected["pred"]
    frame = pd.DataFrame({
        "image_id": collected["image_id"],
        "mos": collected["mos"].double().numpy(),
        "pred_mos": predicted_mos(pred).double().numpy(),
    })
    if pred.dim() == 2 and pred.shape[1] > 1:
        for k in range(pred.shape[1]):
            frame[f"pred_dist_{k + 1}"] = pred[:, k].double().numpy()
    return frame


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device | str | None = None,
    threshold: float = 5.0,
    high_if: str = "gt",
    return_predictions: bool = False,
) -> dict | tuple[dict, pd.DataFrame]:
    """Metrics (srcc, plcc, krcc, acc, mse, rmse, mae, n; emd1/emd2 when model and data give 10-bin
    distributions) of `model` on `loader`, in eval mode without gradients; optionally with a predictions frame."""
    collected = collect_predictions(model, loader, device)
    pred = collected["pred"]
    has_dist = pred.dim() == 2 and pred.shape[1] > 1 and collected["dist"] is not None
    if has_dist and pred.shape[1] != collected["dist"].shape[1]:
        raise ValueError(f"model predicts {pred.shape[1]} bins but the data has {collected['dist'].shape[1]}")
    metrics = score_metrics(
        predicted_mos(pred).double().numpy(),
        collected["mos"].double().numpy(),
        pred_dist=pred.double().numpy() if has_dist else None,
        true_dist=collected["dist"].double().numpy() if has_dist else None,
        threshold=threshold,
        high_if=high_if,
    )
    return (metrics, _prediction_frame(collected)) if return_predictions else metrics


class _ImageFiles(Dataset):
    """Image paths -> (tensor, index) with a transform; unreadable files raise ImageLoadError naming them."""

    def __init__(self, paths: list[Path], transform: Callable):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.transform(load_rgb(self.paths[index])), index


def image_paths(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Image files from a file, a folder (its images, sorted, non-recursive) or a list of files/folders."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths: list[Path] = []
    for item in items:
        item = Path(item).expanduser()
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {item}")
            paths.extend(found)
        elif item.exists():
            paths.append(item)
        else:
            raise FileNotFoundError(f"image path {item} does not exist")
    return paths


def predict(
    model: nn.Module,
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    transform: Callable,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    on_error: str = "raise",
    num_workers: int = 0,
) -> pd.DataFrame:
    """Scores for image files: DataFrame with image (path), pred_mos and pred_dist_1..K when the model predicts
    K bins. on_error="raise": an unreadable image raises ImageLoadError naming it; "skip": leave it out, warn,
    and list (path, reason) pairs in frame.attrs["skipped"]."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    keys = input_keys(model)
    if keys != ("image",):
        raise ValueError(f"predict feeds images only, but this model needs inputs {keys}; use evaluate() with its dataset")
    files = image_paths(paths)
    skipped: list[tuple[str, str]] = []
    if on_error == "skip":
        readable = []
        for path in files:
            try:
                load_rgb(path)
                readable.append(path)
            except ImageLoadError as error:
                skipped.append((str(path), error.reason))
        if skipped:
            warnings.warn(f"predict skipped {len(skipped)} unreadable image(s): {skipped[:5]}", stacklevel=2)
        files = readable
    device = torch.device(device) if device is not None else model_device(model)
    model = model.to(device)
    was_training = model.training
    model.eval()
    preds = []
    try:
        loader = DataLoader(_ImageFiles(files, transform), batch_size=batch_size, num_workers=num_workers)
        with torch.no_grad():
            for images, _ in loader:
                pred, _ = split_output(model(image=images.to(device)))
                preds.append(pred.float().cpu())
    finally:
        model.train(was_training)
    pred = torch.cat(preds) if preds else torch.empty(0, 1)
    frame = pd.DataFrame({"image": [str(p) for p in files], "pred_mos": predicted_mos(pred).double().numpy() if len(files) else []})
    if pred.dim() == 2 and pred.shape[1] > 1:
        for k in range(pred.shape[1]):
            frame[f"pred_dist_{k + 1}"] = pred[:, k].double().numpy()
    frame.attrs["skipped"] = skipped
    return frame
