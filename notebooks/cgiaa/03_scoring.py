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
# # CG-IAA 3 · Scoring with generated critiques
#
# > The four generated critiques are embedded by the aesthetic text tower, concatenated with the visual feature,
# > and mapped to a 10-bin score distribution.
#
# **What is reproduced.** CG-IAA's MAP stage as the book designs it (`cgiaa_map_v1`; the official scoring code
# is "coming soon"): text tower → one 512-d (smoke: 128-d) embedding per critique, visual feature before the
# CLIP projection (768-d; smoke: the 1280-d EfficientNet feature), concatenation (4 × 512 + 768 = 2816 in full)
# → Linear → GELU → Dropout 0.1 → Linear → softmax over 10 bins, trained with the per-sample EMD (r = 2).
# Critiques are generated for every image at training and at test time. Compared: image only, image +
# generated critiques, image + the real comments, and generated critiques only (the paper's published "text-only"
# setting).
#
# **Who writes the training images' critiques.** The experts of notebook 2 were trained on the training images'
# captions, so the critiques they write for those images are better than the ones they write for unseen images, and
# a head trained on them learns to trust critiques more than they deserve at test time. The book's protocol
# (`critique_protocol="cross_fitted"`) splits the captioned training images into two folds, trains one expert set
# per fold, and lets each training image's critiques be written by the other fold's experts; validation, test and
# uncaptioned images alternate between the two expert sets (even image index: fold 0's experts, odd: fold 1's). The
# paper's exposure, where the experts also critique their own training images, is kept as
# `critique_protocol="as_published"`; the ablation at the end runs both.
#
# **Known deviations.**
# - *Smoke profile:* both towers stay frozen (features and critique embeddings are cached), only the head trains
#   (full: towers fine-tuned at 1e-5, head at 1e-4 — not run here). Data: 500 synthetic images (350/50/100),
#   and the 77 real AVA photos (46/16/15) scored with their own small head.
# - "Real comments" on the synthetic set are its templated comments, one per attribute; the "general" one is
#   written from the true score, so this condition is an upper bound, not a fair competitor.
#
# **Rehearsal.** With `max_steps > 0` every training stage takes at most `max_steps` optimiser steps. The rehearsal
# also passes `max_generate=2` (a beam-5 step of the GPT-2-size decoder over 49,408 ids for every photo costs
# seconds on 2 CPU cores, so 67-token critiques for the whole copy would take many minutes), `expert_batch=8` (at
# 40 captions the four mappers' AdamW state and the decoder's activations come to about 8 GB).

# %% tags=["parameters"]
profile = "smoke"
map_epochs = 40
map_seeds = 3
critique_protocol = "cross_fitted"
seed = 0
data_root = None
gpt2_path = None
max_steps = 0  # > 0: a rehearsal, at most this many optimiser steps per training stage
weights = "pretrained"  # "random": CLIP ViT-B/16 and the GPT-2-size decoder built by name with random init
manifest = ""  # full: runs/data/ava_manifest.csv, written by `python -m iaa_lib data check`
max_generate = None  # longest generated critique in tokens (None: the config's, 67 in full)
expert_batch = 64  # captions per expert training step (full: 40)
metrics_file = "runs/cgiaa/03_scoring.json"

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from iaa_lib.cgiaa.attributes import ATTRIBUTES
from iaa_lib.cgiaa.chapter import PROFILES, config_evidence, load_chapter, main_source
from iaa_lib.cgiaa.diagnostics import ridge_probe_srcc, top_share
from iaa_lib.cgiaa.pipeline import critique_embeddings
from iaa_lib.viz import mark_random_weights, scatter_pred_true

started = time.perf_counter()
settings = PROFILES.resolve(profile, globals())
mark_random_weights(settings.weights)

# %% [markdown]
# ## Stages 1–2 (loaded from notebooks 1 and 2) and the critique cache

# %%
chapter = load_chapter(settings)
catalogue, stages = chapter.catalogue, chapter.stages
features, generated = stages.features, chapter.critiques()[1]
print(f"visual features {tuple(features.shape)}, generated-critique embeddings {tuple(generated.shape)} "
      f"({settings.critique_protocol})")

# %% [markdown]
# ## Four heads on the synthetic set
#
# Same head, same schedule (AdamW, cosine, 40 epochs, best validation SRCC kept), same split, seed 0; only the
# inputs differ. The generated critiques are the settings' protocol's. The real-comment condition uses the
# synthetic images' own four comments (one per attribute).

# %%
synthetic = catalogue[catalogue["source"] == "synthetic"]
rows = chapter.split_rows(main_source(settings))  # the real photos when there is no synthetic set (full profile)
conditions = {"image only": (features, None), "image + generated critiques": (features, generated)}
if len(synthetic):  # one templated comment per attribute: real photos have no such four
    real_text = torch.zeros_like(generated)
    real_text[synthetic.index] = critique_embeddings(stages.clip, list(synthetic["comments"]))
    conditions["image + real comments (upper bound)"] = (features, real_text)
conditions["generated critiques only (text-only)"] = (None, generated)
results, predictions, histories = {}, {}, {}
for name, (visual, text) in conditions.items():
    tag = name.split(" (")[0].replace(" + ", "_").replace(" ", "_")
    _, histories[name], results[name], predictions[name] = chapter.map_head(tag, visual, text, rows)
synthetic_table = pd.DataFrame(results).T[["srcc", "plcc", "acc", "emd1", "n"]]
synthetic_table.round(3)

# %% [markdown]
# How to read this table. The critiques alone rank the test images (text-only row), so they do carry score
# information; the true comments on top of the image help a little. The generated critiques in this table are
# cross-fitted (no training image is critiqued by experts that saw it); whether they add anything to the image is
# the ablation at the end of the notebook, over several seeds and under both protocols. The numbers are recomputed
# on every run; nothing here is tuned to make a condition win.

# %%
fig, axes = plt.subplots(1, len(predictions), figsize=(15, 3.4))
for ax, (name, frame) in zip(axes, predictions.items()):
    scatter_pred_true(frame["mos"], frame["pred_mos"], ax=ax)
    ax.set_title(f"{name}\nSRCC {results[name]['srcc']:.3f}", fontsize=8)
plt.tight_layout()
plt.show()

# %%
fig, ax = plt.subplots(figsize=(6, 3))
for name, history in histories.items():
    ax.plot([e["train_loss"] for e in history["epochs"]], label=name)
ax.set(xlabel="epoch", ylabel="EMD (r=2) train loss", title="MAP heads")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## The 77 real AVA photos
#
# Same heads on the embedded sample's fixed split (46 train / 16 val / 15 test). With 15 test photos the SRCC has
# a standard error around 0.25: read these as a smoke check, not a result.

# %%
real_rows = chapter.split_rows("ava_sample")
real_results = {}
for name, (visual, text) in {"image only": (features, None), "image + generated critiques": (features, generated)}.items():
    tag = "real_" + name.replace(" + ", "_").replace(" ", "_")
    real_results[name] = chapter.map_head(tag, visual, text, real_rows)[2]
real_table = pd.DataFrame(real_results).T[["srcc", "plcc", "acc", "emd1", "n"]]
real_table.round(3)

# %% [markdown]
# ## Published numbers beside ours
#
# The only verified CG-IAA numbers are the README's **text-only** AVA results (critiques → score; protocol not
# documented). The MAP results on four databases are in the paper, which was not available (to-verify). Ours are
# on different data and must not be compared as equals: the protocol is named in each row.

# %%
paper = pd.DataFrame([
    ["CG-IAA (AesCritique), text-only", "AVA, split not documented", 0.712, 0.720, 0.808, "verified (README)"],
    ["ARIC (AAAI 2023), text-only", "AVA, same table", 0.550, 0.591, 0.743, "verified (README)"],
    ["VILA (CVPR 2023), text-only", "AVA, same table", 0.505, 0.534, 0.752, "verified (README)"],
    ["CG-IAA MAP, image + critiques", "AVA / AADB / ...", np.nan, np.nan, np.nan, "to-verify (paper)"],
], columns=["method", "protocol", "srcc", "plcc", "acc", "status"])
n_syn = {s: len(r) for s, r in rows.items()}
ours = pd.DataFrame([
    [f"ours ({settings.config}): {name}",
     f"synthetic {n_syn['train']}/{n_syn['val']}/{n_syn['test']}, {settings.image_size}px",
     r["srcc"], r["plcc"], r["acc"], "computed here"] for name, r in results.items()
] + [
    [f"ours ({settings.config}): {name}", f"AVA sample 46/16/15, {settings.image_size}px", r["srcc"], r["plcc"],
     r["acc"], "computed here"]
    for name, r in real_results.items()
], columns=paper.columns)
pd.concat([paper, ours], ignore_index=True).round(3)

# %% [markdown]
# ## The mechanism's ablation: image only vs image + generated critiques, under each protocol
#
# One head per MAP seed (`map_seeds` seeds from `seed`) for each condition, all on the synthetic test images.
# SRCC rows: the mean test SRCC over the seeds with a 95 % bootstrap interval (test images resampled, every seed
# scored on the same draw); difference rows: the paired difference critiques − image only
# (`seed_paired_difference`), so the interval covers test sampling and the seeds' spread.

# %%
ablation = chapter.critique_ablation(rows)
ablation.round(3)

# %% [markdown]
# How to read the ablation. Under the paper's exposure (`as_published`) the generated critiques *lower* the SRCC,
# and the whole interval of the difference lies below zero: the head learnt on training-image critiques that the
# experts wrote from memory, and at test time it meets the weaker critiques of unseen images. Cross-fitting
# removes most of that loss: the cross-fitted difference is larger (closer to zero) than the as-published one,
# and its interval contains zero, so with cross-fitted critiques the fusion neither measurably helps nor hurts.
# Why not more: in this set-up the experts write from the VLAP embedding of the very visual feature the head
# already receives, so a generated critique is a function of that feature and brings no information of its own;
# at best it re-encodes the image. (Smoke data: 100 synthetic test images; the per-seed values are in
# `per_seed`.)

# %% [markdown]
# ## Why two of the four experts collapse
#
# Notebook 2 shows the composition expert writing (almost) only middle-level sentences and the general expert
# writing "average" for almost every image. Two measurements: a linear (ridge) probe of each synthetic factor from
# the experts' inputs (the pooled visual feature, and the VLAP embedding that becomes the prefix), fitted on the
# training images and scored (SRCC) on the test images; and how concentrated the sentences are: the share of the
# two most frequent sentences among the training captions of an attribute and among its generated test critiques.

# %%
inputs = {"pooled visual feature": features, "VLAP embedding (prefix input)": stages.embeddings}
probe = pd.DataFrame()  # the factors are known for synthetic images only
if len(synthetic):
    factors = chapter.synthetic_factors().reindex(catalogue.index)  # NaN outside the synthetic rows (never used)
    probe = pd.DataFrame({name: {f: ridge_probe_srcc(x, factors[f], rows["train"], rows["test"]) for f in factors}
                          for name, x in inputs.items()})
captions = stages.captions
concentration = pd.DataFrame({attribute: {
    "training captions": top_share(captions.loc[captions["attribute"] == attribute, "sentence"].str.lower()),
    **{f"generated test critiques ({p})": top_share([chapter.critiques(p)[0][r][k] for r in rows["test"]])
       for p in ("as_published", "cross_fitted")}} for k, attribute in enumerate(ATTRIBUTES)}).T
display(probe.round(3), concentration.round(3))

# %% [markdown]
# What this shows. Placement is the factor the experts' inputs carry least: its probe SRCC is the lowest of the
# four factors from both inputs (and below 0.5), so the composition expert has little to condition on: for every
# test image it writes one of just two sentences (under both protocols), while its training captions spread over
# six (their two most frequent make under half). The general expert's collapse has another
# cause: the true score *is* carried (probe SRCC above 0.5), but most of its training captions are the two
# middle-level sentences (the synthetic scores cluster in the middle), and beam search, which writes the most
# likely sentence, turns that majority into nearly every critique: the generated test critiques are more
# concentrated than the captions they were trained on, under both protocols. Neither is fixed here: composition
# would need features that keep the subject's position (the pooled feature averages it away), general a decoding
# that samples levels in proportion, which is not the paper's beam search.

# %%
elapsed = time.perf_counter() - started
short = {"image only": "image", "image + generated critiques": "image_generated",
         "image + real comments (upper bound)": "image_real", "generated critiques only (text-only)": "text_only"}
metrics = {"profile": settings.profile, "seconds": elapsed, **config_evidence(settings, stages.clip, stages.experts)}
for name, r in results.items():
    metrics.update({f"synthetic_{short[name]}_{k}": r[k] for k in ("srcc", "plcc", "acc", "emd1")})
    losses = [e["train_loss"] for e in histories[name]["epochs"]]
    metrics[f"synthetic_{short[name]}_loss_first"], metrics[f"synthetic_{short[name]}_loss_last"] = losses[0], losses[-1]
for name, r in real_results.items():
    metrics.update({f"real_{short[name]}_{k}": r[k] for k in ("srcc", "plcc", "acc")})
metrics["n_synthetic_test"] = n_syn["test"]
ablation_key = {"image only": "image", "image + generated critiques": "image_generated",
                "difference (critiques - image only)": "difference"}
for row in ablation.itertuples():
    key = f"ablation_{ablation_key[row.condition]}" + ("" if row.protocol == "either" else f"_{row.protocol}")
    metrics.update({f"{key}_srcc": row.srcc, f"{key}_low": row.low, f"{key}_high": row.high})
metrics["ablation_seeds"] = len(settings.ablation_seeds())
metrics.update({f"probe_{'feature' if name.startswith('pooled') else 'embedding'}_{f}": value
                for name, column in probe.items() for f, value in column.items()})
short_source = {"training captions": "captions", "generated test critiques (as_published)": "as_published",
                "generated test critiques (cross_fitted)": "cross_fitted"}
metrics.update({f"top2_{attribute}_{short_source[source]}": value
                for attribute, row in concentration.iterrows() for source, value in row.items()})
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, metrics)
metrics
