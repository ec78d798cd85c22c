"""Plotting helpers shared by the notebooks: image grids, vote histograms, prediction scatter, curves."""
from __future__ import annotations

import os
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from iaa_lib.data.images import load_rgb
from iaa_lib.metrics import plcc, srcc
from iaa_lib.profiles import check_weights

SCORES = np.arange(1, 11)
RANDOM_WEIGHTS_HOOK = "iaa_lib.viz:stamp_random_weights"
RANDOM_WEIGHTS_LABEL = "RANDOM WEIGHTS (rehearsal): not a result"


def stamp_random_weights(fig: plt.Figure) -> None:
    """Write RANDOM_WEIGHTS_LABEL across the bottom of a figure (a matplotlib figure.hooks entry)."""
    fig.text(0.5, 0.005, RANDOM_WEIGHTS_LABEL, ha="center", va="bottom", color="crimson", fontsize=9,
             fontweight="bold")


def mark_random_weights(weights: str) -> bool:
    """Stamp every figure pyplot creates from now on when weights == "random"; True when stamping is on.

    Raises ValueError for a weights value other than iaa_lib.profiles.WEIGHTS."""
    check_weights(weights)
    hooks = [hook for hook in plt.rcParams["figure.hooks"] if hook != RANDOM_WEIGHTS_HOOK]
    if weights == "random":
        hooks.append(RANDOM_WEIGHTS_HOOK)
    plt.rcParams["figure.hooks"] = hooks
    return weights == "random"


def image_grid(images: Sequence[Image.Image | str | os.PathLike], titles: Sequence[str] | None = None,
               ncols: int = 6, cell_inches: float = 2.2) -> plt.Figure:
    """A grid of images (PIL images or paths) with optional titles; returns the figure."""
    nrows = max(1, -(-len(images) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell_inches, nrows * cell_inches * 1.05),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        image = images[index]
        ax.imshow(image if isinstance(image, Image.Image) else load_rgb(image))
        if titles is not None:
            ax.set_title(titles[index], fontsize=8)
    fig.tight_layout()
    return fig


def vote_bars(ax: plt.Axes, dist: Sequence[float], title: str | None = None, color: str = "C0",
              label: str | None = None, offset: float = 0.0, width: float = 0.8) -> None:
    """Bars of a 10-bin score distribution (scores 1..10 on x, probability on y)."""
    ax.bar(SCORES + offset, np.asarray(dist, dtype=float), width=width, color=color, label=label)
    ax.set_xticks(SCORES)
    ax.set_xlabel("score")
    if title:
        ax.set_title(title, fontsize=9)


def scatter_pred_true(true_mos: Sequence[float], pred_mos: Sequence[float], ax: plt.Axes | None = None,
                      title: str = "") -> plt.Axes:
    """Predicted vs true mean score with the y = x line and SRCC/PLCC in the title."""
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    true_mos, pred_mos = np.asarray(true_mos, float), np.asarray(pred_mos, float)
    ax.scatter(true_mos, pred_mos, s=12, alpha=0.7)
    low, high = min(true_mos.min(), pred_mos.min()), max(true_mos.max(), pred_mos.max())
    ax.plot([low, high], [low, high], color="grey", lw=1, ls="--")
    ax.set_xlabel("true mos")
    ax.set_ylabel("predicted mos")
    ax.set_title(f"{title}\nSRCC {srcc(pred_mos, true_mos):.3f}  PLCC {plcc(pred_mos, true_mos):.3f}".strip(),
                 fontsize=9)
    return ax


def learning_curves(history: dict[str, Any], metric: str = "srcc", label: str = "",
                    axes: Sequence[plt.Axes] | None = None) -> Sequence[plt.Axes]:
    """Training loss and a validation metric per epoch, from a `fit` history."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9, 3))[1]
    epochs = [row["epoch"] for row in history["epochs"]]
    axes[0].plot(epochs, [row["train_loss"] for row in history["epochs"]], marker="o", label=label or None)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss")
    axes[1].plot(epochs, [row[f"val_{metric}"] for row in history["epochs"]], marker="o", label=label or None)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel(f"validation {metric}")
    if label:
        axes[0].legend(fontsize=8)
        axes[1].legend(fontsize=8)
    return axes
