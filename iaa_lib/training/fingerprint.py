"""One hashing helper for run keys: `fingerprint` of JSON-able values and tensors, `dataset_fingerprint` of data.

A dataset names what it holds through a ``fingerprint()`` method (ids, labels, inputs and, for images, the
files and the transform, hence the image size). Datasets without one are hashed item by item, with python,
numpy and torch seeded to 0 so random augmentations hash the same every time (one pass over the data).
"""
from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset


def _update(digest, part) -> None:
    """Feed one part (tensor, array, or JSON-able value) to a hashlib digest."""
    if isinstance(part, torch.Tensor):
        digest.update(part.detach().cpu().float().numpy().tobytes())
    elif isinstance(part, np.ndarray):
        digest.update(np.ascontiguousarray(part).tobytes())
    else:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())


def fingerprint(*parts) -> str:
    """Short stable hash (16 hex digits) of JSON-able parts, tensors and arrays, to key caches and checkpoints."""
    digest = hashlib.sha256()
    for part in parts:
        _update(digest, part)
    return digest.hexdigest()[:16]


def _items_fingerprint(dataset: Dataset) -> str:
    """Hash of every item of a map-style dataset (dict, tuple or tensor items), computed under fixed seeds."""
    digest = hashlib.sha256()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            random.seed(0)
            np.random.seed(0)
            for index in range(len(dataset)):
                item = dataset[index]
                if isinstance(item, dict):
                    for key in sorted(item):
                        _update(digest, key)
                        _update(digest, item[key])
                elif isinstance(item, (tuple, list)):
                    for value in item:
                        _update(digest, value)
                else:
                    _update(digest, item)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return digest.hexdigest()[:16]


def dataset_fingerprint(dataset: Dataset) -> str:
    """Hash of what a dataset feeds training: its own ``fingerprint()``, else (Subset / ConcatDataset of such)
    its parts, else every item (module docstring)."""
    own = getattr(dataset, "fingerprint", None)
    if callable(own):
        return str(own())
    if isinstance(dataset, Subset):
        return fingerprint("Subset", dataset_fingerprint(dataset.dataset), [int(i) for i in dataset.indices])
    if isinstance(dataset, ConcatDataset):
        return fingerprint("ConcatDataset", [dataset_fingerprint(part) for part in dataset.datasets])
    return _items_fingerprint(dataset)
