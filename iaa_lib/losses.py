"""Training losses on score distributions: EMD variants and MILNet's adaptive AdaEMD.

All losses take pred and target of shape (..., K) with the K score bins on the last axis (leading axes are
samples). Cumulative sums run in float32 (float64 for float64 inputs) even under bf16/fp16 autocast.
Nothing here checks for NaN (that would need a host sync), but every loss propagates it (a NaN label or
prediction gives a NaN loss, never 0), so the training engine's check of the loss value catches it.

EMD variants (see the book's conventions chapter, section 5):
- ``reduction="sample"`` (textbook, NIMA): mean_b ((1/K) sum_k |dCDF_bk|^r)^(1/r).
- ``reduction="batch_pooled"`` (EAT's ``EDMLoss`` as published): ((1/(B K)) sum_{b,k} |dCDF_bk|^r)^(1/r).
  Equal to "sample" for r=1; never smaller for r>1 (Jensen). EAT feeds raw, unnormalised outputs to it.
- ``milnet_distance``: MILNet's as-published inner distance with |.| inside the partial sum; an upper
  bound on EMD2, not an EMD.
"""
from __future__ import annotations

import torch
from torch import nn

EMD_REDUCTIONS = ("sample", "batch_pooled", "none")
ADAEMD_INNER = ("true_emd", "milnet_abs_inside")


def check_pred_target(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Raise ValueError unless pred and target are tensors of the same shape (..., K) with K >= 1 bins."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"pred and target must be torch tensors, got {type(pred).__name__} and {type(target).__name__}")
    if pred.ndim == 0 or pred.shape[-1] < 1:
        raise ValueError(f"pred: expected shape (B, K) with the K score bins last, got {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}; a distribution loss needs "
            "a (B, K) prediction for a (B, K) target (use target='dist', and a model with K outputs)"
        )


def _safe_root(mean_power: torch.Tensor, r: float) -> torch.Tensor:
    """mean_power^(1/r) with a zero (not NaN/inf) gradient where mean_power == 0, e.g. when pred == target.

    Only exact zeros are special-cased: NaN (a NaN label or prediction) and inf pass through, so the
    training engine's finiteness check sees them."""
    if r == 1:
        return mean_power
    zero = mean_power == 0
    safe_base = torch.where(zero, torch.ones_like(mean_power), mean_power)
    return torch.where(zero, torch.zeros_like(mean_power), safe_base ** (1.0 / r))


def _at_least_fp32(tensor: torch.Tensor) -> torch.Tensor:
    """tensor in float32, or float64 if it already is (half/bf16 cumulative sums lose too much precision)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def _cdf_gap(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|CDF_pred - CDF_target| per bin (..., K) in float32 (float64 for float64 inputs)."""
    return torch.cumsum(_at_least_fp32(pred) - _at_least_fp32(target), dim=-1).abs()


def emd_loss(pred: torch.Tensor, target: torch.Tensor, r: float = 2, reduction: str = "sample") -> torch.Tensor:
    """EMD_r between (..., K) distributions: "sample" mean of per-sample EMDs (scalar), "batch_pooled" EAT's pooled root (scalar), "none" per sample (...)."""
    check_pred_target(pred, target)
    if reduction not in EMD_REDUCTIONS:
        raise ValueError(f"reduction must be one of {EMD_REDUCTIONS}, got {reduction!r}")
    if not r >= 1:
        raise ValueError(f"r must be >= 1 (r=2: NIMA/EAT training loss, r=1: EMD1), got {r!r}")
    gap_power = _cdf_gap(pred, target) ** r
    if reduction == "batch_pooled":
        return _safe_root(gap_power.mean(), r)
    per_sample = _safe_root(gap_power.mean(dim=-1), r)
    return per_sample if reduction == "none" else per_sample.mean()


def milnet_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MILNet's as-published inner distance per sample (...): ((1/K) sum_i (sum_{j<=i} |p_j - q_j|)^2)^(1/2); an upper bound on EMD2."""
    check_pred_target(pred, target)
    partial_sums = torch.cumsum((_at_least_fp32(pred) - _at_least_fp32(target)).abs(), dim=-1)
    return _safe_root((partial_sums**2).mean(dim=-1), 2)


class EMDLoss(nn.Module):
    """EMD_r loss module (scalar for "sample"/"batch_pooled", per sample for "none"); see emd_loss."""

    def __init__(self, r: float = 2, reduction: str = "sample") -> None:
        super().__init__()
        if reduction not in EMD_REDUCTIONS:
            raise ValueError(f"reduction must be one of {EMD_REDUCTIONS}, got {reduction!r}")
        if not r >= 1:
            raise ValueError(f"r must be >= 1, got {r!r}")
        self.r = r
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss between (B, K) predicted and target distributions."""
        return emd_loss(pred, target, r=self.r, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"r={self.r}, reduction={self.reduction!r}"


class AdaEMDLoss(nn.Module):
    """MILNet's AdaEMD: per-sample l = d if d < tau else (C + d)*d, batch mean (scalar); C and tau adapt during training.

    - d is the inner distance: ``inner="true_emd"`` (default, EMD2 per sample) or ``inner="milnet_abs_inside"``
      (MILNet's as-published distance with |.| inside the partial sum, an upper bound on EMD2).
    - C: after every training forward, C <- alpha * L + (1 - alpha) * C with L the detached batch loss and C0 = 0.
      As in the official code, alpha = 0.99 weights the *new* value, so C is roughly the previous batch loss.
    - tau: starts at tau0; ``on_epoch_end()`` sets it to the mean of that epoch's training batch losses.
    - State (C, tau, the epoch tracker, hard_fraction) lives in buffers, so it is saved in checkpoints, and is
      updated only in training mode: call ``.eval()`` on this module when computing validation losses.

    Gradient remark: C is a constant, so a hard sample (d >= tau) contributes (C + 2d) * grad d. When
    C + 2d < 1, which is typical for EMD values, the hard samples' gradients are smaller than plain d's; at the
    first step (C = 0) they contribute d^2. Under Adam a factor shared by the whole batch cancels (the step is
    normalised by the gradient's running RMS), and once tau has fallen below nearly every d, all samples are
    hard: what remains is the relative weight (C + 2d_i) / mean_j (C + 2d_j), which grows with d_i, so AdaEMD
    then acts like a squared EMD that leans on the samples with the largest distance.
    """

    C: torch.Tensor
    tau: torch.Tensor
    hard_fraction: torch.Tensor
    epoch_loss_sum: torch.Tensor
    epoch_batches: torch.Tensor

    def __init__(self, inner: str = "true_emd", tau0: float = 0.2, alpha: float = 0.99) -> None:
        super().__init__()
        if inner not in ADAEMD_INNER:
            raise ValueError(f"inner must be one of {ADAEMD_INNER} ('true_emd': correct EMD2, 'milnet_abs_inside': as published), got {inner!r}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha (weight of the new batch loss in the EMA of C) must be in [0, 1], got {alpha}")
        self.inner = inner
        self.alpha = alpha
        self.register_buffer("C", torch.zeros(()))
        self.register_buffer("tau", torch.tensor(float(tau0)))
        self.register_buffer("hard_fraction", torch.zeros(()))
        self.register_buffer("epoch_loss_sum", torch.zeros(()))
        self.register_buffer("epoch_batches", torch.zeros((), dtype=torch.long))

    def distance(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample inner distance d (B,) in float32."""
        if self.inner == "true_emd":
            return emd_loss(pred, target, r=2, reduction="none")
        return milnet_distance(pred, target)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Batch AdaEMD loss (scalar, float32) for (B, K) predicted and target distributions."""
        if self.C.device != pred.device:
            self.to(pred.device)
        d = self.distance(pred, target)
        C, tau = self.C.clone(), self.tau.clone()
        is_hard = d >= tau
        batch_loss = torch.where(is_hard, (C + d) * d, d).mean()
        if self.training:
            with torch.no_grad():
                new_loss = batch_loss.detach()
                self.C.copy_(self.alpha * new_loss + (1 - self.alpha) * C)
                self.epoch_loss_sum.add_(new_loss)
                self.epoch_batches.add_(1)
                self.hard_fraction.copy_(is_hard.float().mean())
        return batch_loss

    def on_epoch_end(self) -> None:
        """Set tau to the mean training batch loss of the epoch that just ended and reset the tracker (no-op if it saw no training batch)."""
        with torch.no_grad():
            if int(self.epoch_batches) > 0:
                self.tau.copy_(self.epoch_loss_sum / self.epoch_batches)
            self.epoch_loss_sum.zero_()
            self.epoch_batches.zero_()

    def extra_repr(self) -> str:
        return f"inner={self.inner!r}, alpha={self.alpha}"
