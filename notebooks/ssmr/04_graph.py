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
# # SSMR 4 · The reference graphs and their learned edges
#
# > Each query is scored together with its four references; here are the edge weights the trained graph actually uses.
#
# **What is reproduced.** The graph of SSMR's MRGR module: nodes = [query, ref 1..4] in retrieval order; every
# Rs-GCN layer aggregates the nodes with a per-sample 5×5 matrix. In the textbook variant (notebook 02) that
# matrix is A_l = R_l + α_l·P: P is the fused semantic/style similarity of the nodes (the edges' initial
# weights), R_l = θᵀφ / 5 the adjustment the network learns, α_l a learned per-layer trust in P.
# **Known deviations.** The smoke head has 2 layers (the paper: 6) and is trained on the style-varied demo set,
# whose scores are the source photos' AVA means: the pictures show *how* the graph weighs references, not
# aesthetic judgements of artworks.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
run_dir = "runs/ssmr"
metrics_file = "runs/ssmr/04_graph.json"
max_steps = 0
weights = "pretrained"
manifest = ""
data_root = ""
n_queries = 2

# %%
from iaa_lib.ssmr.chapter import PROFILES, load_chapter
from iaa_lib.viz import mark_random_weights

settings = PROFILES.resolve(profile, globals())  # the profile's settings; parameters set above win
mark_random_weights(settings.weights)  # weights="random" (a rehearsal): every figure says so
chapter = load_chapter(settings)

# %% [markdown]
# ## The trained model of notebook 02
#
# Same parameters, same cached features and references, so `fit_or_load` loads notebook 02's checkpoint
# (it trains only if that notebook has not run).

# %%
import numpy as np

run = chapter.train("art")
frame = chapter.art.frame
model = run.model.eval()
prior_weights = model.head.prior_weight.detach().numpy()
print("learned trust in the similarity prior, per layer (α_l, initialised at 1):", np.round(prior_weights, 3))

# %%
import torch
from torch.utils.data import DataLoader

test_set = run.datasets["test"]
batch = next(iter(DataLoader(test_set, batch_size=len(test_set))))
with torch.no_grad():
    out = model(batch["nodes"], batch["prior"])
affinities = out["affinities"].numpy()  # (Q, layers, 5, 5): the matrices used to aggregate
priors = batch["prior"].numpy()
learned = affinities - prior_weights[None, :, None, None] * priors[:, None]  # R_l, the network's adjustment
print(f"{len(test_set)} test graphs, {affinities.shape[1]} layers, {affinities.shape[2]} nodes")

# %% [markdown]
# ## Edge weights over thumbnails
#
# Left: the reference graph of one test query after the last layer; the numbers give the symmetrised edge
# weight (A_ij + A_ji)/2 and line width ranks it from this graph's weakest to its strongest edge; thumbnails are the nodes (q = query, 1–4 = references by rank).
# Right: the initial similarity P and every layer's aggregation matrix A_l (row i = how node i gathers from
# the others).

# %% tags=["figure:ssmr_reference_graph"]
import matplotlib.pyplot as plt
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from iaa_lib.data.images import load_rgb

style_of = dict(zip(frame["image_id"], frame["style"] if "style" in frame else frame["mos"].map("{:.1f}".format)))
path_of = dict(zip(frame["image_id"], frame["path"]))
n_nodes = settings.num_references + 1
angles = np.pi / 2 - 2 * np.pi * np.arange(n_nodes) / n_nodes
positions = np.stack([np.cos(angles), np.sin(angles)], axis=1)


def draw_graph(ax, node_ids, weights):
    """Nodes as thumbnails on a circle, edges with width proportional to the symmetrised weight."""
    symmetric = (weights + weights.T) / 2
    edges = symmetric[~np.eye(len(node_ids), dtype=bool)]
    low, span = edges.min(), max(edges.max() - edges.min(), 1e-8)
    for i in range(len(node_ids)):
        for j in range(i + 1, len(node_ids)):
            w = (symmetric[i, j] - low) / span  # 0 = weakest edge of this graph, 1 = strongest
            ax.plot(*positions[[i, j]].T, color="C3" if i == 0 else "C0", lw=0.5 + 5 * max(w, 0), alpha=0.3 + 0.6 * max(w, 0))
            ax.text(*(positions[i] * 0.55 + positions[j] * 0.45), f"{symmetric[i, j]:.2f}", fontsize=7, ha="center")
    for n, image_id in enumerate(node_ids):
        thumb = load_rgb(path_of[image_id])
        thumb.thumbnail((72, 72))
        ax.add_artist(AnnotationBbox(OffsetImage(np.asarray(thumb), zoom=0.75), positions[n], frameon=True, pad=0.1))
        ax.text(*(positions[n] * 1.32), ("q " if n == 0 else f"{n} ") + style_of[image_id], fontsize=8, ha="center")
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-1.6, 1.6)
    ax.axis("off")


rng = np.random.default_rng(seed)
for q in rng.choice(len(test_set), size=n_queries, replace=False):
    node_ids = test_set.node_ids[q]
    layers = affinities.shape[1]
    fig = plt.figure(figsize=(4.2 + 2.4 * (layers + 1), 4.2))
    draw_graph(fig.add_axes([0.0, 0.0, 4.2 / (4.2 + 2.4 * (layers + 1)), 1.0]), node_ids, affinities[q, -1])
    matrices = [("initial P", priors[q])] + [(f"layer {layer + 1}: A", affinities[q, layer]) for layer in range(layers)]
    for m, (title, matrix) in enumerate(matrices):
        left = (4.2 + 2.4 * m + 0.35) / (4.2 + 2.4 * (layers + 1))
        ax = fig.add_axes([left, 0.2, 1.9 / (4.2 + 2.4 * (layers + 1)), 0.6])
        image = ax.imshow(matrix, cmap="viridis")
        ax.set_xticks(range(len(node_ids)), ["q", *map(str, range(1, len(node_ids)))])
        ax.set_yticks(range(len(node_ids)), ["q", *map(str, range(1, len(node_ids)))])
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"query {node_ids[0]} (true score {float(batch['mos'][q]):.2f}, predicted {float(out['pred'][q]):.2f})", fontsize=10)
    plt.show()

# %% [markdown]
# ## Over all test graphs
#
# How much of the query's aggregation comes from its references (row 0 of A without the self-edge),
# and how far the learned part R_l follows the similarity prior (Pearson r over the off-diagonal entries).

# %%
import pandas as pd

off_diagonal = ~np.eye(affinities.shape[2], dtype=bool)
summary = pd.DataFrame([
    {"layer": layer + 1, "α_l (trust in P)": prior_weights[layer],
     "query weight on references": float(np.mean(affinities[:, layer, 0, 1:].sum(1) / affinities[:, layer, 0, :].sum(1))),
     "corr(R_l, P)": float(np.corrcoef(learned[:, layer][:, off_diagonal].ravel(), priors[:, off_diagonal].ravel())[0, 1])}
    for layer in range(affinities.shape[1])
]).set_index("layer")
summary.round(3)

# %%
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, {
    "profile": profile, "weights": settings.weights, "max_steps": settings.max_steps, "config": settings.config,
    **{f"prior_weight_layer{layer + 1}": float(w) for layer, w in enumerate(prior_weights)},
    **{f"query_weight_on_refs_layer{layer}": float(v) for layer, v in summary["query weight on references"].items()},
    "n_test_graphs": len(test_set),
    "seconds": chapter.seconds(),
})
