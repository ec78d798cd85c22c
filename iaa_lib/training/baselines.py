"""A trivial image-statistics baseline: six hand-made global statistics of each image and a ridge regression on them.

A model that "learns" must beat this on the same test images (see `learning_check`). The statistics, on luma
Y = 0.299 R + 0.587 G + 0.114 B in [0, 1] of the image shrunk to at most `max_side` px:

* laplacian_variance: variance of the 4-neighbour Laplacian of Y (the classic focus measure);
* mean_abs_laplacian: mean |Laplacian| of Y;
* rms_contrast:       standard deviation of Y;
* colourfulness:      Hasler and Suesstrunk's colourfulness on the 0..255 scale;
* mean_luma:          mean of Y;
* edge_density:       fraction of pixels whose Sobel gradient magnitude of Y exceeds EDGE_THRESHOLD per pixel.
"""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage

from iaa_lib.data.datasets import AestheticDataset
from iaa_lib.data.images import load_rgb

STATISTICS = ("laplacian_variance", "mean_abs_laplacian", "rms_contrast", "colourfulness", "mean_luma", "edge_density")
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
EDGE_THRESHOLD = 0.05  # luma change per pixel that counts as an edge
SOBEL_GAIN = 8.0  # scipy's Sobel response to a luma ramp of 1 per pixel
DEFAULT_MAX_SIDE = 256
DEFAULT_RIDGE_ALPHA = 1.0
LOG_FLOOR = 1e-6  # added before the log of the non-negative statistics (all but mean_luma)


def statistics_of(rgb: np.ndarray) -> np.ndarray:
    """The STATISTICS (F = 6,) of an RGB array [H, W, 3] with values in [0, 1]."""
    luma = rgb @ LUMA_WEIGHTS
    laplacian = ndimage.laplace(luma, mode="nearest")
    gradient = np.hypot(ndimage.sobel(luma, 0, mode="nearest"), ndimage.sobel(luma, 1, mode="nearest")) / SOBEL_GAIN
    rg = 255.0 * (rgb[..., 0] - rgb[..., 1])
    yb = 255.0 * (0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2])
    return np.array([
        laplacian.var(),
        np.abs(laplacian).mean(),
        luma.std(),
        np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()),
        luma.mean(),
        (gradient > EDGE_THRESHOLD).mean(),
    ])


def image_statistics(paths: Iterable[str | os.PathLike], max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """STATISTICS of each image file (N, F = 6), each image first shrunk (aspect kept) to at most max_side px."""
    rows = []
    for path in paths:
        image = load_rgb(path)
        image.thumbnail((max_side, max_side))
        rows.append(statistics_of(np.asarray(image, dtype=np.float64) / 255.0))
    if not rows:
        raise ValueError("image_statistics: no image paths given")
    return np.stack(rows)


def _features(statistics: np.ndarray) -> np.ndarray:
    """Regression inputs (N, F): log(statistic + LOG_FLOOR) for the non-negative statistics, mean_luma as it is."""
    features = np.log(statistics + LOG_FLOOR)
    luma = STATISTICS.index("mean_luma")
    features[:, luma] = statistics[:, luma]
    return features


def ridge_fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, alpha: float = DEFAULT_RIDGE_ALPHA) -> np.ndarray:
    """Ridge regression (closed form) on features standardised with the training mean/std; test predictions (M,)."""
    if len(train_x) < 2:
        raise ValueError(f"ridge_fit_predict: need at least 2 training rows, got {len(train_x)}")
    mean, std = train_x.mean(axis=0), train_x.std(axis=0)
    std[std == 0] = 1.0
    x, test = (train_x - mean) / std, (test_x - mean) / std
    y_mean = float(np.mean(train_y))
    weights = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (np.asarray(train_y, dtype=np.float64) - y_mean))
    return test @ weights + y_mean


def statistics_baseline(
    train_frame: pd.DataFrame, test_frame: pd.DataFrame, image_dir: str | os.PathLike | None = None,
    target: str = "mos", alpha: float = DEFAULT_RIDGE_ALPHA, max_side: int = DEFAULT_MAX_SIDE,
) -> np.ndarray:
    """Predicted `target` (M,) for test_frame's images: ridge on the log image statistics of train_frame's images.

    Image files: each frame's `path` column, else <image_dir>/<image_id>.jpg (as AestheticDataset finds them)."""
    train_paths = AestheticDataset(train_frame, image_dir).paths
    test_paths = AestheticDataset(test_frame, image_dir).paths
    train_x = _features(image_statistics(train_paths, max_side))
    test_x = _features(image_statistics(test_paths, max_side))
    return ridge_fit_predict(train_x, train_frame[target].to_numpy(dtype=np.float64), test_x, alpha)
