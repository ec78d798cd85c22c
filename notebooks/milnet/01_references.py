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
# # MILNet 1 · Retrieving reference images
#
# > MILNet never scores an image alone: it first looks up the training images that look most like it.
#
# **What is reproduced.** The retrieval step of MILNet (Shi et al., ACM TOMM 2024): pooled CNN features
# of every image, an exact L2 nearest-neighbour search over the *training* images only, training queries
# skipping themselves (the official lists keep ranks 1..100 for training images and 0..99 for test
# images), and the first 4 references kept in rank order. Features are computed once and cached on disk,
# keyed by backbone, weights, transform and image contents.
# **Known deviations.** The official script uses an ImageNet ResNet-50 on full-resolution, unnormalised
# images. The smoke profile uses the offline EfficientNet-Lite0 on small, normalised images (retrieval and
# graph nodes share one feature); `profile = "full"` uses ResNet-50 (normalised, 224 px) for retrieval and
# Inception-ResNet-v2 for the nodes (see chapter 2 for the node features).
# **Rehearsal.** `profile = "full"` with `weights = "random"` and `max_steps = 2` builds those two backbones
# by name with random weights and reads the miniature AVA copy through its `manifest` (every stage runs, every
# figure is stamped): it checks the full path, its numbers are not results. It also passes `n_synthetic = 60`:
# the 300 generated images through both full backbones take minutes on 2 CPU cores, and 60 run the same code.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
run_dir = "runs/milnet"
metrics_file = "runs/milnet/01_references.json"
max_steps = 0
weights = "pretrained"
manifest = ""
n_synthetic = 300
data_root = ""
num_references = 4
metric = "l2"
n_show = 4

# %%
from iaa_lib.milnet.chapter import PROFILES, load_chapter
from iaa_lib.viz import mark_random_weights

settings = PROFILES.resolve(profile, globals())  # the profile's settings; parameters set above win
mark_random_weights(settings.weights)  # weights="random" (a rehearsal): every figure says so
chapter = load_chapter(settings)

# %%
import pandas as pd

from iaa_lib.milnet.model import NODE_FEATURES, RETRIEVAL_FEATURES

k, metric = settings.num_references, settings.metric
pd.DataFrame({"node features": NODE_FEATURES[settings.config],
              "retrieval features": RETRIEVAL_FEATURES[settings.config]}, index=["backbone", "weights"])

# %% [markdown]
# ## Features once, references from the training split
#
# `chapter.synthetic` (`milnet_graph_data`) extracts (or loads from the cache) the features of every image, builds the index on
# the training split and searches it for every image of every split. The synthetic set has a known
# score, a function of sharpness, contrast, colourfulness and subject placement.

# %%
import time

start = time.perf_counter()
syn = chapter.synthetic
syn_seconds = time.perf_counter() - start
print(f"synthetic: {len(syn.frame)} images, features {tuple(syn.node_store.features.shape)} "
      f"(cache {syn.node_store.path.name[:12]}…), {syn_seconds:.1f} s")
{name: len(ids) for name, ids in syn.splits.items()}

# %% [markdown]
# ## The index is exact and never leaks
#
# The search runs in blocks (here deliberately tiny) with a running top-k merge; it must agree with a
# brute-force `torch.cdist` sort. The leak guard refuses an index that contains a validation or test image,
# and checks that every reference of every split is a training image other than the query.

# %%
import torch

from iaa_lib.blocks.retrieval import ReferenceLeakError, assert_references_train_only, build_index

train_ids, test_ids = syn.splits["train"], syn.splits["test"]
train_features = syn.retrieval_store.rows(train_ids)
small_blocks = build_index(train_features, train_ids, metric=metric, query_chunk=7, reference_chunk=33)
found = small_blocks.search(syn.retrieval_store.rows(test_ids), k, query_ids=test_ids)
brute = torch.cdist(syn.retrieval_store.rows(test_ids).double(), train_features.double()).topk(k, largest=False)
agreement = float((found.indices == brute.indices).float().mean())
print(f"blocked search vs brute force: {agreement:.1%} of the {found.indices.numel()} ranks agree")

held_out = syn.splits["val"] + syn.splits["test"]
for name, result in syn.references.items():
    assert_references_train_only(result, train_ids, held_out_ids=held_out)
self_hits = sum(q in refs for q, refs in syn.references["train"].as_dict().items())
print(f"leak guard passed for {sum(len(r) for r in syn.references.values())} queries; training queries "
      f"retrieving themselves: {self_hits}")
try:
    build_index(syn.retrieval_store.rows(train_ids + test_ids[:1]), train_ids + test_ids[:1], forbidden_ids=held_out)
except ReferenceLeakError as error:
    print("ReferenceLeakError:", error)

# %% [markdown]
# ## What the retrieved references look like
#
# Each row: a test query (red frame) and its 4 nearest training images, with their mean opinion score and
# L2 distance. Retrieval uses features only; the labels are shown here, never given to the model.

# %%
import matplotlib.pyplot as plt
import numpy as np

from iaa_lib.milnet.figures import show_references

rng = np.random.default_rng(seed)
shown = list(rng.choice(test_ids, size=min(n_show, len(test_ids)), replace=False))
show_references(syn, shown, split="test")
plt.show()

# %% [markdown]
# Do neighbours share the query's score? The SRCC between each test query's MOS and the mean MOS of its
# 4 references, against the same statistic for 4 random training images.

# %%
from iaa_lib.blocks.retrieval import random_references
from iaa_lib.metrics import srcc


def neighbour_agreement(data, split="test", references=None):
    """SRCC between query MOS and the mean MOS of its references."""
    mos = dict(zip(data.frame["image_id"].astype(str), data.frame["mos"], strict=True))
    refs = (references or data.references[split]).as_dict()
    queries = data.splits[split]
    return srcc([np.mean([mos[r] for r in refs[q]]) for q in queries], [mos[q] for q in queries])


syn_random = random_references(test_ids, train_ids, k, seed=seed)
agreement_table = pd.DataFrame(
    {"retrieved (kNN)": [neighbour_agreement(syn)], "random training images": [neighbour_agreement(syn, references=syn_random)]},
    index=["synthetic test: SRCC(query MOS, mean reference MOS)"],
).round(3)
agreement_table

# %% [markdown]
# ## Official retrieval input vs the book's default
#
# The official script feeds the retrieval CNN full-resolution images scaled to [0, 1] *without* ImageNet
# normalisation (`retrieval_input="as_published"`); the book normalises as the backbone was trained
# (default). On the synthetic set (already at its full 96 px) only the normalisation differs. How many of
# the 4 references change, and does the neighbours' score agreement move?

# %%
syn_published = chapter.graph_data("synthetic", retrieval_input="as_published")
default_refs, published_refs = syn.references["test"].as_dict(), syn_published.references["test"].as_dict()
overlap = np.mean([len(set(default_refs[q]) & set(published_refs[q])) / k for q in test_ids])
input_table = pd.DataFrame({
    "SRCC(query MOS, mean reference MOS)": [neighbour_agreement(syn), neighbour_agreement(syn_published)],
    "shared references with the default": [1.0, overlap],
}, index=["normalised (book default)", "unnormalised, full resolution (as published)"]).round(3)
input_table

# %% [markdown]
# ## The real AVA photographs
#
# The same pipeline on the 77 embedded AVA photos (fixed 46/16/15 split). With only 46 training images
# the "nearest" references are often not very near: the full AVA index holds ~217k training images.

# %%
start = time.perf_counter()
real = chapter.real
real_seconds = time.perf_counter() - start
for result in real.references.values():
    assert_references_train_only(result, real.splits["train"], held_out_ids=real.splits["val"] + real.splits["test"])
print(f"{settings.real_dataset}: features {tuple(real.node_store.features.shape)}, {real_seconds:.1f} s")
show_references(real, real.splits["test"][:n_show], split="test")
plt.show()

# %%
real_random = random_references(real.splits["test"], real.splits["train"], k, seed=seed)
real_agreement = neighbour_agreement(real)
real_random_agreement = neighbour_agreement(real, references=real_random)
print(f"{settings.real_dataset} test ({len(real.splits['test'])} queries): SRCC(query MOS, mean reference MOS) "
      f"retrieved {real_agreement:.3f}, random {real_random_agreement:.3f}")

# %%
from iaa_lib.book.runner import record_metrics

_ = record_metrics(metrics_file, {
    "profile": profile,
    "weights": settings.weights,
    "max_steps": settings.max_steps,
    "k": k,
    "metric": metric,
    "syn_n_images": len(syn.frame),
    "syn_feature_dim": syn.node_store.dim,
    "syn_bruteforce_agreement": agreement,
    "syn_train_self_hits": self_hits,
    "syn_test_neighbour_srcc": float(agreement_table.iloc[0, 0]),
    "syn_test_random_neighbour_srcc": float(agreement_table.iloc[0, 1]),
    "syn_test_neighbour_srcc_as_published_input": float(input_table.iloc[1, 0]),
    "syn_as_published_reference_overlap": float(overlap),
    "real_test_neighbour_srcc": real_agreement,
    "real_test_random_neighbour_srcc": real_random_agreement,
    "real_dataset": settings.real_dataset,
    "real_split_sizes": {name: len(ids) for name, ids in real.splits.items()},
    **{f"real_{kind}_{field}": store.meta.get(meta_key) for kind, store in
       (("node", real.node_store), ("retrieval", real.retrieval_store))
       for field, meta_key in (("backbone", "backbone_name"), ("backbone_weights", "weights"),
                               ("backbone_parameters", "parameters"), ("image_size", "input_size"), ("dim", "dim"))},
    "syn_features_seconds": syn_seconds,
    "real_features_seconds": real_seconds,
})
