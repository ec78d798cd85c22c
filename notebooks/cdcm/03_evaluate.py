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
# # CDCM-Net 3 · Evaluation without comments
#
# > Image only, image + recalled comments, image + real comments: how much of the comments' value does the memory recover?
#
# **What is reproduced.** The missing-modality protocol: CDCM-Net is evaluated on images alone, the text being
# recalled from its memory; it is compared with the image-only encoder and the full-modality upper bound that
# reads the real comments. Checks that can fail test whether the memory recalls anything, and the chapter ends
# with the mechanism's ablation over three training seeds.
#
# **Known deviations.** Smoke data (synthetic set and the 77-photo AVA sample) instead of AVA with its comment
# corpus; checkpoints chosen on validation, not test. The paper's only known number (Acc ≈ 0.87, from the
# released checkpoint's file name) is on an unknown filtered AVA test subset and is **not comparable**.
#
# **Rehearsal.** With `max_steps > 0` every training run is one epoch of at most `max_steps` optimiser steps;
# the rehearsal's other parameters are notebook 1's (`n_synthetic=64`, `min_sentences=0`).

# %% tags=["parameters"]
profile = "smoke"
seed = 0
data_root = ""
max_steps = 0  # > 0: a rehearsal, at most this many optimiser steps per training stage
weights = "pretrained"  # "random": the CLIP encoders built by name with random init
manifest = ""  # full: runs/data/ava_manifest.csv, written by `python -m iaa_lib data check`
n_synthetic = 600  # synthetic images
min_sentences = 0  # full: 5, the released AVA filter on the real photos' comment sentences
metrics_file = "runs/cdcm/03_evaluate.json"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from iaa_lib.cdcm.chapter import PROFILES, SYNTHETIC_MODELS, load_chapter
from iaa_lib.cdcm.data import split_datasets
from iaa_lib.training.evaluation import evaluate
from iaa_lib.viz import scatter_pred_true, mark_random_weights

settings = PROFILES.resolve(profile, globals())
mark_random_weights(settings.weights)
chapter = load_chapter(settings)
syn_data = chapter.synthetic
no_comments = split_datasets(chapter.data.synthetic, chapter.data.synthetic_splits, blank_comments=("test",))

# %% [markdown]
# The models trained in notebook 2 (same configuration, so they are loaded, not retrained):

# %%
models = {name: chapter.synthetic_model(name)[0] for name in SYNTHETIC_MODELS}

# %% [markdown]
# ## Does the memory recall anything? Checks that can fail
# At test time a `recalled` model never reads comments (its forward pass drops them outside training), so "the
# prediction does not change when comments are removed" holds by construction and proves nothing. These can fail:
# 1. **Zero the value memory** (V = 0: nothing is recalled) and score the test images again.
# 2. **Recall vs the mean sentence**: cosine between the read-out of a token and its actual sentence feature,
#    against the cosine between the mean training sentence and the same sentence (a recall-free baseline).
# 3. **The as-published variant's text confidence** c_txt (ReLU) on every test image.

# %%
from iaa_lib.cdcm.ablation import predicted_scores, recall_cosine

tokens = syn_data["test"].visual_tokens
kept = predicted_scores(models["cdcm"], tokens)
zeroed = predicted_scores(models["cdcm"], tokens, zero_value_memory=True)
zero_value_change = float((kept["mos"] - zeroed["mos"]).abs().max())
cosines = recall_cosine(models["cdcm"], syn_data["train"], syn_data["test"])
published_confidence = predicted_scores(models["cdcm_as_published"], tokens)["confidence"]
published_text_dead = float((published_confidence[:, 1] == 0).float().mean())
checks = pd.DataFrame([
    ["largest |Δ predicted score| when V = 0", zero_value_change],
    ["cosine(read-out, actual sentence)", cosines["recall"]],
    ["cosine(mean training sentence, actual sentence)", cosines["mean_sentence"]],
    ["as published: share of test images with c_txt = 0", published_text_dead],
    ["as published: mean c_img", float(published_confidence[:, 0].mean())],
], columns=["check", "value"])
checks.round(4)

# %% [markdown]
# What the checks show (smoke, seed 0). The value memory now starts at the scale of the text it stores (the std of
# the projected training sentences, about 0.13, instead of 0.5), so L_rec ends below the cost of predicting 0
# (notebook 2). Yet the memory hardly steers the score: setting V = 0 moves a predicted score by at most about
# 0.01 on a 1–10 scale, because t̂ = W_f[v ; read-out] is dominated by the visual token. The read-out is also
# **no closer to the actual sentence than the mean training sentence is** (cosine about 0.45 against 0.53):
# what the memory recalls is a blurred average, not the image's comment (notebook 4 decodes it against chance).
# The as-published variant: with the value memory at the old std 0.5 its ReLU text confidence was exactly 0 on
# every one of the 90 test images (measured at commit 3da8f4f: its fusion multiplied the recalled tokens by 0, an
# image-only model in disguise). With the memory at the text's scale the text confidence stays alive in this seed
# (share of c_txt = 0 in the table); the ReLU can still die, and with training seed 1 the as-published head
# collapses to a constant prediction, so only seed 0 is shown for it.

# %% [markdown]
# ## Results
# Synthetic test split (random 70/15/15, seed 0, n = 90 images, 96 px images → 128 px tokens); Acc with the
# book rule (> 5) and, for the as-published variant, CDCM's own rule (≥ 5).

# %%
test_loader = DataLoader(no_comments["test"], batch_size=256)
rows, predictions = [], {}
for name, label, loader, high_if in [
    ("image_only", "image only (6-layer encoder baseline)", test_loader, "gt"),
    ("cdcm", "image + recalled comments (CDCM-Net, textbook)", test_loader, "gt"),
    ("cdcm_as_published", "image + recalled comments (CDCM-Net, as published)", test_loader, "ge"),
    ("real_comments", "image + real comments (full-modality upper bound)", DataLoader(syn_data["test"], batch_size=256), "gt"),
]:
    m, predictions[label] = evaluate(models[name], loader, high_if=high_if, return_predictions=True)
    rows.append(dict(model=label, data="synthetic test", n=m["n"], srcc=m["srcc"], plcc=m["plcc"], acc=m["acc"],
                     emd1=m["emd1"], source="computed here"))
real_model = chapter.sample_model()[0]
real_test = split_datasets(chapter.data.real, chapter.data.real_splits, blank_comments=("test",))["test"]
m = evaluate(real_model, DataLoader(real_test, batch_size=64))
rows.append(dict(model="image + recalled comments (CDCM-Net, textbook)", data="AVA sample test (fixed split)",
                 n=m["n"], srcc=m["srcc"], plcc=m["plcc"], acc=m["acc"], emd1=m["emd1"], source="computed here"))
rows.append(dict(model="CDCM-Net (released checkpoint name)", data="filtered AVA test, split unknown", n=None,
                 srcc=None, plcc=None, acc=0.87, emd1=None, source="checkpoint file name; to-verify, not comparable"))
rows.append(dict(model="CIAASF (reads real comments)", data="AVA", n=None, srcc=0.8523, plcc=0.8648, acc=0.8696,
                 emd1=None, source="abstract, verified; context only"))
results = pd.DataFrame(rows)
results.round(3)

# %% [markdown]
# The same four synthetic-test predictions against the true mean scores:

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 4), sharey=True)
for ax, (label, frame) in zip(axes, predictions.items()):
    scatter_pred_true(frame["mos"], frame["pred_mos"], ax=ax, title=label.split(" (")[0])
plt.tight_layout()
plt.show()

# %% [markdown]
# On the synthetic set the comments describe exactly the factors of the score, so the upper bound with real
# comments is far above the image-only model. Whether the recalled comments close part of that gap is what the
# table answers for this smoke run; on the 15 real test photos (a model trained on 46 photos, few of them with
# comments) no conclusion is possible.

# %% [markdown]
# ## The mechanism's ablation over three training seeds
# CDCM-Net (textbook) against the image-only encoder, and against itself with the value memory zeroed, for
# training seeds 0, 1, 2 on the same synthetic test images. Δ = SRCC with − SRCC without, averaged over the
# seeds; the 95 % interval is a paired bootstrap over the test images that scores every seed on each resample.

# %%
from iaa_lib.metrics import seed_paired_difference

seeds = (0, 1, 2)
truth = syn_data["test"].mos.numpy()
with_memory, image_only, memory_zeroed = [], [], []
for s in seeds:
    recalled = chapter.synthetic_model("cdcm", seed=s)[0]
    with_memory.append(predicted_scores(recalled, tokens)["mos"].numpy())
    memory_zeroed.append(predicted_scores(recalled, tokens, zero_value_memory=True)["mos"].numpy())
    image_only.append(evaluate(chapter.synthetic_model("image_only", seed=s)[0], test_loader,
                               return_predictions=True)[1]["pred_mos"].to_numpy())
ablation = {"CDCM-Net − image-only encoder": seed_paired_difference(truth, with_memory, image_only),
            "CDCM-Net − CDCM-Net with V = 0": seed_paired_difference(truth, with_memory, memory_zeroed)}
pd.DataFrame([dict(comparison=k, srcc_with=np.mean(v["with_srcc"]), srcc_without=np.mean(v["without_srcc"]),
                   delta=v["difference"], low=v["low"], high=v["high"],
                   per_seed=", ".join(f"{d:+.3f}" for d in v["per_seed"])) for k, v in ablation.items()]).round(3)

# %% [markdown]
# The recalled comments do not help in the smoke run: CDCM-Net stays below the image-only encoder in every seed,
# with an interval that excludes 0, and zeroing its memory changes its SRCC by less than 0.01. The cause is
# measured in notebook 2's loss-weight sweep: the auxiliary losses (L_add ≈ 0.6 and L_conf ≈ 0.25 against an
# EMD of about 0.05) dominate training, and L_add trains the visual adapter shared with the image path; with the
# auxiliary weight at 0 the same model scores close to the image-only encoder.

# %%
from iaa_lib.book.runner import record_metrics
record_metrics(metrics_file, {
    "profile": settings.profile, "zero_value_max_change": zero_value_change,
    "recall_cosine": cosines["recall"], "mean_sentence_cosine": cosines["mean_sentence"],
    "as_published_text_confidence_zero": published_text_dead,
    "image_only_srcc": float(rows[0]["srcc"]), "cdcm_recalled_srcc": float(rows[1]["srcc"]),
    "cdcm_as_published_srcc": float(rows[2]["srcc"]), "real_comments_srcc": float(rows[3]["srcc"]),
    "cdcm_recalled_acc": float(rows[1]["acc"]),
    **{f"ablation_{key}_{k}": v[k] for key, v in zip(("vs_image_only", "vs_zero_memory"), ablation.values())
       for k in ("difference", "low", "high")},
    "ablation_vs_image_only_per_seed": ablation["CDCM-Net − image-only encoder"]["per_seed"], "sample_srcc": float(rows[4]["srcc"]), "test_n": int(rows[1]["n"]),
    **chapter.evidence(),
})
