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
# # CG-IAA 4 · Explaining a score with critiques
#
# > Each photo gets four attribute critiques; removing one at a time shows which critique moves the score, and an
# > attribution map shows which pixels do.
#
# **What is reproduced.** The README's visualisation (the four generated critiques side by side with the predicted
# and ground-truth scores) and the spec's attribute-ablation chart (drop one critique → Δ SRCC), on the
# image + generated critiques head of notebook 3; plus integrated gradients (captum) of the predicted mean score with
# respect to the pixels, the critiques held fixed.
#
# **Known deviations.** *Smoke profile:* synthetic 96-px images, frozen towers, tiny experts (see notebooks 1–3).
# "Dropping" a critique replaces its embedding by the mean training embedding of that attribute (an uninformative
# critique) rather than zeros, which the head never saw.
#
# **Rehearsal.** With `max_steps > 0` every training stage takes at most `max_steps` optimiser steps. The rehearsal
# also passes `max_generate=2` (a beam-5 step of the GPT-2-size decoder over 49,408 ids for every photo costs
# seconds on 2 CPU cores, so 67-token critiques for the whole copy would take many minutes), `expert_batch=8` (at
# 40 captions the four mappers' AdamW state and the decoder's activations come to about 8 GB) and `ig_steps=2` (each step is a ViT-B/16 pass with gradients).

# %% tags=["parameters"]
profile = "smoke"
n_show = 4
critique_protocol = "cross_fitted"
seed = 0
data_root = None
gpt2_path = None
max_steps = 0  # > 0: a rehearsal, at most this many optimiser steps per training stage
weights = "pretrained"  # "random": CLIP ViT-B/16 and the GPT-2-size decoder built by name with random init
manifest = ""  # full: runs/data/ava_manifest.csv, written by `python -m iaa_lib data check`
max_generate = None  # longest generated critique in tokens (None: the config's, 67 in full)
expert_batch = 64  # captions per expert training step (full: 40)
ig_steps = 16
metrics_file = "runs/cgiaa/04_explain.json"

# %%
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from iaa_lib.cgiaa.attributes import ATTRIBUTES
from iaa_lib.cgiaa.chapter import PROFILES, config_evidence, load_chapter, main_source
from iaa_lib.cgiaa.model import ATTRIBUTE_TITLES
from iaa_lib.cgiaa.pipeline import load_image_batch
from iaa_lib.data.images import load_rgb
from iaa_lib.metrics import predicted_mos, srcc
from iaa_lib.viz import mark_random_weights

started = time.perf_counter()
settings = PROFILES.resolve(profile, globals())
mark_random_weights(settings.weights)

# %% [markdown]
# ## Stages 1–3 (loaded from the earlier notebooks)

# %%
chapter = load_chapter(settings)
catalogue, clip, features = chapter.catalogue, chapter.stages.clip, chapter.stages.features
texts, generated = chapter.critiques()  # the settings' critique_protocol (notebook 3)
rows = chapter.split_rows(main_source(settings))
head, _, test_metrics, _ = chapter.map_head("image_generated_critiques", features, generated, rows)
head.eval()
print(f"image + generated critiques head: test SRCC {test_metrics['srcc']:.3f} on {test_metrics['n']} images")

# %% [markdown]
# ## Four critiques per photo, with predicted and true scores

# %%
test_index = torch.tensor(rows["test"])
with torch.no_grad():
    test_pred = predicted_mos(head(features[test_index], generated[test_index])).numpy()
true_mos = catalogue.loc[rows["test"], "mos"].to_numpy()
shown = rows["test"][:n_show]
fig, axes = plt.subplots(1, n_show, figsize=(3.6 * n_show, 4.6))
for ax, index in zip(np.atleast_1d(axes), shown):
    ax.imshow(load_rgb(catalogue.loc[index, "path"]))
    ax.set_axis_off()
    position = rows["test"].index(index)
    lines = [f"{ATTRIBUTE_TITLES[a]}: {t}" for a, t in zip(ATTRIBUTES, texts[index])]
    wrapped = "\n".join(textwrap.fill(line, 46, subsequent_indent="   ") for line in lines)
    ax.set_title(f"predicted {test_pred[position]:.2f} | true {true_mos[position]:.2f}", fontsize=9)
    ax.text(0, -0.04, wrapped, transform=ax.transAxes, va="top", fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Attribute ablation: drop one critique
#
# Each critique in turn is replaced by the mean training embedding of its attribute; Δ SRCC on the test images
# says how much the head relies on it, and |Δ predicted score| per image says which critique moves that image's
# score most.

# %%
train_mean = generated[torch.tensor(rows["train"])].mean(0)  # (4, E)
shifts, delta_srcc = {}, {}
base_srcc = srcc(test_pred, true_mos)
for k, attribute in enumerate(ATTRIBUTES):
    ablated = generated[test_index].clone()
    ablated[:, k] = train_mean[k]
    with torch.no_grad():
        pred = predicted_mos(head(features[test_index], ablated)).numpy()
    delta_srcc[attribute] = srcc(pred, true_mos) - base_srcc
    shifts[attribute] = pred - test_pred
shift_table = pd.DataFrame(shifts, index=catalogue.loc[rows["test"], "image_id"])
most_moving = shift_table.abs().idxmax(axis=1)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
axes[0].bar([ATTRIBUTE_TITLES[a] for a in ATTRIBUTES], [delta_srcc[a] for a in ATTRIBUTES], color="C3")
axes[0].axhline(0, c="k", lw=0.8)
axes[0].set(ylabel="Δ SRCC (test)", title=f"drop one critique (full SRCC {base_srcc:.3f})")
counts = most_moving.value_counts().reindex(ATTRIBUTES, fill_value=0)
axes[1].bar([ATTRIBUTE_TITLES[a] for a in ATTRIBUTES], counts.values, color="C0")
axes[1].set(ylabel="test images", title="critique that moves the score most")
for ax in axes:
    ax.tick_params(axis="x", labelsize=8)
plt.tight_layout()
plt.show()

# %%
shift_table.head(n_show).round(3).assign(moves_most=most_moving.head(n_show))

# %% [markdown]
# ## Which pixels move the score: integrated gradients
#
# Captum's integrated gradients of the predicted mean score with respect to the normalised image, from a black
# image baseline (zeros in pixel space, normalised), with the four critique embeddings held fixed. The map shows
# |attribution| summed over colour channels; the completeness gap (Σ attributions − (f(x) − f(baseline))) says how
# well `ig_steps` approximates the path integral.

# %% tags=["figure:cgiaa_integrated_gradients"]
from captum.attr import IntegratedGradients

from iaa_lib.cgiaa.model import ScoreFromPixels

ig_rows = shown[:2]
images = load_image_batch(list(catalogue.loc[ig_rows, "path"]), clip.image_size, clip.mean, clip.std)
black = ((torch.zeros(1, 3, 1, 1) - torch.tensor(clip.mean).view(1, 3, 1, 1)) / torch.tensor(clip.std).view(1, 3, 1, 1))
fig, axes = plt.subplots(2, len(ig_rows), figsize=(3.6 * len(ig_rows), 7))
gaps = []
for column, (index, image) in enumerate(zip(ig_rows, images)):
    model = ScoreFromPixels(clip, head, generated[index:index + 1]).eval()
    baseline = black.expand_as(image[None])
    attribution, gap = IntegratedGradients(model).attribute(image[None], baselines=baseline, n_steps=settings.ig_steps,
                                                            return_convergence_delta=True)
    gaps.append(abs(float(gap)))
    heat = attribution[0].abs().sum(0).detach().numpy()
    axes[0, column].imshow(load_rgb(catalogue.loc[index, "path"]).resize((clip.image_size,) * 2))
    with torch.no_grad():
        score = float(model(image[None]))
    axes[0, column].set_title(f"{catalogue.loc[index, 'image_id']}: predicted {score:.2f}",
                              fontsize=8)
    axes[1, column].imshow(heat, cmap="magma")
    axes[1, column].set_title(f"|IG| (completeness gap {gaps[-1]:.3f})", fontsize=8)
    for ax in axes[:, column]:
        ax.set_axis_off()
plt.tight_layout()
plt.show()

# %%
elapsed = time.perf_counter() - started
metrics = {"profile": settings.profile, "test_srcc": base_srcc, "n_test": len(rows["test"]),
           **{f"delta_srcc_{a}": delta_srcc[a] for a in ATTRIBUTES},
           **{f"moves_most_{a}": int(counts[a]) for a in ATTRIBUTES},
           "ig_completeness_gap_max": max(gaps), "ig_steps": settings.ig_steps, "seconds": elapsed,
           **config_evidence(settings, clip, chapter.stages.experts)}
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, metrics)
metrics
