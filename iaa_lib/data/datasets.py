"""Torch dataset over a label frame: image tensor, mos, optional 10-bin distribution, image id."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from iaa_lib.data.images import ImageLoadError, load_rgb
from iaa_lib.data.labels import DIST_COLUMNS, check_label_values
from iaa_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

ON_ERROR_MODES = ("raise", "skip")
_MAX_LISTED = 5


class AestheticDataset(Dataset):
    """Images of a label frame -> dict(image=float32 [3,H,W], mos=float32 scalar, dist=float32 [10] if present, image_id=str).

    Label values are checked first (labels.check_label_values: finite mos, dist rows that are distributions
    and agree with mos); a bad row raises ValueError naming its position and image id.

    Image files: the frame's `path` column when present, else `<image_dir>/<image_id>.jpg`.
    transform: PIL RGB -> tensor; None means eval_transform() (224 px squash, ImageNet normalisation).
    on_error="raise": missing files raise ImageLoadError at construction (listing them), unreadable ones when
    loaded. on_error="skip": every image is decoded once up front; unreadable ones are left out, listed in
    `self.skipped` as (image_id, path, reason) and in a warning.
    cache_images: keep decoded RGB images in memory (for small sets); cache_max_side (pixels) first shrinks
    cached images so their longer side is at most that (BICUBIC; note it changes what the transform sees).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        image_dir: str | os.PathLike | None = None,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        on_error: str = "raise",
        cache_images: bool = False,
        cache_max_side: int | None = None,
    ) -> None:
        if on_error not in ON_ERROR_MODES:
            raise ValueError(f"on_error must be one of {ON_ERROR_MODES}, got {on_error!r}")
        frame = check_label_values(frame, "AestheticDataset(frame)")
        present = [c for c in DIST_COLUMNS if c in frame.columns]
        self.has_dist = bool(present)
        self.transform = transform if transform is not None else eval_transform()
        self.cache_images = cache_images
        self.cache_max_side = cache_max_side
        self._cache: dict[int, Image.Image] = {}
        paths = self._image_paths(frame, image_dir)
        self.skipped: list[tuple[str, str, str]] = []

        if on_error == "skip":
            keep = []
            for position, path in enumerate(paths):
                try:
                    image = load_rgb(path)
                except ImageLoadError as error:
                    self.skipped.append((str(frame["image_id"].iloc[position]), str(path), error.reason))
                    continue
                keep.append(position)
                if cache_images:
                    self._cache[len(keep) - 1] = self._shrink(image)
            if self.skipped:
                listing = "; ".join(f"{i} ({p}: {r})" for i, p, r in self.skipped[:_MAX_LISTED])
                warnings.warn(
                    f"AestheticDataset skipped {len(self.skipped)} of {len(paths)} unreadable image(s): {listing}"
                    + (" ..." if len(self.skipped) > _MAX_LISTED else "")
                    + "; see dataset.skipped",
                    stacklevel=2,
                )
            frame = frame.iloc[keep].reset_index(drop=True)
            paths = [paths[k] for k in keep]
        else:
            absent = [p for p in paths if not p.is_file()]
            if absent:
                shown = ", ".join(map(str, absent[:_MAX_LISTED]))
                raise ImageLoadError(
                    absent[0], f"{len(absent)} of {len(paths)} image file(s) missing, e.g. {shown}; "
                    "fix the paths or pass on_error='skip' to leave them out with a report"
                )

        self.frame = frame
        self.paths = paths
        self._ids = frame["image_id"].astype(str).tolist()
        self._mos = torch.tensor(frame["mos"].to_numpy(np.float64), dtype=torch.float32)
        self._dist = torch.tensor(frame[DIST_COLUMNS].to_numpy(np.float64), dtype=torch.float32) if self.has_dist else None

    @staticmethod
    def _image_paths(frame: pd.DataFrame, image_dir: str | os.PathLike | None) -> list[Path]:
        """Per-row image paths: the `path` column, else <image_dir>/<image_id>.jpg."""
        if "path" in frame.columns:
            return [Path(p) for p in frame["path"].astype(str)]
        if image_dir is None:
            raise ValueError("AestheticDataset: the frame has no 'path' column, so image_dir=<folder of <image_id>.jpg files> is required")
        image_dir = Path(image_dir)
        if not image_dir.is_dir():
            raise FileNotFoundError(f"AestheticDataset: image directory not found: {image_dir}")
        return [image_dir / f"{image_id}.jpg" for image_id in frame["image_id"].astype(str)]

    def _shrink(self, image: Image.Image) -> Image.Image:
        """Image reduced so its longer side is at most cache_max_side pixels (unchanged when None or already small)."""
        if self.cache_max_side is None or max(image.size) <= self.cache_max_side:
            return image
        scale = self.cache_max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=None)

    def image(self, index: int) -> Image.Image:
        """Decoded RGB PIL image of item `index` (from the cache when enabled)."""
        if index in self._cache:
            return self._cache[index]
        image = load_rgb(self.paths[index])
        if self.cache_images:
            image = self._shrink(image)
            self._cache[index] = image
        return image

    def __len__(self) -> int:
        return len(self._ids)

    def fingerprint(self) -> str:
        """Hash of what this set feeds training: ids, images, labels, the transform (hence the image size).

        Images held in memory (cache_images: small sets) count by their files' bytes, so the same images written
        into another run folder hash the same; on-disk sets (full AVA) count by their paths."""
        import hashlib

        from iaa_lib.training.fingerprint import fingerprint

        images = ([hashlib.sha256(p.read_bytes()).hexdigest() for p in self.paths] if self.cache_images
                  else [str(p) for p in self.paths])
        return fingerprint("AestheticDataset", self._ids, images, self._mos, self._dist, repr(self.transform),
                           self.cache_max_side)

    def __getitem__(self, index: int) -> dict:
        item = {"image": self.transform(self.image(index)), "mos": self._mos[index], "image_id": self._ids[index]}
        if self._dist is not None:
            item["dist"] = self._dist[index]
        return item


def split_loaders(
    parts: dict[str, pd.DataFrame],
    image_dir: str | os.PathLike | None,
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    batch_size: int = 16,
    eval_batch_size: int = 64,
    cache_images: bool = True,
    seed: int = 0,
) -> dict[str, DataLoader]:
    """{split: DataLoader} for a split of label frames: "train" shuffles (seeded), flips and drops the last
    partial batch; every other split uses the deterministic evaluation transform in frame order. An empty part
    raises ValueError before any loader is built."""
    if "train" not in parts:
        raise ValueError(f"split_loaders needs a 'train' part, got {sorted(parts)}")
    empty = [name for name, frame in parts.items() if len(frame) == 0]
    if empty:
        raise ValueError(f"split_loaders: the {', '.join(empty)} part(s) have no images "
                         f"({', '.join(f'{n} {len(f)}' for n, f in parts.items())}); every split needs images")
    loaders = {}
    for name, frame in parts.items():
        if name == "train":
            dataset = AestheticDataset(frame, image_dir, train_transform(image_size, mean, std), cache_images=cache_images)
            loaders[name] = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) > batch_size,
                                       generator=torch.Generator().manual_seed(seed))
        else:
            dataset = AestheticDataset(frame, image_dir, eval_transform(image_size, mean, std), cache_images=cache_images)
            loaders[name] = DataLoader(dataset, batch_size=eval_batch_size)
    return loaders
