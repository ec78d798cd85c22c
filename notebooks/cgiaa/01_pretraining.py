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
# # CG-IAA 1 · Aesthetic vision-language pretraining and attribute-labelled comments
#
# > A CLIP is pulled towards aesthetic critiques by contrastive training, and comment sentences are sorted into
# > colour & light, composition, depth & focus and general feeling.
#
# **What is reproduced.** CG-IAA's first stage (VLAP): both towers of a CLIP trained with a symmetric InfoNCE,
# cosine similarity, τ = 0.07, on (image, comment) pairs. The recipe (AdamW, eps 1e-3, weight decay 0.01, lr halved
# at fixed intervals) is **borrowed** from the same group's AesCLIP, since CG-IAA released no VLAP code. Then the
# attribute database behind the four experts: every comment sentence gets one of four attributes.
#
# **Known deviations.**
# - *Smoke profile:* the image tower is the offline ImageNet EfficientNet-Lite0 (not CLIP ViT-B/16), **frozen**,
#   with its features cached; VLAP trains the projection and a small 2-layer text transformer from scratch, at a
#   higher learning rate, for 150 steps on 96-px synthetic images and the 16 embedded real photos with comments.
#   `profile = "full"` starts from OpenAI CLIP ViT-B/16 weights by name and fine-tunes both towers (images
#   squash-resized to 224 px without AesCLIP's flip/random-crop augmentation).
# - *Attribute labels:* CG-IAA's "knowledge transfer" classifier is unreleased. The book uses a keyword lexicon
#   refined by zero-shot similarity with an offline sentence encoder (all-MiniLM-L6-v2), documented in
#   `iaa_lib.cgiaa.attributes`. In smoke mode the DPC critiques are labelled on a random subset.
#
# **Full profile and its rehearsal.** `profile="full"` reads AVA through the data check's manifest (`manifest`) and
# takes each photo's comments from the shipped DPC critiques by AVA id (`comments_file` for another corpus). The
# rehearsal (`max_steps=2, weights="random"`: CLIP ViT-B/16 built by name with random init, QuickGELU as OpenAI's;
# the experts' decoder GPT-2 small's shape, random and frozen, over open_clip's bundled BPE since GPT-2's vocabulary
# files are not shipped) runs it on the miniature AVA copy with `dpc_critiques=64`.

# %% tags=["parameters"]
profile = "smoke"
vlap_steps = 150
dpc_critiques = 150
zero_shot_labels = True  # refine the lexicon's unsure labels with MiniLM
seed = 0
data_root = None
max_steps = 0  # > 0: a rehearsal, at most this many optimiser steps per training stage
weights = "pretrained"  # "random": CLIP ViT-B/16 and the GPT-2-size decoder built by name with random init
manifest = ""  # full: runs/data/ava_manifest.csv, written by `python -m iaa_lib data check`
metrics_file = "runs/cgiaa/01_pretraining.json"

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from iaa_lib.cgiaa.attributes import ATTRIBUTES, AttributeSplitter, attribute_counts, label_comments
from iaa_lib.cgiaa.chapter import PROFILES, RUN_DIR, chapter_catalogue, config_evidence, main_source, start
from iaa_lib.cgiaa.pipeline import (catalogue_sentences, embed_texts, first_last_mean, image_embeddings,
                                    retrieval_hits, vlap_stage)
from iaa_lib.data.sample import load_dpc_comments
from iaa_lib.paths import resolve
from iaa_lib.viz import mark_random_weights

settings = PROFILES.resolve(profile, globals())
mark_random_weights(settings.weights)
start(settings, gpt2=False)
started = time.perf_counter()
run_path = resolve(RUN_DIR)

# %% [markdown]
# ## The images and their comments
#
# Synthetic images have one templated comment per attribute (their true attribute is known); the real AVA
# photos come with real DPChallenge comments for 16 of the 77.

# %%
catalogue = chapter_catalogue(settings)
print(catalogue.groupby(["source", "split"]).size().unstack(fill_value=0))
catalogue.loc[[0, len(catalogue) - 1], ["image_id", "source", "mos", "comments"]]

# %% [markdown]
# ## VLAP: contrastive image–comment training
#
# Loss: $L = \mathrm{NCE}(i \to t) + \mathrm{NCE}(t \to i)$ with cosine logits divided by τ = 0.07. Templated
# comments repeat across images, so identical comment strings in a batch count as extra positives (the target
# is spread uniformly over them) instead of being pushed apart.

# %%
clip, features, vlap_history = vlap_stage(settings.model_config(), catalogue, run_path, settings.vlap_schedule(),
                                          settings.train_image_tower)
first_loss, last_loss = first_last_mean(vlap_history["loss"])
chance_loss = float(2 * np.log(settings.vlap_batch))
print(f"visual features {tuple(features.shape)}; InfoNCE {first_loss:.3f} -> {last_loss:.3f} "
      f"(chance for a batch of {settings.vlap_batch}: {chance_loss:.3f})")

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(vlap_history["loss"], lw=1)
ax.axhline(chance_loss, ls="--", c="grey", label="2 log B (random embeddings)")
ax.set(xlabel="step", ylabel="symmetric InfoNCE", title="VLAP training loss")
ax.legend()
plt.show()

# %% [markdown]
# ## Retrieval on held-out synthetic images
#
# For each test image the text tower ranks the pool of all test comments; a hit is a retrieved comment that
# is literally one of the image's own four comments. Chance = the share of the pool that is the image's own.
# (Without a synthetic set, the full profile, the same check runs on the real test photos that have comments.)

# %%
test = catalogue[(catalogue["source"] == main_source(settings)) & (catalogue["split"] == "test")
                 & catalogue["comments"].map(bool)]
test_sentences = catalogue_sentences(test, ("test",))
pool = sorted(test_sentences["text"].unique())
pool_emb = embed_texts(clip, pool)
test_emb = image_embeddings(clip, features[torch.tensor(test.index.to_numpy())])
own = [set(test_sentences.loc[test_sentences["image_index"] == i, "text"]) for i in test.index]
recall = {k: retrieval_hits(test_emb, pool_emb, pool, own, min(k, len(pool))) for k in (1, 5)}
chance = float(np.mean([1 - np.prod([1 - len(o) / (len(pool) - j) for j in range(min(5, len(pool)))]) for o in own]))
print(f"{len(test)} test images, pool of {len(pool)} distinct comments: hit@1 = {recall[1]:.2f} "
      f"(chance {np.mean([len(o) / len(pool) for o in own]):.2f}), hit@5 = {recall[5]:.2f} (chance {chance:.2f})")

# %%
from iaa_lib.data.images import load_rgb

shown = test.index[:3]
top = (test_emb[:3] @ pool_emb.t()).topk(min(3, len(pool)), dim=1).indices
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, index, row in zip(axes, shown, top.tolist()):
    ax.imshow(load_rgb(catalogue.loc[index, "path"]))
    ax.set_axis_off()
    lines = [("✓ " if pool[j] in own[list(test.index).index(index)] else "✗ ") + pool[j] for j in row]
    ax.set_title("\n".join(lines), fontsize=7, loc="left")
fig.suptitle("VLAP image → comment retrieval (top 3; ✓ = one of the image's own comments)", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Attribute-labelled comments
#
# `iaa_lib.cgiaa.attributes`: a whole-word keyword lexicon decides when exactly one attribute has the most hits;
# otherwise (ties, or no keyword at all) the sentence is embedded with an offline sentence encoder and compared with
# short descriptions of each attribute: a hit-less sentence leaves "general" only if a specific attribute is clearly
# more similar. On the synthetic comments the true attribute is known, so the lexicon is checked against it.

# %%
encoder = None
if zero_shot_labels:
    from iaa_lib.blocks.backbones import create_text_encoder

    minilm = create_text_encoder("minilm")
    encoder = lambda texts: minilm.encode(list(texts), batch_size=128)  # noqa: E731
splitter = AttributeSplitter(encoder=encoder)
synthetic_sentences = catalogue_sentences(catalogue[catalogue["source"] == "synthetic"], ("train", "val", "test"))
synthetic_labels = AttributeSplitter().classify(list(synthetic_sentences["text"]))  # lexicon only
synthetic_accuracy = float(np.mean([a.attribute == t for a, t in
                                    zip(synthetic_labels, synthetic_sentences["true_attribute"])])) \
    if len(synthetic_sentences) else float("nan")
print(f"lexicon agreement with the synthetic comments' true attribute: {synthetic_accuracy:.3f} "
      f"on {len(synthetic_sentences)} sentences")

# %%
real_comments = {r.image_id: r.comments for r in catalogue[catalogue["source"] != "synthetic"].itertuples()
                 if r.comments}
dpc = load_dpc_comments()
real_ids = set(catalogue.loc[catalogue["source"] != "synthetic", "image_id"])
dpc = {k: v for k, v in dpc.items() if k not in real_ids}  # no critique of a book photo leaks into its labels
dpc_keys = sorted(dpc)
if settings.dpc_critiques:
    dpc_keys = list(np.random.default_rng(settings.seed).choice(dpc_keys, replace=False,
                                                                size=min(settings.dpc_critiques, len(dpc_keys))))
real_labels = label_comments(real_comments, splitter)
dpc_labels = label_comments({k: dpc[k] for k in dpc_keys}, splitter)
counts = pd.concat({"real AVA comments (16 photos)": attribute_counts(real_labels)["total"],
                    f"DPC critiques ({len(dpc_keys):,} of {len(dpc):,})": attribute_counts(dpc_labels)["total"],
                    "synthetic (lexicon)": pd.Series([a.attribute for a in synthetic_labels]).value_counts()
                    .reindex(ATTRIBUTES, fill_value=0)}, axis=1)
counts

# %%
attribute_counts(dpc_labels)

# %%
for attribute in ATTRIBUTES:
    examples = dpc_labels[dpc_labels["attribute"] == attribute].head(2)
    for row in examples.itertuples():
        print(f"[{attribute:16s} via {row.method:9s}] {row.sentence[:110]}")

# %%
elapsed = time.perf_counter() - started
metrics = {
    "profile": settings.profile, "vlap_loss_first": first_loss, "vlap_loss_last": last_loss,
    "vlap_chance_loss": chance_loss, "retrieval_hit1": recall[1], "retrieval_hit5": recall[5],
    "retrieval_hit5_chance": chance, "n_test_images": len(test),
    **({"lexicon_synthetic_accuracy": synthetic_accuracy} if len(synthetic_sentences) else {}),
    "n_dpc_critiques_labelled": len(dpc_keys), "n_dpc_sentences": len(dpc_labels),
    **{f"dpc_{a}": int((dpc_labels["attribute"] == a).sum()) for a in ATTRIBUTES},
    **{f"real_{a}": int((real_labels["attribute"] == a).sum()) for a in ATTRIBUTES},
    "vlap_steps_run": len(vlap_history["loss"]), "seconds": elapsed, **config_evidence(settings, clip),
}
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, metrics)
metrics
