"""Training loop: `fit` (optimiser, schedule, AMP, checkpoints, exact resume, DDP) and `fit_or_load`.

Reproducibility: every epoch re-seeds python/numpy/torch and the loader's shuffling from (seed, epoch), so an
interrupted run resumed from last.pt reaches the same weights as an uninterrupted one (bitwise on CPU).
Persistent loader workers keep their own RNG across epochs and break this; use persistent_workers=False.

Checkpoints under cfg.out_dir: last.pt (after every epoch), best.pt (best validation cfg.select_metric),
history.json. Each holds model, optimiser, scheduler and loss state, RNG states, epoch, global step, config,
config hash and history, as tensors and plain types (they load with weights_only=True). Files are replaced
atomically, and one process at a time trains into a folder (a lock on out_dir/.lock). A fresh run replaces an
older run's files only once its own first epoch is saved. Training stops at the first non-finite loss or
parameter, before that step's update is saved, so last.pt and best.pt keep the last good epoch.

`fit_steps` is the step-based counterpart for recipes that draw their own batches (contrastive pairs, caption
rows): the caller gives the loss of its next batch, the optimiser and the schedule; the engine runs the steps and writes
the same last.pt / history.json, keyed by the hash of the caller's settings (`settings_hash`).
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from iaa_lib.files import atomic_write_json, folder_lock
from iaa_lib.seed import seed_everything
from iaa_lib.training import distributed
from iaa_lib.training.checkpoints import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from iaa_lib.training.fingerprint import dataset_fingerprint, fingerprint
from iaa_lib.training.run_index import finished_run_elsewhere, register_run
from iaa_lib.training.evaluation import (
    collect_predictions,
    move_inputs,
    input_keys,
    split_output,
    unwrap,
)
from iaa_lib.metrics import predicted_mos, score_metrics

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "step", "constant")
LOWER_IS_BETTER = ("loss", "emd1", "emd2", "mse", "rmse", "mae")
# FitConfig fields that change speed or bookkeeping but not the trained result: left out of the config hash.
_NOT_HASHED = ("device", "amp", "channels_last", "compile", "out_dir", "resume", "progress", "restore_best")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; the message names epoch, step and the batch's image ids."""


class NonFiniteParameterError(FloatingPointError):
    """An optimiser step left a NaN or inf parameter; the message names epoch, step and the parameter."""


@dataclass
class FitConfig:
    """Training settings. Epochs count from 1; lr values are peak learning rates after warm-up."""

    epochs: int = 10
    lr: float = 1e-3  # head / non-backbone parameters
    backbone_lr: float | None = None  # parameters named "backbone.*"; None = lr
    weight_decay: float = 1e-4  # applied to weights with >= 2 dims only (not to biases / norm scales)
    optimizer: str = "adamw"  # adamw | adam | sgd
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # cosine (to min_lr_ratio * lr) | step (x gamma every step_epochs) | constant
    warmup_epochs: float = 0.0  # linear warm-up from 0, in epochs (fractions allowed)
    min_lr_ratio: float = 0.0
    step_epochs: int = 10
    gamma: float = 0.1
    grad_clip: float | None = None  # max global grad norm; None = no clipping
    amp: bool = True  # bf16 autocast on CUDA; always fp32 on CPU
    channels_last: bool = False  # channels-last weights and images (CUDA; on CPU ~1.7x faster EfficientNet train steps)
    compile: bool = False  # torch.compile the model
    device: str | None = None  # None = cuda when available, else cpu
    target: str = "dist"  # batch key passed to loss_fn as target ("dist" or "mos")
    seed: int = 0
    deterministic: bool = True
    out_dir: str | None = None  # None = no files written
    resume: bool = False  # continue from out_dir/last.pt when it exists (same config hash required)
    select_metric: str = "srcc"  # validation metric choosing best.pt ("loss" and error metrics: lower is better)
    threshold: float = 5.0  # binary accuracy threshold on mos
    high_if: str = "gt"
    max_steps_per_epoch: int | None = None  # cap on optimiser steps per epoch (smoke runs, benchmarks)
    max_steps: int | None = None  # cap on optimiser steps of the whole run (rehearsals); the run ends, finished,
    # after the epoch in which it is reached; the schedule keeps its length (epochs x steps per epoch)
    progress: bool = True  # tqdm bar per epoch + one summary line per epoch
    restore_best: bool = True  # after fit, load best.pt weights into the model (when validation ran)
    extra: dict = field(default_factory=dict)  # free-form settings recorded in the config (and its hash)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"FitConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"FitConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1:
            raise ValueError(f"FitConfig.epochs must be >= 1, got {self.epochs}")
        for name in ("max_steps", "max_steps_per_epoch"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"FitConfig.{name} must be >= 1 or None (no cap), got {value}")

    def last_epoch(self, steps_per_epoch: int) -> int:
        """The last epoch that runs: `epochs`, or the earlier epoch in which the `max_steps` total is reached."""
        if self.max_steps is None:
            return self.epochs
        return min(self.epochs, math.ceil(self.max_steps / steps_per_epoch))

    def to_dict(self) -> dict:
        return asdict(self)


def _jsonable(value):
    """Value made JSON-serialisable (paths, tuples, numpy scalars)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def config_hash(model: nn.Module, loss_fn: Callable, train_loader: DataLoader, val_loader: DataLoader | None, cfg: FitConfig) -> str:
    """Hash of what determines the trained result: FitConfig (minus speed/bookkeeping fields), model config or
    architecture, loss repr, batch size and drop_last, and the fingerprints of the training and validation data
    (their ids, labels and inputs, image files and transforms included, so also the image size)."""
    core = unwrap(model)
    payload = {
        "fit": {k: v for k, v in cfg.to_dict().items() if k not in _NOT_HASHED},
        "model_config": getattr(core, "model_config", None),
        "model": repr(core),
        "loss": repr(loss_fn),
        "n_train": len(train_loader.dataset),
        "n_val": len(val_loader.dataset) if val_loader is not None else 0,
        "batch_size": train_loader.batch_size,
        "drop_last": train_loader.drop_last,
        "train_data": dataset_fingerprint(train_loader.dataset),
        "val_data": dataset_fingerprint(val_loader.dataset) if val_loader is not None else None,
    }
    return fingerprint(_jsonable(payload))


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed for epoch `epoch` of a run seeded `seed` (stable across processes and python versions)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:4], "little")


def _param_groups(model: nn.Module, cfg: FitConfig) -> list[dict]:
    """Optimiser groups: backbone.* vs the rest (own lr), each split into decayed (>= 2-d) and undecayed params."""
    backbone_lr = cfg.lr if cfg.backbone_lr is None else cfg.backbone_lr
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((name.startswith("backbone."), param.ndim >= 2), []).append(param)
    return [
        {
            "params": params,
            "lr": backbone_lr if is_backbone else cfg.lr,
            "weight_decay": cfg.weight_decay if decayed else 0.0,
            "name": ("backbone" if is_backbone else "head") + ("" if decayed else "_no_decay"),
        }
        for (is_backbone, decayed), params in sorted(groups.items())
    ]


def make_optimizer(model: nn.Module, cfg: FitConfig) -> torch.optim.Optimizer:
    """AdamW / Adam / SGD(momentum) over `_param_groups`."""
    groups = _param_groups(model, cfg)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def lr_factor(step: int, steps_per_epoch: int, cfg: FitConfig) -> float:
    """Learning-rate multiplier at optimiser step `step` (0-based): linear warm-up, then cosine/step/constant."""
    total = cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_epochs)
    progress = (step - warmup) / max(1, total - warmup)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _current_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Current learning rates: "lr" (head) and "backbone_lr" (when the model has backbone.* parameters)."""
    lrs = {}
    for group in optimizer.param_groups:
        key = "backbone_lr" if group["name"].startswith("backbone") else "lr"
        lrs.setdefault(key, group["lr"])
    return lrs


def _is_better(value: float, best: float | None, metric: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best


def _validate(model, loss_fn, loader, device, cfg, autocast_dtype) -> dict:
    """Validation metrics (score_metrics keys + loss) on `loader`, gathered over ranks."""
    collected = collect_predictions(
        model, loader, device, loss_fn=loss_fn, target=cfg.target, autocast_dtype=autocast_dtype,
        channels_last=cfg.channels_last,
    )
    pred = collected["pred"]
    has_dist = pred.dim() == 2 and pred.shape[1] > 1 and collected["dist"] is not None
    metrics = score_metrics(
        predicted_mos(pred).double().numpy(), collected["mos"].double().numpy(),
        pred_dist=pred.double().numpy() if has_dist else None,
        true_dist=collected["dist"].double().numpy() if has_dist else None,
        threshold=cfg.threshold, high_if=cfg.high_if,
    )
    metrics["loss"] = collected["loss"]
    return metrics


def _reseed_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make epoch `epoch`'s shuffling, augmentation and dropout a function of (seed, epoch) only."""
    epoch_seed = _epoch_seed(seed, epoch)
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)
    torch.manual_seed(epoch_seed)
    if getattr(loader, "generator", None) is not None:
        loader.generator.manual_seed(epoch_seed)
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    elif getattr(sampler, "generator", None) is not None:
        sampler.generator.manual_seed(epoch_seed)


def _main_rank_lock(out_dir: Path | None):
    """folder_lock(out_dir) on the main rank (RANK 0 or not distributed); a no-op elsewhere or without out_dir."""
    if out_dir is None or int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    return folder_lock(out_dir, "training into")


def _first_non_finite_parameter(model: nn.Module) -> str | None:
    """Name of the first parameter holding NaN or inf, or None (one host sync for all parameters)."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        return None
    finite = torch.stack([torch.isfinite(p.detach()).all() for _, p in named])
    if bool(finite.all()):
        return None
    return named[int((~finite).nonzero()[0])][0]


def _check_val_loader(val_loader: DataLoader | None) -> None:
    """ValueError before any training when the validation loader has no samples."""
    if val_loader is not None and len(val_loader.dataset) == 0:
        raise ValueError("the validation loader has no samples (empty validation split): nothing to select the best "
                         "epoch on; give the split images, or pass val_loader=None to train without validation")


def fit(
    model: nn.Module,
    loss_fn: Callable,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    cfg: FitConfig,
) -> dict:
    """Train `model` with `loss_fn(pred, batch[cfg.target])`; returns the history dict (also history.json).

    history = {"epochs": [per-epoch dict: epoch, step, lr, train_loss, time_s, train_img_per_s, val_* ...],
    "best_epoch", "best_metric", "select_metric", "config", "config_hash", "finished", "world_size"}.
    After fit the model holds the best.pt weights when validation ran and cfg.restore_best, else the last ones.
    Under torchrun (WORLD_SIZE > 1) it trains with DistributedDataParallel; only rank 0 writes and prints.
    NonFiniteLossError / NonFiniteParameterError stop it at the first NaN or inf (module docstring).
    """
    _check_val_loader(val_loader)
    out_dir = Path(cfg.out_dir).expanduser() if cfg.out_dir is not None else None
    with _main_rank_lock(out_dir):
        return _fit(model, loss_fn, train_loader, val_loader, cfg, out_dir)


def _fit(model, loss_fn, train_loader, val_loader, cfg: FitConfig, out_dir: Path | None) -> dict:
    """fit() inside the run folder's lock."""
    from tqdm.auto import tqdm

    info = distributed.setup(cfg.device)
    device = info.device
    use_amp = cfg.amp and device.type == "cuda"
    autocast_dtype = torch.bfloat16 if use_amp else None
    channels_last = cfg.channels_last
    seed_everything(cfg.seed, deterministic=cfg.deterministic)

    core = unwrap(model).to(device)
    if channels_last:
        core = core.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    keys = input_keys(core)
    hash_ = config_hash(core, loss_fn, train_loader, val_loader, cfg)
    train_loader = distributed.shard_loader(train_loader, info, train=True, seed=cfg.seed)
    val_loader = distributed.shard_loader(val_loader, info, train=False, seed=cfg.seed) if val_loader is not None else None
    steps_per_epoch = len(train_loader) if cfg.max_steps_per_epoch is None else min(len(train_loader), cfg.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise ValueError("the training loader yields no batches (empty dataset or drop_last with too few samples)")
    optimizer = make_optimizer(core, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps_per_epoch, cfg))

    history: dict = {
        "epochs": [], "best_epoch": None, "best_metric": None, "select_metric": cfg.select_metric,
        "config": _jsonable(cfg.to_dict()), "config_hash": hash_, "finished": False,
        "world_size": info.world_size, "model_config": _jsonable(getattr(core, "model_config", None)),
    }
    start_epoch, global_step = 1, 0
    last_path = out_dir / "last.pt" if out_dir is not None else None
    fresh_run = True
    if cfg.resume and last_path is not None and last_path.is_file():
        state = read_checkpoint(last_path)
        if state.get("config_hash") != hash_:
            raise ValueError(
                f"{last_path} was written by a run with another configuration (hash {state.get('config_hash')} != {hash_}); "
                "use a new out_dir, or resume=False to start over"
            )
        core.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if isinstance(loss_fn, nn.Module) and state.get("loss") is not None:
            loss_fn.load_state_dict(state["loss"])
        set_rng_state(state["rng"])
        history = state["history"]
        start_epoch, global_step = state["epoch"] + 1, state["global_step"]
        fresh_run = False
    if out_dir is not None and info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    train_model: nn.Module = core
    if info.enabled:
        train_model = nn.parallel.DistributedDataParallel(core, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    show = cfg.progress and info.is_main

    def checkpoint(epoch: int, finished: bool) -> dict:
        return {
            "model": core.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "loss": loss_fn.state_dict() if isinstance(loss_fn, nn.Module) else None, "rng": rng_state(),
            "epoch": epoch, "global_step": global_step, "config": history["config"], "config_hash": hash_,
            "history": history, "finished": finished, "model_config": history["model_config"],
        }

    def stop_note(epoch: int) -> str:
        if last_path is None:
            return "No checkpoint is written (out_dir=None)"
        if epoch == start_epoch and fresh_run:
            return f"No epoch of this run finished, so nothing in {out_dir} was written or changed"
        return f"{last_path} and best.pt keep the last finished epoch ({epoch - 1}), untouched"

    last_epoch = cfg.last_epoch(steps_per_epoch)
    for epoch in range(start_epoch, last_epoch + 1):
        _reseed_epoch(train_loader, cfg.seed, epoch)
        train_model.train()
        if isinstance(loss_fn, nn.Module):
            loss_fn.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        start = time.perf_counter()
        epoch_steps = steps_per_epoch if cfg.max_steps is None else min(steps_per_epoch, cfg.max_steps - global_step)
        bar = tqdm(total=epoch_steps, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=not show)
        for step_in_epoch, batch in enumerate(train_loader):
            if step_in_epoch >= epoch_steps:
                break
            inputs = move_inputs(batch, keys, device, channels_last)
            if cfg.target not in batch:
                raise KeyError(f"FitConfig.target={cfg.target!r} is not a batch key; batch keys: {sorted(batch)}")
            target = batch[cfg.target].to(device, non_blocking=True).float()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                pred, aux_loss = split_output(train_model(**inputs))
            loss = loss_fn(pred.float(), target)
            if aux_loss is not None:
                loss = loss + aux_loss.float()
            where = f"epoch {epoch}, step {step_in_epoch + 1} of the epoch (global step {global_step + 1})"
            if not torch.isfinite(loss.detach()).item():
                ids = list(batch.get("image_id", []))[:16]
                raise NonFiniteLossError(
                    f"non-finite training loss ({loss.item()}) at {where}; batch image ids {ids}. {stop_note(epoch)}; "
                    "check these images' labels (NaN?), lower the learning rate or enable grad_clip"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(core.parameters(), cfg.grad_clip)
            optimizer.step()
            bad_parameter = _first_non_finite_parameter(core)
            if bad_parameter is not None:
                raise NonFiniteParameterError(
                    f"parameter {bad_parameter!r} became NaN or inf after the optimiser update at {where} (the loss "
                    f"was finite, {loss.item():.6g}). {stop_note(epoch)}; lower the learning rate or enable grad_clip"
                )
            scheduler.step()
            global_step += 1
            batch_size = target.shape[0]
            loss_sum += loss.detach().double() * batch_size
            seen += batch_size
            if show:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{seen * info.world_size / max(elapsed, 1e-9):.1f}", refresh=False)
                bar.update(1)
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - start
        total_loss, total_seen = distributed.all_reduce_sum([float(loss_sum), float(seen)], device)
        row = {
            "epoch": epoch, "step": global_step, **_current_lrs(optimizer),
            "train_loss": total_loss / max(total_seen, 1), "train_time_s": train_time,
            "train_img_per_s": total_seen / max(train_time, 1e-9),
        }
        if hasattr(loss_fn, "on_epoch_end"):
            loss_fn.on_epoch_end()
        if val_loader is not None:
            val_start = time.perf_counter()
            metrics = _validate(core, loss_fn, val_loader, device, cfg, autocast_dtype)
            row.update({f"val_{k}": v for k, v in metrics.items()})
            row["val_time_s"] = time.perf_counter() - val_start
        row["time_s"] = time.perf_counter() - start
        history["epochs"].append(_jsonable(row))
        selected = row.get(f"val_{cfg.select_metric}", row["train_loss"] if val_loader is None else None)
        improved = _is_better(selected, history["best_metric"], cfg.select_metric if val_loader is not None else "loss")
        if improved:
            history["best_epoch"], history["best_metric"] = epoch, selected
        history["finished"] = epoch == last_epoch
        if info.is_main:
            if out_dir is not None:
                state = checkpoint(epoch, history["finished"])
                if improved:
                    save_checkpoint(state, out_dir / "best.pt")
                save_checkpoint(state, last_path)
                if fresh_run and not improved:  # an older run's best.pt must not pass for this run's
                    (out_dir / "best.pt").unlink(missing_ok=True)
                atomic_write_json(out_dir / "history.json", history, indent=1)
            fresh_run = False
            if show:
                summary = f"epoch {epoch}/{cfg.epochs}  loss {row['train_loss']:.4f}  {row['train_img_per_s']:.1f} img/s"
                if val_loader is not None:
                    summary += "  " + "  ".join(
                        f"val_{k} {row[f'val_{k}']:.4f}" for k in ("loss", "srcc", "plcc", "acc", "emd2")
                        if row.get(f"val_{k}") is not None
                    )
                print(summary + ("  *" if improved else ""), flush=True)
        distributed.barrier()

    if cfg.restore_best and val_loader is not None and out_dir is not None and history["best_epoch"] is not None:
        best_path = out_dir / "best.pt"
        if best_path.is_file():
            load_checkpoint(best_path, core)
    return history


def fit_or_load(
    model: nn.Module,
    loss_fn: Callable,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    cfg: FitConfig,
) -> tuple[nn.Module, dict]:
    """Train unless cfg.out_dir, or another folder the run index knows (training.run_index), already holds a
    finished run with the same config hash (then just load it); a finished training is registered in that index.

    The hash covers the configuration and the data (config_hash), so another image size or other labels train
    anew. An unfinished last.pt with the same hash is resumed; a run with another hash, or an unreadable
    last.pt (with a warning naming it), is replaced once the new run's first epoch is saved.
    Stateful losses get last.pt's loss state either way. Returns (model, history); the model holds the best.pt weights when the run validated and cfg.restore_best,
    else the last ones (the same weights `fit` leaves in it). Requires cfg.out_dir.
    """
    if cfg.out_dir is None:
        raise ValueError("fit_or_load needs FitConfig.out_dir (where the checkpoint is looked for and written)")
    _check_val_loader(val_loader)
    out_dir = Path(cfg.out_dir).expanduser()
    with _main_rank_lock(out_dir):
        last_path = out_dir / "last.pt"
        hash_ = config_hash(unwrap(model), loss_fn, train_loader, val_loader, cfg)
        state = None
        if last_path.is_file():
            try:
                state = read_checkpoint(last_path)
            except CheckpointError as error:
                warnings.warn(f"{error}; training anew (it is replaced once the new run's first epoch is saved)", stacklevel=2)
        if state is not None and state.get("config_hash") == hash_ and state.get("finished"):
            return _load_finished(model, loss_fn, val_loader, cfg, out_dir, state, hash_)
        elsewhere = finished_run_elsewhere(hash_, out_dir)
        if elsewhere is not None:
            return _load_finished(model, loss_fn, val_loader, cfg, *elsewhere, hash_)
        resume = state is not None and state.get("config_hash") == hash_
        history = fit(model, loss_fn, train_loader, val_loader, FitConfig(**{**cfg.to_dict(), "resume": resume}))
        if history.get("finished") and distributed.is_main_process():
            register_run(hash_, out_dir)
        return model, history


def _load_finished(model: nn.Module, loss_fn: Callable, val_loader: DataLoader | None, cfg: FitConfig,
                   folder: Path, state: dict, hash_: str) -> tuple[nn.Module, dict]:
    """Load the finished run in `folder` (last.pt read as `state`): best.pt or last.pt weights, the loss state."""
    use_best = cfg.restore_best and val_loader is not None and (folder / "best.pt").is_file()
    load_checkpoint(folder / "best.pt" if use_best else folder / "last.pt", model)
    if isinstance(loss_fn, nn.Module) and state.get("loss") is not None:
        loss_fn.load_state_dict(state["loss"])  # stateful losses (AdaEMD) as training left them
    model.to(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))  # where fit leaves it
    if distributed.is_main_process():
        register_run(hash_, folder)
        if cfg.progress:
            print(f"loaded finished run from {folder} (config {hash_}); no training needed", flush=True)
    return model, state["history"]


def settings_hash(settings: dict) -> str:
    """16-hex-digit hash of a JSON-able settings dict (what keys a `fit_steps` run)."""
    return fingerprint(_jsonable(settings))


def fit_steps(
    model: nn.Module,
    batch_loss: Callable[[], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    steps: int,
    out_dir: str | os.PathLike | None = None,
    settings: dict | None = None,
    max_steps: int | None = None,
) -> tuple[nn.Module, dict]:
    """`steps` optimiser steps (at most `max_steps` when given: a rehearsal's cap, part of the settings hash) on batch_loss() (a scalar on the batch the caller draws), or, when out_dir/last.pt
    holds a finished run with the same settings hash, that run's weights loaded instead.

    Each step: loss, zero_grad, backward, optimizer.step, scheduler.step. The model trains in train mode and is
    left in eval mode. One checkpoint (last.pt: model, optimiser, scheduler, history) and history.json are written
    when the run ends; an interrupted run starts over. history = {"loss": [per step], "steps", "settings",
    "config_hash", "finished"}. Returns (model, history)."""
    if steps < 1:
        raise ValueError(f"fit_steps: steps must be >= 1, got {steps}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"fit_steps: max_steps must be >= 1 or None (no cap), got {max_steps}")
    settings = dict(settings or {})
    if max_steps is not None:
        settings["max_steps"] = max_steps
        steps = min(steps, max_steps)
    hash_ = settings_hash(settings)
    last_path = Path(out_dir).expanduser() / "last.pt" if out_dir is not None else None
    state = None
    if last_path is not None and last_path.is_file():
        try:
            state = read_checkpoint(last_path)
        except CheckpointError as error:
            warnings.warn(f"{error}; training anew", stacklevel=2)
    if state is not None:
        if state.get("config_hash") == hash_ and state.get("finished"):
            load_checkpoint(last_path, model)
            model.eval()
            print(f"loaded finished run from {last_path.parent} (config {hash_}); no training needed", flush=True)
            return model, state["history"]
    losses = []
    model.train()
    for step in range(steps):
        loss = batch_loss()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite training loss ({value}) at step {step + 1} of {steps}; "
                                     "lower the learning rate or check the batch this step drew")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(value)
    model.eval()
    history = {"loss": losses, "steps": steps, "settings": _jsonable(settings), "config_hash": hash_,
               "finished": True}
    if last_path is not None:
        last_path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "history": history, "config_hash": hash_,
                         "finished": True}, last_path)
        atomic_write_json(last_path.parent / "history.json", history, indent=1)
    return model, history


__all__ = [
    "CheckpointError", "FitConfig", "NonFiniteLossError", "NonFiniteParameterError", "fit", "fit_or_load",
    "fit_steps", "load_checkpoint", "config_hash", "settings_hash", "lr_factor", "make_optimizer", "save_checkpoint",
]
