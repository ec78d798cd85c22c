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
# # SSMR 1 · References: semantic, style and fused neighbours
#
# > SSMR scores an artwork against training images that resemble it in *what* it shows and *how* it is painted; this notebook builds that reference index.
#
# **What is reproduced.** SRIG, SSMR's "Similar Reference Index Generation" (Shi et al., Neurocomputing 2024):
# a semantic descriptor, a style descriptor, one fused ranking, the 4 nearest *training* images per query
# (training queries exclude themselves). **Known deviations — all [design], the paper states none of them and
# the released code has no style feature at all:** the style descriptor is Gram matrices of early
# EfficientNet-Lite0 layers (Gatys et al.), the semantic descriptor is the same network's pooled feature
# (`full`: Swin-V2-B, 1024-d), the fusion is d = α·ẑ_sem + (1 − α)·ẑ_style with each distance z-normalised
# over random training pairs, α = 0.5. The authors' own BAID index files are only loadable (`load_shipped_index`).
#
# **Data.** BAID's artworks are not shipped. To *demonstrate the pipeline* we re-render the 77 embedded AVA
# photographs in five styles with classical image operations (photo, posterise, pencil sketch, oil-paint-like,
# colour grade). This set only demonstrates how semantic and style retrieval differ; it is not an
# artistic-aesthetics dataset, and its scores (the source photo's real AVA mean) say nothing about the renderings.
#
# **Rehearsal.** `profile = "full"` reads BAID through the data check's manifest. No BAID image ships with the book
# and a miniature BAID cannot be built from embedded files (its images are artworks with BAID's own scores), so the
# rehearsal (`weights = "random"`, `max_steps = 2`) runs the full profile on the miniature *AVA* copy's manifest
# (AVA is one of the paper's datasets): Swin-V2-B and the style CNN built by name with random weights, every stage
# run, every figure stamped. It checks the full path; its numbers are not results.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
run_dir = "runs/ssmr"
metrics_file = "runs/ssmr/01_references.json"
max_steps = 0
weights = "pretrained"
manifest = ""
data_root = ""
backbone_name = "timm:tf_efficientnet_lite0"
image_size = 112
alpha = 0.5
n_queries = 3

# %%
from iaa_lib.ssmr.chapter import PROFILES, load_chapter
from iaa_lib.viz import mark_random_weights

settings = PROFILES.resolve(profile, globals())  # the profile's settings; parameters set above win
mark_random_weights(settings.weights)  # weights="random" (a rehearsal): every figure says so
chapter = load_chapter(settings)

# %% [markdown]
# ## The style-varied demo set
#
# Every photograph appears in five renderings, and its source photo's split (the sample's fixed
# 46 / 16 / 15 split) decides where all five go, so no photo is both a training reference and a test query.
# (`chapter.art` reads BAID's official split instead when `data_root` or a BAID `manifest` is set, as in
# `profile = "full"`.) `chapter.art` also extracts the
# features described in the next section.

# %%
setup = chapter.art
frame, splits = setup.frame, setup.splits
demo = chapter.art_name == "stylized"
print({name: len(ids) for name, ids in splits.items()}, "images")

# %%
import matplotlib.pyplot as plt

from iaa_lib.data.images import load_rgb

if demo:
    example = frame[frame["content_id"] == frame["content_id"].iloc[5 * 7]]
    fig, axes = plt.subplots(1, len(example), figsize=(2.2 * len(example), 2.2))
    for ax, row in zip(axes, example.itertuples()):
        ax.imshow(load_rgb(row.path))
        ax.set_title(row.style, fontsize=9)
        ax.axis("off")
    plt.show()

# %% [markdown]
# ## Semantic and style features, one pass
#
# `extract_semantic_and_style` runs the frozen backbone once per image: the pooled output is the semantic
# vector, forward hooks on the stem and stages 1–3 give the feature maps whose Gram matrices
# G = F Fᵀ / (C·H·W) (upper triangle, L2-normalised per layer, concatenated) form the style vector.
# Both are cached on disk; the indices hold training images only. (`settings.features()` names the backbones;
# with `style_backbone_name` set, e.g. a CNN beside a Swin, the Gram matrices come from that one instead.)

# %%
print(settings.features())
print(f"semantic {tuple(setup.semantic.features.shape)}, style {tuple(setup.style.features.shape)}; "
      f"index: {len(setup.semantic_index)} training images")

# %% [markdown]
# ## The same queries, three rankings
#
# For a few test queries, the 4 nearest training images by semantic distance only (α = 1), by style
# distance only (α = 0) and by the fused distance (α = 0.5). Titles give the rendering style and the
# distance (fused distances are in z-units, so they can be negative); on BAID the titles give the score.

# %%
import numpy as np

alpha, num_references = settings.alpha, settings.num_references
rng = np.random.default_rng(seed)
test_ids = setup.splits["test"]
query_ids = [test_ids[i] for i in rng.choice(len(test_ids), size=n_queries, replace=False)]
style_of = dict(zip(frame["image_id"], frame["style"] if demo else frame["mos"].map("{:.1f}".format)))
path_of = dict(zip(frame["image_id"], frame["path"]))
found = {name: setup.search(query_ids, alpha=a, k=num_references)
         for name, a in (("semantic", 1.0), ("style", 0.0), (f"fused α={alpha}", alpha))}

# %%
for q, query in enumerate(query_ids):
    fig, axes = plt.subplots(len(found), num_references + 1, figsize=(1.9 * (num_references + 1), 2.0 * len(found)))
    for r, (name, result) in enumerate(found.items()):
        axes[r, 0].imshow(load_rgb(path_of[query]))
        axes[r, 0].set_title(f"query ({style_of[query]})", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=9)
        for j, ref in enumerate(result.ref_ids[q]):
            axes[r, j + 1].imshow(load_rgb(path_of[ref]))
            axes[r, j + 1].set_title(f"{style_of[ref]}  {result.distances[q, j]:.2f}", fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"query {query}: semantic / style / fused neighbours", fontsize=10)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## How often do the references share the query's style?
#
# Over all test queries (whose photo is never in the index) the share of references in the query's
# rendering style (chance: 1/5), and over training queries the share that are another rendering of the
# *same photo*. Those renderings share the query's score, and a test query never gets one: the index
# therefore excludes a query's whole source group (its photo), not only its id, so training and test
# queries get references of the same kind; the "same photo" column checks it (it must read 0).

# %%
import pandas as pd

from iaa_lib.ssmr.srig import same_label_rate

train_ids = setup.splits["train"]
content_of = dict(zip(frame["image_id"], frame["content_id"] if demo else frame["image_id"]))
rows = []
for a in (1.0, 0.75, alpha, 0.25, 0.0):
    on_test, on_train = setup.search(test_ids, a, num_references), setup.search(train_ids, a, num_references)
    rows.append({"alpha (semantic weight)": a, "test: same style": same_label_rate(on_test, style_of),
                 "train: same photo": same_label_rate(on_train, content_of),
                 "train: same style": same_label_rate(on_train, style_of)})
rates = pd.DataFrame(rows).drop_duplicates("alpha (semantic weight)").set_index("alpha (semantic weight)")
rates.round(3)

# %% [markdown]
# ## The style embedding
#
# t-SNE of the Gram style vectors (after PCA to 30 dimensions), coloured by rendering style (by score on
# BAID): the renderings cluster by style although every cluster holds all 77 photographs.

# %%
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from iaa_lib.ssmr.stylize import STYLE_NAMES

pca = PCA(n_components=30, random_state=seed).fit_transform(setup.style.rows(frame["image_id"]).numpy())
embedding = TSNE(n_components=2, perplexity=30, init="pca", random_state=seed).fit_transform(pca)
fig, ax = plt.subplots(figsize=(5.5, 4.5))
if demo:
    for style in STYLE_NAMES:
        mask = (frame["style"] == style).to_numpy()
        ax.scatter(embedding[mask, 0], embedding[mask, 1], s=10, label=style)
    ax.legend(fontsize=8, markerscale=2)
else:
    fig.colorbar(ax.scatter(embedding[:, 0], embedding[:, 1], s=4, c=frame["mos"], cmap="viridis"), label=f"{chapter.art_name} score")
ax.set_title("Gram style vectors, t-SNE")
ax.set_xticks([])
ax.set_yticks([])
plt.show()

# %%
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, {
    "profile": profile, "weights": settings.weights, "max_steps": settings.max_steps, "config": settings.config,
    "n_images": len(frame), "n_train": len(train_ids), "n_test": len(test_ids),
    "semantic_dim": setup.semantic.dim, "style_dim": setup.style.dim,
    "test_same_style_semantic": float(rates.loc[1.0, "test: same style"]),
    "test_same_style_style": float(rates.loc[0.0, "test: same style"]),
    "test_same_style_fused": float(rates.loc[alpha, "test: same style"]),
    "train_same_photo_semantic": float(rates.loc[1.0, "train: same photo"]),
    "train_same_photo_style": float(rates.loc[0.0, "train: same photo"]),
    "art_set": chapter.art_name,
    "semantic_backbone": settings.backbone_name, "style_backbone": settings.style_backbone_name or settings.backbone_name,
    "semantic_backbone_parameters": setup.semantic.meta.get("parameters"),
    "style_backbone_parameters": setup.style.meta.get("parameters"),
    "image_size": settings.image_size, "k": settings.num_references,
    "seconds": chapter.seconds(),
})
