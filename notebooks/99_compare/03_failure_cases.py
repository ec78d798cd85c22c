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
# # Comparison 3 · Where the models disagree
#
# > The test photographs the six models rank most differently, with their votes, and what each model's own
# > evidence (sampling points, references, recalled comments, generated critiques) shows for them.
#
# **What is shown.** The models of notebook 1, trained under the same protocol (loaded from its checkpoints,
# or trained here if notebook 1 has not run). For every test image, each model's predicted score is turned into
# its rank percentile among the test images; the *spread* is the largest minus the smallest percentile over the
# models. The images with the largest spread are where the models disagree most. For each we show the votes,
# every model's predicted score and its evidence: EAT's sampling positions, MILNet's and SSMR's retrieved
# training references, the training comment nearest to CDCM-Net's memory read-out and CG-IAA's generated
# critiques.
# **Known deviations.** The smoke models are small and trained on 46 photographs: their disagreements say more
# about what each pipeline latches onto than about the papers' models.

# %% tags=["parameters"]
profile = "smoke"
protocol = "ava_sample"
models = "nima,eat,milnet,ssmr,cdcm,cgiaa"
n_show = 3
n_synthetic = 300
synthetic_size = 96
data_root = ""
test_list = ""
cgiaa_gpt2_path = ""
display_size = 224
threads = 1
seed = 0
run_dir = "runs/99_compare"
metrics_file = "runs/99_compare/03_failure_cases.json"

# %%
from iaa_lib.book.profiles import FAILURE_PROFILES

settings = FAILURE_PROFILES.resolve(profile, globals())

# %%
import textwrap

import matplotlib.pyplot as plt
import pandas as pd

from iaa_lib.book.compare import disagreement, model_titles, protocol_data, start, train_models
from iaa_lib.book.runner import record_metrics
from iaa_lib.data.images import load_rgb
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.eat.spec import sampling_pixels
from iaa_lib.viz import vote_bars

TITLES = model_titles()

start(settings)  # seed, torch threads
model_names = settings.model_names()

# %% [markdown]
# ## The models and their test predictions

# %%
data = protocol_data(settings, settings.protocol)
runs = train_models(settings, data)
truth = data.parts()["test"]
ranked = disagreement({m: r.predictions for m, r in runs.items()}, truth)
print(data.describe())
ranked.round(2).head(n_show + 2)

# %% [markdown]
# The spread over the whole test set, and which model is furthest from the votes on each image:

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].hist(ranked["spread"], bins=10)
axes[0].set(xlabel="spread of the models' rank percentiles", ylabel="test images")
ranked["most_wrong"].map(TITLES).value_counts().plot.barh(ax=axes[1])
axes[1].set(xlabel="test images on which it is furthest from the votes", ylabel="")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The most disputed images, with their votes
#
# Bars: the vote histogram; vertical lines: each model's predicted mean score; black: the mean of the votes.

# %%
shown = ranked.head(n_show)
paths = data.frame.set_index(data.frame["image_id"].astype(str))["path"]
dists = truth.set_index(truth["image_id"].astype(str))[DIST_COLUMNS]
fig, axes = plt.subplots(len(shown), 2, figsize=(10, 3.2 * len(shown)), squeeze=False)
for row, (_, item) in enumerate(shown.iterrows()):
    axes[row, 0].imshow(load_rgb(paths[item["image_id"]]))
    axes[row, 0].set_title(f"{item['image_id']} (spread {item['spread']:.2f})", fontsize=9)
    axes[row, 0].axis("off")
    vote_bars(axes[row, 1], dists.loc[item["image_id"]], color="lightgrey", label="votes")
    for k, m in enumerate(model_names):
        axes[row, 1].axvline(item[f"{m}_pred"], color=f"C{k}", label=TITLES[m])
    axes[row, 1].axvline(item["mos"], color="black", linewidth=2, label="mos")
axes[0, 1].legend(fontsize=7, loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What each model looked at
#
# **EAT:** where the last deformable block samples its keys (all offset groups). **MILNet, SSMR:** the four
# training references each retrieved, with their mean scores; MILNet retrieves by content features, SSMR by
# content and style together.

# %%
mos_of = data.frame.set_index(data.frame["image_id"].astype(str))["mos"]
reference_models = [m for m in ("milnet", "ssmr") if m in runs]
n_cols = 1 + 4 * len(reference_models)
fig, axes = plt.subplots(len(shown), n_cols, figsize=(1.9 * n_cols, 2.1 * len(shown)), squeeze=False)
for row, image_id in enumerate(shown["image_id"]):
    photo = load_rgb(paths[image_id]).resize((display_size, display_size))
    axes[row, 0].imshow(photo)
    if "eat" in runs:
        points = sampling_pixels(runs["eat"].model, load_rgb(paths[image_id]),
                                     runs["eat"].explain["transform_size"], display_size)
        axes[row, 0].scatter(points[:, 0], points[:, 1], s=4, c="red")
    axes[row, 0].set_title(f"{image_id}\nmos {mos_of[image_id]:.2f}" + (" · EAT samples" if "eat" in runs else ""),
                           fontsize=7)
    for block, m in enumerate(reference_models):
        for rank, ref in enumerate(runs[m].explain["references"][image_id][:4]):
            ax = axes[row, 1 + 4 * block + rank]
            ax.imshow(load_rgb(paths[ref]))
            ax.set_title(f"{TITLES[m]} ref {rank + 1}\nmos {mos_of[ref]:.2f}", fontsize=7)
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# **CDCM-Net and CG-IAA:** the text each model brings to an image it has never seen comments for: the training
# sentence nearest to CDCM-Net's memory read-out (global token), and CG-IAA's four generated critiques.

# %%
texts = []
for image_id in shown["image_id"]:
    if "cdcm" in runs:
        texts.append({"image": image_id, "model": "CDCM-Net (recalled)", "text": runs["cdcm"].explain["recalled"][image_id]})
    if "cgiaa" in runs:
        for critique in runs["cgiaa"].explain["critiques"][image_id]:
            texts.append({"image": image_id, "model": "CG-IAA (generated)", "text": textwrap.shorten(critique, 110)})
pd.set_option("display.max_colwidth", 120)
pd.DataFrame(texts)

# %% [markdown]
# How to read this. A reference-based model (MILNet, SSMR) predicts roughly what its references scored, so an
# image whose nearest training images were rated very differently from its own votes is pulled the wrong way;
# the references above show whether that happened. EAT's points show whether it looked at the subject or at the
# background. The recalled and generated text is what the text-using models "think" people would say: generic
# praise on a photo the voters disliked is a visible cause of an over-estimate.

# %%
_ = record_metrics(metrics_file, {
    "profile": profile,
    "protocol": data.describe(),
    "n_test": len(ranked),
    "mean_spread": float(ranked["spread"].mean()),
    "shown": [{"image_id": r["image_id"], "mos": float(r["mos"]), "spread": float(r["spread"]),
               "most_wrong": r["most_wrong"], **{f"{m}_pred": float(r[f"{m}_pred"]) for m in model_names}}
              for _, r in shown.iterrows()],
    "most_wrong_counts": ranked["most_wrong"].value_counts().to_dict(),
})
