"""Image -> normalised tensor transforms: deterministic evaluation, augmented training.

Default geometry is a *squash* resize to size x size (aspect ratio not kept), BICUBIC with antialiasing,
as in NIMA-style and EAT-style pipelines; "center_crop" resizes the shorter side to `size` and crops the
centre. Inputs are 8-bit RGB PIL images (see images.load_rgb); outputs are float32 tensors [3, size, size].
"""
from __future__ import annotations

from typing import Sequence

import torch
from torchvision.transforms import v2
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("squash", "center_crop")
# NIMA-style random crops: resize to 256 then crop 224, i.e. the crop covers 224/256 of the resized side.
CROP_MARGIN = 256 / 224


def _check(size: int, mean: Sequence[float], std: Sequence[float]) -> None:
    """ValueError for a non-positive size or mean/std that are not 3 channel values (std > 0)."""
    if int(size) != size or size <= 0:
        raise ValueError(f"size must be a positive int (pixels), got {size!r}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std need 3 channel values with std > 0, got mean={mean}, std={std}")


def _to_normalised_tensor(mean: Sequence[float], std: Sequence[float]) -> list:
    """PIL -> float32 tensor in [0, 1] -> (x - mean) / std."""
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def eval_transform(
    size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    resize: str = "squash",
) -> v2.Compose:
    """Deterministic PIL RGB -> float32 [3, size, size]: squash (or shorter-side + center crop) BICUBIC resize, normalise."""
    _check(size, mean, std)
    if resize == "squash":
        geometry = [v2.Resize((size, size), interpolation=InterpolationMode.BICUBIC, antialias=True)]
    elif resize == "center_crop":
        geometry = [v2.Resize(size, interpolation=InterpolationMode.BICUBIC, antialias=True), v2.CenterCrop(size)]
    else:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    return v2.Compose([*geometry, *_to_normalised_tensor(mean, std)])


def train_transform(
    size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    hflip: bool = True,
    random_crop: bool = False,
) -> v2.Compose:
    """Augmented PIL RGB -> float32 [3, size, size]: squash resize (to size*256/224 then a random size crop when
    random_crop), random horizontal flip when hflip, normalise."""
    _check(size, mean, std)
    if random_crop:
        enlarged = int(round(size * CROP_MARGIN))
        geometry = [
            v2.Resize((enlarged, enlarged), interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.RandomCrop(size),
        ]
    else:
        geometry = [v2.Resize((size, size), interpolation=InterpolationMode.BICUBIC, antialias=True)]
    flip = [v2.RandomHorizontalFlip(p=0.5)] if hflip else []
    return v2.Compose([*geometry, *flip, *_to_normalised_tensor(mean, std)])
