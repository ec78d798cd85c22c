"""One call to make a run repeatable: seeds python, numpy and torch (CPU and CUDA), deterministic kernels."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> int:
    """Seed python/numpy/torch(+CUDA); with `deterministic`, pick deterministic algorithms (warn where none exist)."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matmuls; it must be set before CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    return seed


def seed_and_threads(seed: int, threads: int) -> int:
    """seed_everything(seed), then torch.set_num_threads(threads) unless threads is 0 (torch's default, all cores).

    On a shared small CPU one thread avoids oversubscription stalls with the book's small tensors."""
    seed = seed_everything(seed)
    if threads:
        torch.set_num_threads(threads)
    return seed
