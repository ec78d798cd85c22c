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
# # Foundations 1 · The data: AVA votes, the embedded sample, splits and the leak guard
#
# > What an aesthetic label is, what the datasets look like, and how the book keeps test images out of training.
#
# **What is shown.** All 255,502 real AVA vote histograms (labels only), the 77 real AVA photographs
# embedded in the repository, the label files of TAD66K, BAID and AADB, the fixed split of the sample
# and the leak guard, and the synthetic set used to prove that models learn.
# **Known deviations.** The AVA images themselves (about 32 GB) are not shipped: only 77 of them.
# Set `data_root` to a folder of AVA images named `<image_id>.jpg` to browse a full copy.

# %% tags=["parameters"]
ava_votes_file = "data/labels/ava_votes.csv.gz"
data_root = ""
n_show = 12
seed = 0
metrics_file = "runs/00_foundations/01_data.json"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from iaa_lib.data.labelled_sets import cached_synthetic
from iaa_lib.data.labels import DIST_COLUMNS, read_aadb, read_ava_votes, read_baid, read_tad66k
from iaa_lib.data.sample import load_ava_sample, sample_splits
from iaa_lib.data.splits import SplitLeakError, apply_split, assert_disjoint, split_counts
from iaa_lib.metrics import binarize
from iaa_lib.paths import resolve
from iaa_lib.viz import image_grid, vote_bars

# %% [markdown]
# ## AVA: a vote histogram per image
#
# Each AVA image was rated by about 200 DPChallenge members on a 1–10 scale. The label is the
# histogram of those votes; the book normalises it to a distribution `dist` and derives the mean
# score `mos`, its spread `std` and the number of votes `n_votes`.

# %%
ava = read_ava_votes(resolve(ava_votes_file))
print(f"{len(ava):,} images")
ava.head()

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
axes[0].hist(ava["mos"], bins=80, color="C0")
axes[0].set(xlabel="mos", ylabel="images", title="mean scores concentrate in 4–7")
axes[1].hist(ava["n_votes"], bins=80, color="C1")
axes[1].set(xlabel="votes per image", title=f"median {ava['n_votes'].median():.0f} votes")
axes[2].hexbin(ava["mos"], ava["std"], gridsize=50, bins="log", cmap="viridis")
axes[2].set(xlabel="mos", ylabel="std", title="spread of the votes vs the mean")
plt.tight_layout()
plt.show()

# %% [markdown]
# Share of images by mean-score band: a model that always predicts 5.4 is already "close" for most
# images, which is why the book reports rank correlations rather than only errors.

# %%
bands = pd.cut(ava["mos"], bins=[1, 3, 4, 5, 6, 7, 10], include_lowest=True)
(bands.value_counts(normalize=True).sort_index() * 100).round(2).rename("% of images").to_frame().T

# %% [markdown]
# ## The binary label depends on a rule
#
# "High quality" means `mos > 5` in EAT and the CG-IAA group but `mos >= 5` in MILNet and CDCM-Net.
# The two rules differ only for images whose mean is exactly 5.0:

# %%
high_gt = binarize(ava["mos"], threshold=5.0, high_if="gt")
high_ge = binarize(ava["mos"], threshold=5.0, high_if="ge")
exactly_five = int((ava["mos"] == 5.0).sum())
pd.DataFrame({"rule": ["mos > 5 (book default)", "mos >= 5 (MILNet, CDCM-Net)"],
              "high images": [int(high_gt.sum()), int(high_ge.sum())],
              "% high": [100 * high_gt.mean(), 100 * high_ge.mean()]}).round(3)

# %%
print(f"{exactly_five} images have a mean of exactly 5.0; a classifier scored with the other rule "
      f"can gain or lose up to {100 * exactly_five / len(ava):.3f} accuracy points on them.")

# %% [markdown]
# ## The embedded sample: 77 real AVA photographs
#
# The repository ships 77 AVA photographs with their true vote histograms (provenance in
# `data/README.md`). Every notebook of the book runs on them by default.

# %%
sample, image_dir = load_ava_sample(data_root or None)
print(f"{len(sample)} images in {image_dir}")
sample[["image_id", "mos", "std", "n_votes"]].describe().round(2)

# %%
rng = np.random.default_rng(seed)
shown = sample.sort_values("mos").iloc[np.linspace(0, len(sample) - 1, n_show).astype(int)]
fig = image_grid([image_dir / f"{i}.jpg" for i in shown["image_id"]],
                 titles=[f"{i}  mos {m:.2f}" for i, m in zip(shown["image_id"], shown["mos"])])
plt.show()

# %% [markdown]
# Their vote histograms, lowest to highest mean score. Two images with similar means can have very
# different spreads: the distribution carries more than the mean.

# %%
fig, axes = plt.subplots(2, n_show // 2, figsize=(2.2 * n_show // 2, 4.4), sharey=True)
for ax, (_, row) in zip(axes.flat, shown.iterrows()):
    vote_bars(ax, row[DIST_COLUMNS].to_numpy(float), title=f"mos {row['mos']:.2f}, std {row['std']:.2f}")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The other datasets: score-only labels on their own scales
#
# TAD66K and BAID give one mean score per image (1–10 and 0–10), AADB an overall score in [0, 1]
# with 11 attribute scores. Only the label files are shipped; their images must be supplied.

# %%
others = {
    "TAD66K train (1–10)": read_tad66k(resolve("data/labels/tad66k_train.csv")),
    "BAID train (0–10)": read_baid(resolve("data/labels/baid_train.csv")),
    "AADB (0–1)": read_aadb(resolve("data/labels/aadb.csv")),
}
fig, axes = plt.subplots(1, 3, figsize=(13, 3))
for ax, (name, frame) in zip(axes, others.items()):
    ax.hist(frame["mos"], bins=60, color="C2")
    ax.set(title=f"{name}: {len(frame):,} images", xlabel="mos")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Splits and the leak guard
#
# The sample has one fixed split (`data/ava_sample/splits.csv`, generated once with seed 0 and kept
# as a file so that it never changes). `assert_disjoint` checks that no id **and no image content**
# appears in two splits.

# %%
splits = sample_splits()
paths = {i: image_dir / f"{i}.jpg" for i in sample["image_id"]}
assert_disjoint(splits, image_paths=paths)
parts = apply_split(sample, splits)
split_counts(splits)

# %%
names = list(splits)
overlap = pd.DataFrame([[len(set(splits[a]) & set(splits[b])) for b in names] for a in names],
                       index=names, columns=names)
fig, ax = plt.subplots(figsize=(3.6, 3))
ax.imshow(overlap.to_numpy(), cmap="Blues")
for (r, c), value in np.ndenumerate(overlap.to_numpy()):
    ax.text(c, r, value, ha="center", va="center")
ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
       title="shared ids between splits")
plt.show()

# %% [markdown]
# The guard also catches the same photograph filed under two ids, a real hazard when datasets are
# merged. Here one test image is planted in the training split under a new id:

# %%
leaky = {name: list(ids) for name, ids in splits.items()}
planted = splits["test"][0]
leaky["train"].append("copy_of_" + planted)
leaky_paths = {**paths, "copy_of_" + planted: paths[planted]}
try:
    assert_disjoint(leaky, image_paths=leaky_paths)
    leak_caught = False
except SplitLeakError as err:
    leak_caught = True
    print("SplitLeakError:", err)

# %% [markdown]
# ## A synthetic set whose score is known
#
# 77 photographs are too few to prove that a model learns. The synthetic generator draws images
# whose score is a known function of sharpness, contrast, colourfulness and subject placement, then
# samples a vote histogram around it and writes a short comment per attribute.

# %%
synthetic = cached_synthetic(48, "runs/00_foundations/synthetic", seed=seed)  # generated once, then read back
shown_syn = synthetic.sort_values("true_score").iloc[np.linspace(0, len(synthetic) - 1, n_show).astype(int)]
fig = image_grid(list(shown_syn["path"]), titles=[f"score {s:.1f}" for s in shown_syn["true_score"]])
plt.show()

# %%
print(shown_syn.iloc[-1]["comments"])

# %%
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, {
    "ava_images": len(ava),
    "ava_mos_mean": float(ava["mos"].mean()),
    "ava_share_4_to_7": float(ava["mos"].between(4, 7).mean()),
    "ava_high_gt": float(high_gt.mean()),
    "ava_high_ge": float(high_ge.mean()),
    "ava_mos_exactly_5": exactly_five,
    "sample_images": len(sample),
    "split_sizes": {name: len(ids) for name, ids in splits.items()},
    "leak_caught": leak_caught,
})
