"""Figures of the MILNet chapter: retrieved references, the learned reference graph and AdaEMD's state.

``show_references(data, query_ids, split, thumb_size=96) -> Figure``: one row per query, the query then
its references in rank order, titled with MOS and L2 distance.
``draw_reference_graph(affinity (N, N), image_paths, labels, ax)``: the N images as thumbnails on a
circle (query at the top), an edge i–j drawn with width ∝ (A_ij + A_ji) / 2 normalised by the largest
off-diagonal value; the self-affinity A_ii is written under each node.
``plot_adaemd_trace(trace, axes=None) -> Figure``: C, τ and the hard fraction per training step.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from iaa_lib.data.images import load_rgb
from iaa_lib.blocks.retrieval import ReferenceGraphData


def _thumbnail(path: str | Path, size: int) -> np.ndarray:
    """RGB thumbnail (size × size, aspect kept inside) as an array."""
    image = load_rgb(path)
    image.thumbnail((size, size))
    return np.asarray(image)


def show_references(
    data: ReferenceGraphData, query_ids: Sequence[str], split: str = "test", thumb_size: int = 96
) -> plt.Figure:
    """Grid: each row a query of `split` and its retrieved references with MOS and distance."""
    result = data.references[split]
    position = {q: i for i, q in enumerate(result.query_ids)}
    mos = dict(zip(data.frame["image_id"].astype(str), data.frame["mos"], strict=True))
    k = result.indices.shape[1]
    fig, axes = plt.subplots(len(query_ids), k + 1, figsize=(1.7 * (k + 1), 1.9 * len(query_ids)), squeeze=False)
    for row, query in enumerate(query_ids):
        i = position[str(query)]
        names = [str(query), *result.ref_ids[i]]
        for col, image_id in enumerate(names):
            ax = axes[row, col]
            ax.imshow(_thumbnail(data.image_path(image_id), thumb_size))
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_title(f"query ({split})\nMOS {mos[image_id]:.2f}", fontsize=8, color="C3")
                for spine in ax.spines.values():
                    spine.set_edgecolor("C3")
                    spine.set_linewidth(2)
            else:
                ax.set_title(f"#{col} d={float(result.distances[i, col - 1]):.2f}\nMOS {mos[image_id]:.2f}", fontsize=8)
    fig.tight_layout()
    return fig


def draw_reference_graph(
    affinity: np.ndarray,
    image_paths: Sequence[str | Path],
    labels: Sequence[str],
    ax: plt.Axes,
    thumb_size: int = 64,
    title: str | None = None,
) -> None:
    """Draw N thumbnails on a circle joined by edges whose width shows the symmetrised affinity."""
    affinity = np.asarray(affinity, dtype=np.float64)
    n = affinity.shape[0]
    if affinity.shape != (n, n) or len(image_paths) != n or len(labels) != n:
        raise ValueError(f"need an (N, N) affinity with N image paths and labels, got {affinity.shape}, "
                         f"{len(image_paths)}, {len(labels)}")
    angles = np.pi / 2 - 2 * np.pi * np.arange(n) / n
    xy = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    symmetric = (affinity + affinity.T) / 2
    off_diagonal = symmetric[~np.eye(n, dtype=bool)]
    scale = off_diagonal.max() if off_diagonal.size and off_diagonal.max() > 0 else 1.0
    for i in range(n):
        for j in range(i + 1, n):
            weight = symmetric[i, j] / scale
            ax.plot(*xy[[i, j]].T, color="C0", linewidth=0.5 + 6 * max(weight, 0), alpha=0.25 + 0.7 * max(weight, 0),
                    zorder=1)
            middle = xy[[i, j]].mean(0)
            ax.text(*middle, f"{symmetric[i, j]:.2f}", fontsize=6, ha="center", va="center", color="C0", zorder=2,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    for i in range(n):
        box = AnnotationBbox(OffsetImage(_thumbnail(image_paths[i], thumb_size), zoom=0.7), xy[i], frameon=True,
                             bboxprops=dict(edgecolor="C3" if i == 0 else "0.5", linewidth=2 if i == 0 else 1),
                             zorder=3)
        ax.add_artist(box)
        ax.text(xy[i, 0], xy[i, 1] - 0.4, f"{labels[i]}\nself {affinity[i, i]:.2f}", fontsize=6, ha="center",
                va="top", zorder=4)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.75, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)


def plot_adaemd_trace(trace: pd.DataFrame, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
    """Three panels over training steps: batch loss with C and τ, and the fraction of 'hard' samples (d ≥ τ)."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    else:
        fig = axes[0].figure
    axes[0].plot(trace["step"], trace["batch_loss"], label="batch loss L", color="0.6", linewidth=0.8)
    axes[0].plot(trace["step"], trace["C"], label="C (used at the step)", color="C0")
    axes[0].plot(trace["step"], trace["tau"], label="τ", color="C3", drawstyle="steps-post")
    axes[0].set_xlabel("training step")
    axes[0].legend(fontsize=8)
    axes[1].plot(trace["step"], trace["hard_fraction"], color="C2")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("fraction with d ≥ τ")
    fig.tight_layout()
    return fig
