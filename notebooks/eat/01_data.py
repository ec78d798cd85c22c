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
# # EAT 1 · The data and transforms the paper uses
#
# > AVA vote histograms become 10-bin targets, images are squashed to 224 x 224, and EAT's split is not reproducible.
#
# **What is reproduced.** EAT's AVA pipeline from the official code: vote counts -> distribution $p$,
# mean score $\sum_i i\,p_i$, the binary rule "score $\le 5$ is low", the squash resize to 224 x 224
# with a horizontal flip for training, and the random 90/5/5 split (`clean_split.py`).
# **Known deviations.** The book pins the resize filter to BICUBIC (the official code uses PIL's default,
# which changed from NEAREST to BICUBIC in Pillow 7) and seeds its split. The data shown are the 77
# embedded AVA photographs (`data_root`: another folder in the sample's layout) and the synthetic set.

# %% tags=["parameters"]
squash_size = 224
n_synthetic = 480
synthetic_size = 96
data_root = ""
seed = 0
run_dir = "runs/eat"
metrics_file = "runs/eat/01_data.json"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import train_test_split

from iaa_lib.data.images import load_rgb
from iaa_lib.data.labelled_sets import labelled_set
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.data.sample import load_ava_sample, sample_splits
from iaa_lib.data.splits import random_split
from iaa_lib.data.transforms import eval_transform, train_transform
from iaa_lib.metrics import binarize
from iaa_lib.viz import image_grid, vote_bars

# %% [markdown]
# ## Labels: vote counts to a 10-bin distribution
#
# AVA gives, per photo, the number of votes for each score 1..10. EAT's target is the normalised
# histogram $p$ and the reported score is its mean. The embedded sample keeps real AVA rows.

# %%
sample, image_dir = load_ava_sample(data_root or None)
sample[["image_id", "mos", "std", "n_votes", *DIST_COLUMNS[:3]]].head()

# %%
shown = sample.sort_values("mos").iloc[np.linspace(0, len(sample) - 1, 4).astype(int)]
fig, axes = plt.subplots(2, 4, figsize=(12, 5), gridspec_kw={"height_ratios": [3, 2]})
for column, (_, row) in enumerate(shown.iterrows()):
    axes[0, column].imshow(load_rgb(image_dir / f"{row['image_id']}.jpg"))
    axes[0, column].axis("off")
    axes[0, column].set_title(f"{row['image_id']}  mos {row['mos']:.2f}", fontsize=9)
    vote_bars(axes[1, column], row[DIST_COLUMNS].to_numpy(float))
plt.tight_layout()
plt.show()

# %% [markdown]
# EAT labels a photo "high" when its mean score is above 5 (`score <= 5.00 -> 0`), the same rule as the
# book's default (`high_if="gt"`). On the sample:

# %%
high = binarize(sample["mos"].to_numpy(), threshold=5.0, high_if="gt")
print(f"{len(sample)} photos, mean score {sample['mos'].mean():.2f} (min {sample['mos'].min():.2f}, "
      f"max {sample['mos'].max():.2f}); {high.mean():.0%} are 'high' under EAT's rule")

# %% [markdown]
# ## The transform: a squash to 224 x 224
#
# EAT resizes every photo to a square without cropping, so the aspect ratio is distorted. The official
# code calls PIL's `resize((224, 224))` with the default filter: NEAREST before Pillow 7, BICUBIC since.
# The two differ visibly on fine detail; the book pins BICUBIC (`eval_transform`).

# %%
photo_id = shown.iloc[-1]["image_id"]
photo = load_rgb(image_dir / f"{photo_id}.jpg")
nearest = photo.resize((squash_size, squash_size), Image.NEAREST)
bicubic = photo.resize((squash_size, squash_size), Image.BICUBIC)
difference = np.abs(np.asarray(nearest, float) - np.asarray(bicubic, float))
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
axes[0].imshow(photo)
axes[0].set_title(f"original {photo.width} x {photo.height}", fontsize=9)
axes[1].imshow(nearest)
axes[1].set_title("squash, NEAREST (Pillow < 7)", fontsize=9)
axes[2].imshow(bicubic)
axes[2].set_title("squash, BICUBIC (book)", fontsize=9)
axes[3].imshow(difference.mean(-1), cmap="magma")
axes[3].set_title(f"|difference|, mean {difference.mean():.1f} grey levels", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %%
aspects = []
for image_id in sample["image_id"]:
    with Image.open(image_dir / f"{image_id}.jpg") as image:
        aspects.append(image.width / image.height)
aspects = np.array(aspects)
print(f"aspect ratios in the sample: median {np.median(aspects):.2f}, range {aspects.min():.2f}-{aspects.max():.2f}; "
      f"{np.mean(np.abs(np.log(aspects)) > np.log(1.2)):.0%} of the photos are stretched by more than 20 % by the squash")

# %% [markdown]
# Training adds only a random horizontal flip; testing is the resize and ImageNet normalisation:

# %%
train_tf, eval_tf = train_transform(squash_size), eval_transform(squash_size)
tensor = eval_tf(photo)
print(train_tf)
print("eval tensor:", tuple(tensor.shape), tensor.dtype, f"mean {tensor.mean():.3f}, std {tensor.std():.3f}")

# %% [markdown]
# ## The split: 90 / 5 / 5, without a seed
#
# `clean_split.py` calls scikit-learn's `train_test_split(train_size=0.9)` and splits the rest 50/50,
# with no `random_state`. On AVA's 255,502 usable rows this gives 229,951 / 12,775 / 12,776 images: the
# sizes of the TANet `val.csv`/`test.csv` files that EAT probably reused (so its "test" is not AVA's
# official 19,930-image list). Run twice, the procedure picks different test sets:

# %%
ava_rows = np.arange(255_502)
tests = []
for _ in range(2):
    train, rest = train_test_split(ava_rows, train_size=0.9)
    val, test = train_test_split(rest, train_size=0.5)
    tests.append(set(test.tolist()))
print(f"sizes: {len(train):,} / {len(val):,} / {len(test):,}; two unseeded runs share "
      f"{len(tests[0] & tests[1]) / len(tests[0]):.1%} of their test images")

# %% [markdown]
# The book always seeds its splits. The embedded sample has a fixed split file; the synthetic set is
# split with `random_split(..., seed)`, reproducible run after run:

# %%
splits = sample_splits()
again = random_split(sample["image_id"], (0.6, 0.2, 0.2), seed=seed)
print({name: len(ids) for name, ids in splits.items()},
      "| seeded split reproducible:", again == random_split(sample["image_id"], (0.6, 0.2, 0.2), seed=seed))

# %% [markdown]
# ## The synthetic set
#
# A set where the score is a known function of sharpness, contrast, colourfulness and subject placement:
# the smoke runs of the next notebooks learn on it, so held-out SRCC shows whether the model learns. It is
# generated once into the cache the next notebooks read (`labelled_set`, under `run_dir`).

# %%
synthetic, _, _ = labelled_set("synthetic", run_dir=run_dir, n_synthetic=n_synthetic, synthetic_size=synthetic_size, seed=seed)
order = synthetic.sort_values("true_score").iloc[np.linspace(0, len(synthetic) - 1, 6).astype(int)]
image_grid(order["path"].tolist(), [f"true {t:.1f} / mos {m:.1f}" for t, m in zip(order["true_score"], order["mos"])])
plt.show()

# %%
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, {
    "ava_sample_n": len(sample),
    "ava_sample_mean_mos": float(sample["mos"].mean()),
    "ava_sample_high_fraction": float(high.mean()),
    "nearest_vs_bicubic_mean_abs_diff": float(difference.mean()),
    "eat_split_sizes": [len(train), len(val), len(test)],
    "unseeded_test_overlap": len(tests[0] & tests[1]) / len(tests[0]),
    "synthetic_n": len(synthetic),
    "synthetic_mos_srcc_with_true_score": float(pd.Series(synthetic["mos"]).corr(synthetic["true_score"], method="spearman")),
})
