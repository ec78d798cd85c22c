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
# # CDCM-Net 1 · Images, their comments, and how comments become features
#
# > CDCM-Net learns from photos *with* comments and must score photos *without* them: here is the data of both kinds.
#
# **What is reproduced.** The input side of CDCM-Net (spec `cdcm.md` §1): frozen image tokens (CLS + patches),
# comments split into sentences on `[.?!]` with a strip class, one text feature per sentence, zero-padded or
# truncated to one row per visual token, with a mask. Both the intended strip class (default) and the released
# script's mis-escaped one (`variant="as_published"`) are shown.
#
# **Known deviations.** `smoke` uses EfficientNet-Lite0 feature-map tokens (global mean + 4×4 cells = 17
# tokens of 1280-d at 128 px) and MiniLM sentence features (384-d) instead of CLIP ViT-B/32 (50 tokens × 512)
# and CLIP's text tower; `profile="full"` switches to CLIP, with CLIP's own preprocessing (shorter side to 224,
# centre crop; smoke squashes to 128 px). The AVA ≥ 5-sentence filter is applied only in `full`, to the real
# photos' splits (`chapter_data` → `with_min_sentences`; the embedded sample has fewer sentences). CLIP's text
# tokenizer truncates at 77 tokens where the released script drops such images.
#
# **Full profile and its rehearsal.** `profile="full"` reads AVA through the data check's manifest (`manifest`,
# official test list, 5 % of the rest as val) and takes each photo's comments from the shipped DPC critiques by AVA
# id (`comments_file` for another corpus in the same layout). The rehearsal (`max_steps=2, weights="random"`: both
# CLIP ViT-B/32 towers built by name with random init, QuickGELU as OpenAI's) runs it on the miniature AVA copy with
# `n_synthetic=64`, `n_dpc=16` (the CLIP text tower encodes every sentence of every critique: minutes on 2 cores
# for more) and `min_sentences=0`: the mini copy's photos have one or two critiques, so the paper's >= 5-sentence
# filter would empty every split.

# %% tags=["parameters"]
profile = "smoke"
n_dpc = 400
seed = 0
data_root = ""
max_steps = 0  # > 0: a rehearsal, at most this many optimiser steps per training stage
weights = "pretrained"  # "random": the CLIP encoders built by name with random init
manifest = ""  # full: runs/data/ava_manifest.csv, written by `python -m iaa_lib data check`
n_synthetic = 600  # synthetic images
min_sentences = 0  # full: 5, the released AVA filter on the real photos' comment sentences
metrics_file = "runs/cdcm/01_data.json"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import torch

from iaa_lib.blocks.text import comment_sentences, split_sentences
from iaa_lib.cdcm.chapter import PROFILES, load_chapter
from iaa_lib.data.labels import read_ava_votes
from iaa_lib.data.sample import load_dpc_comments
from iaa_lib.paths import resolve
from iaa_lib.viz import image_grid, mark_random_weights

settings = PROFILES.resolve(profile, globals())
mark_random_weights(settings.weights)
chapter = load_chapter(settings)
syn, real = chapter.data.synthetic, chapter.data.real
print(real["encoders"])

# %% [markdown]
# ## Synthetic photos with per-attribute comments
# Each synthetic image comes with four short critiques (colour and light, composition, focus, overall) that
# describe the factors its score is made of. Every image has comments, so the memory always has a target.

# %%
frame = syn["frame"]
image_grid([frame.path[i] for i in range(4)], titles=[f"mos {frame.mos[i]:.2f}" for i in range(4)])
plt.show()
for i in range(2):
    print(frame.image_id[i], frame.comments[i])

# %% [markdown]
# ## Sentence splitting: intended vs as published
# The released AVA script deletes a character class from every sentence. Its class is mis-escaped: it deletes
# 0 and 4–9 and every capital S, keeps 1, 2, 3 and the backslash, and keeps whitespace-only pieces as sentences.

# %%
example = "Shot at 1/250s, ISO 400. Sharp! Is the horizon level? See 3 things. "
pd.DataFrame({"textbook": pd.Series(split_sentences(example, "textbook")),
              "as_published": pd.Series(split_sentences(example, "as_published"))})

# %% [markdown]
# ## From sentences to the padded feature block
# Sentence *i* of an image is paired with visual token *i* (CLS first, then patches in raster order), so the
# sentence features are zero-padded or truncated to as many rows as there are visual tokens; the mask marks the
# real rows.

# %%
print("visual tokens", tuple(syn["tokens"].shape), " comment rows", tuple(syn["comments"].shape),
      " distinct sentences encoded (cached):", len(syn["cache"].rows))
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].imshow(syn["comments"][0].numpy(), aspect="auto", cmap="coolwarm")
axes[0].set(title=f"comment features of {frame.image_id[0]}", xlabel="feature", ylabel="row (sentence)")
axes[1].imshow(syn["mask"][:40].numpy(), aspect="auto", cmap="Greys")
axes[1].set(title="mask (black = real sentence), 40 images", xlabel="row", ylabel="image")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Real photos: the embedded AVA sample
# 16 of the 77 photos have real DPChallenge comments; the others get all-zero rows and an all-False mask.

# %%
counts = real["mask"].sum(1).numpy()
print(f"{int((counts > 0).sum())} of {len(counts)} sample photos have comments; sentences per commented photo: "
      f"median {np.median(counts[counts > 0]):.0f}, max {counts.max()}")
with_comments = [i for i, c in enumerate(counts) if c > 0][:3]
image_grid([real["frame"].path[i] for i in with_comments], titles=[f"mos {real['frame'].mos[i]:.2f}" for i in with_comments])
plt.show()
for i in with_comments:
    print(real["frame"].image_id[i], real["sentences"][i][:3])

# %% [markdown]
# ## Do comment features carry the score? A text-only check on real DPC critiques
# The memory only helps if comment features predict aesthetics. A ridge regression from the mean sentence
# feature of a DPC-Captions critique to its AVA mean score (labels joined by id) answers that on real text.
# Ids in the sample's test split are removed first (no text pretraining on test images).

# %%
dpc = load_dpc_comments()
votes = read_ava_votes(resolve("data/labels/ava_votes.csv.gz")).set_index("image_id")
test_ids = set(chapter.data.real_splits["test"])
ids = [i for i in dpc if i in votes.index and i not in test_ids]
rng = np.random.default_rng(settings.seed)
ids = list(rng.choice(ids, size=min(settings.n_dpc, len(ids)), replace=False))
def mean_feature(image_id):
    sentences = comment_sentences(dpc[image_id]) or [" ".join(dpc[image_id])]
    return real["cache"].features(sentences).mean(0)
features = torch.stack([mean_feature(i) for i in ids]).numpy()
scores = votes.loc[ids, "mos"].to_numpy()
half = len(ids) // 2
from sklearn.linear_model import Ridge
ridge = Ridge(alpha=1.0).fit(features[:half], scores[:half])
text_srcc = scipy.stats.spearmanr(ridge.predict(features[half:]), scores[half:])[0]
print(f"text-only ridge on {half} DPC critiques -> held-out SRCC {text_srcc:.3f} on {len(ids) - half} critiques")

# %%
from iaa_lib.book.runner import record_metrics
record_metrics(metrics_file, {
    "profile": settings.profile, "n_synthetic": len(frame), "n_visual_tokens": int(syn["tokens"].shape[1]),
    "visual_dim": int(syn["tokens"].shape[2]), "text_dim": int(syn["comments"].shape[2]),
    "synthetic_sentences_per_image": float(syn["mask"].sum(1).float().mean()),
    "sample_images_with_comments": int((counts > 0).sum()), "dpc_text_ridge_srcc": float(text_srcc),
    "dpc_n": len(ids), **chapter.evidence(),
})
