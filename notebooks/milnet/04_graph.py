# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MILNet 4 · Inside the reference graph
#
# > Which images does the query listen to? The learned affinities, drawn over the photographs, and what
# > happens to the score when the references are swapped for random ones.
#
# **What is reproduced.** Every Rs_GCN layer of MILNet computes a dense, non-negative, per-sample 5×5
# affinity $R = \theta(v)^\top\phi(v)/N$ (self-edges included, no softmax) and aggregates $y = R\,g(v)$.
# We draw $R$ of each layer as a graph over the query and its references, and measure how much the
# prediction depends on *which* references it gets.
# **Known deviations.** The model is chapter 2's smoke head (2 GCN layers, 64 channels, EfficientNet-Lite0
# node features); the paper's has 6 layers of 512 channels on MLSP features. The edge width shows the
# symmetrised affinity $(R_{ij} + R_{ji})/2$; $R$ itself is not symmetric.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
run_dir = "runs/milnet"
metrics_file = "runs/milnet/04_graph.json"
max_steps = 0
weights = "pretrained"
manifest = ""
n_synthetic = 300
n_graphs = 2
n_random_draws = 3

# %%
from iaa_lib.milnet.chapter import PROFILES, load_chapter
from iaa_lib.viz import mark_random_weights

settings = PROFILES.resolve(profile, globals())  # the profile's settings; parameters set above win
mark_random_weights(settings.weights)  # weights="random" (a rehearsal): every figure says so
chapter = load_chapter(settings)

# %% [markdown]
# ## The trained model from chapter 2

# %%
import torch
from torch.utils.data import DataLoader

from iaa_lib.metrics import predicted_mos

syn, trained = chapter.synthetic, chapter.train("synthetic")
model = trained.model.eval()
test_set = trained.loaders["test"].dataset


def run(dataset):
    """Predicted MOS (N,) and per-layer affinities (N, layers, 5, 5) over a whole dataset."""
    batch = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    with torch.no_grad():
        out = model(nodes=batch["nodes"])
    return predicted_mos(out["pred"]).numpy(), out["affinities"].numpy(), batch["mos"].numpy()


pred, affinities, mos = run(test_set)
print(f"{len(test_set)} test graphs, affinities {affinities.shape} (graph, layer, node, node)")

# %% [markdown]
# ## The learned affinities, drawn over the images
#
# Each panel is one layer for one test query (red frame, top); the references follow clockwise in rank
# order. Edge labels are $(R_{ij}+R_{ji})/2$ and "self" is $R_{ii}$. Titles give the true MOS of each
# image, which the model never sees for the references.

# %% tags=["figure:milnet_reference_graph"]
import matplotlib.pyplot as plt
import numpy as np

from iaa_lib.milnet.figures import draw_reference_graph

mos_of = dict(zip(syn.frame["image_id"].astype(str), syn.frame["mos"], strict=True))
rng = np.random.default_rng(seed)
picked = sorted(rng.choice(len(test_set), size=min(n_graphs, len(test_set)), replace=False).tolist())
n_layers = affinities.shape[1]
fig, axes = plt.subplots(len(picked), n_layers, figsize=(3.6 * n_layers, 3.6 * len(picked)), squeeze=False)
for row, index in enumerate(picked):
    names = test_set.node_ids[index]
    labels = ["query " + f"{mos_of[names[0]]:.1f}"] + [f"#{r} {mos_of[n]:.1f}" for r, n in enumerate(names[1:], 1)]
    for layer in range(n_layers):
        draw_reference_graph(affinities[index, layer], [syn.image_path(n) for n in names], labels, axes[row, layer],
                             title=f"layer {layer + 1}: predicted {pred[index]:.2f}, true {mos[index]:.2f}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Averaged over all test graphs: how much each node draws from each other node (row = receiving node,
# column = sending node; 0 = query).

# %%
mean_affinity = affinities.mean(axis=0)
fig, axes = plt.subplots(1, n_layers, figsize=(3.2 * n_layers, 3), squeeze=False)
for layer in range(n_layers):
    ax = axes[0, layer]
    image = ax.imshow(mean_affinity[layer], cmap="viridis")
    ax.set_xticks(range(5), ["q", "1", "2", "3", "4"])
    ax.set_yticks(range(5), ["q", "1", "2", "3", "4"])
    ax.set_title(f"layer {layer + 1}: mean R", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
plt.tight_layout()
plt.show()
query_share = mean_affinity[:, 0, 1:].sum(-1) / mean_affinity[:, 0, :].sum(-1)
print("share of the query's incoming affinity that comes from its references, per layer:", np.round(query_share, 3))

# %% [markdown]
# ## Swapping the references for random training images
#
# Same model, same queries; only the 4 reference nodes change (random training images, never the query).
# If the head ignored its references, the predictions would not move.

# %%
import pandas as pd

from iaa_lib.metrics import srcc

draws = []
for draw in range(n_random_draws):
    random_set = syn.datasets(settings.num_references, reference_mode="random", seed=seed + 1 + draw)["test"]
    draws.append(run(random_set)[0])
random_pred = np.stack(draws)
shift = np.abs(random_pred - pred[None]).mean()
swap_table = pd.DataFrame({
    "test SRCC": [srcc(pred, mos)] + [srcc(p, mos) for p in random_pred],
    "mean |Δ predicted MOS| vs retrieved": [0.0] + [float(np.abs(p - pred).mean()) for p in random_pred],
}, index=["retrieved references"] + [f"random references, draw {d + 1}" for d in range(n_random_draws)]).round(3)
swap_table

# %%
fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(pred, random_pred.mean(0), s=12)
ax.errorbar(pred, random_pred.mean(0), yerr=random_pred.std(0), fmt="none", alpha=0.3)
low, high = min(pred.min(), random_pred.min()), max(pred.max(), random_pred.max())
ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
ax.set_xlabel("predicted MOS, retrieved references")
ax.set_ylabel(f"predicted MOS, random references\n(mean ± sd of {n_random_draws} draws)")
plt.show()

# %%
from iaa_lib.book.runner import record_metrics

_ = record_metrics(metrics_file, {
    "profile": profile,
    "weights": settings.weights,
    "max_steps": settings.max_steps,
    "n_test_graphs": len(test_set),
    "n_layers": n_layers,
    "affinity_min": float(affinities.min()),
    "query_reference_share_first_layer": float(query_share[0]),
    "query_reference_share_last_layer": float(query_share[-1]),
    "test_srcc_retrieved": float(srcc(pred, mos)),
    "test_srcc_random_mean": float(np.mean([srcc(p, mos) for p in random_pred])),
    "mean_abs_prediction_shift_random": float(shift),
})
