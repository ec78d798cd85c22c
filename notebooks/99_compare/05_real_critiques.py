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
# # Comparison 5 · Scoring 10,200 real AVA images from their critiques
#
# > A TF-IDF floor, a MiniLM baseline and the text heads of CDCM-Net and CG-IAA, on over 2,000 held-out real AVA images.
#
# **What is reproduced.** The shipped DPC-Captions critiques (`data/labels/dpc_impression_and_subject.json`) are
# joined by AVA id with the true vote histograms (`data/labels/ava_votes.csv.gz`): 10,200 images. Every model
# reads the same text, each image's critiques cut into sentences by CDCM-Net's splitter (textbook variant:
# digits and punctuation deleted, so a critique saying "I gave you a 9" loses its 9), and predicts the mean
# vote. The four models:
#
# 1. **TF-IDF + ridge** (the floor): word unigrams and bigrams of the training images, a ridge regression.
# 2. **MiniLM + ridge** (the baseline): the mean of the frozen all-MiniLM-L6-v2 sentence embeddings, a ridge.
# 3. **CDCM-Net text branch**: the path real comments take through CDCM-Net when they are present (the
#    full-modality model): sentence rows, the fixed projection, the text encoder, its summary token, the text
#    classifier (a 10-bin distribution) and the text confidence, trained with the model's own losses for that
#    branch (EMD1 + L_conf,txt); `iaa_lib.cdcm.text_only`.
# 4. **CG-IAA MAP head, text only**: MAP's fusion MLP over four attribute critiques (colour & light,
#    composition, depth & focus, general) with no visual feature: each image's sentences grouped by CG-IAA's
#    attribute labeller and embedded with MiniLM; `iaa_lib.cgiaa.text_only`.
#
# Every number comes with a 95 % paired-bootstrap interval on the same test images. The ridge strength, the
# CDCM epoch and the MAP epoch are chosen on the validation images.
#
# **Known deviations.** AVA's official test list is not among the shipped files, so the split is seeded
# (`iaa_lib.data.critiques.critique_split`, 20 % test, 10 % val), not `ava_official`: compare the figures with
# published ones only as orders of magnitude. Images that share a critique text (some critics pasted one text
# under many photos) stay in one split. CDCM-Net encodes sentences with the CLIP text tower and CG-IAA with its
# VLAP-tuned CLIP; here both read frozen MiniLM sentence features (`smoke` sizes of CDCM-Net's encoder). The CG-IAA
# critiques are real sentences sorted into attributes, not generated ones. DPC-Captions holds the
# "impression and subject" critiques only (median one critique per image), far less text than AVA-Comments.

# %% tags=["parameters"]
profile = "smoke"
test_fraction = 0.2
val_fraction = 0.1
n_train = 0
cdcm_config = "smoke"
cdcm_epochs = 6
cdcm_batch_size = 64
cdcm_dim = 0
map_hidden = 128
map_epochs = 15
n_boot = 500
n_terms = 12
threads = 1
seed = 0
run_dir = "runs/99_compare/real_critiques"
cache_dir = "runs/cache/text_embeddings"
metrics_file = "runs/99_compare/05_real_critiques.json"

# %%
import time

from iaa_lib.book.profiles import CRITIQUE_PROFILES

started = time.perf_counter()
settings = CRITIQUE_PROFILES.resolve(profile, globals())
cdcm_config, cdcm_epochs, map_hidden, map_epochs = (settings.cdcm_config, settings.cdcm_epochs, settings.map_hidden,
                                                    settings.map_epochs)
n_boot, threads = settings.n_boot, settings.threads

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from iaa_lib.blocks.text import comment_feature_rows, comment_sentences
from iaa_lib.blocks.text_scoring import (EmbeddingTable, cached_text_embeddings, fit_ridge, fit_tfidf,
                                         pooled_embeddings, prediction_frame, top_terms)
from iaa_lib.book.compare import bootstrap_metrics, paired_differences, results_table
from iaa_lib.book.runner import record_metrics
from iaa_lib.data.sota import sota_table
from iaa_lib.cdcm.model import ENCODERS
from iaa_lib.cdcm.text_only import fit_text_branch, text_only_datasets
from iaa_lib.cgiaa.model import ATTRIBUTE_TITLES, ATTRIBUTES
from iaa_lib.cgiaa.text_only import (PROMPT_TEXTS, attribute_critique_embeddings, fit_text_only_map, predict_map,
                                     sentence_attributes)
from iaa_lib.data.critiques import AVA_VOTES_FILE, assert_no_shared_critiques, critique_split, critique_summary, load_critique_set
from iaa_lib.data.labels import read_ava_votes
from iaa_lib.seed import seed_everything
from iaa_lib.training import evaluate

seed_everything(seed)
if threads:
    torch.set_num_threads(threads)

# %% [markdown]
# ## The critique set and its split

# %%
frame = load_critique_set()
full_ava = read_ava_votes(AVA_VOTES_FILE)
splits = critique_split(frame, seed=seed, fractions={"test": test_fraction, "val": val_fraction})
if n_train:
    splits["train"] = sorted(np.random.default_rng(seed).choice(splits["train"], n_train, replace=False).tolist())
assert_no_shared_critiques(frame, splits)  # no id and no critique text on two sides
summary = critique_summary(frame, splits, full_ava)
protocol = (f"dpc_critiques_seed{seed}: {len(splits['train'])} / {len(splits['val'])} / {len(splits['test'])} "
            "(train / val / test), seeded, images sharing a critique kept together")
print(protocol)
summary.round(3)

# %% [markdown]
# The critiqued images score like AVA as a whole, with a slightly wider spread (they come from fewer
# challenges). Most images have one short critique:

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
bins = np.linspace(1.5, 8.7, 40)
axes[0].hist(full_ava["mos"], bins=bins, density=True, alpha=0.5, label=f"full AVA ({len(full_ava):,})")
axes[0].hist(frame["mos"], bins=bins, density=True, histtype="step", linewidth=2, label=f"critiqued ({len(frame):,})")
axes[0].set(xlabel="mean vote", ylabel="density")
axes[0].legend(fontsize=8)
axes[1].hist(frame["n_words"].clip(upper=200), bins=40)
axes[1].set(xlabel="words of critique per image (clipped at 200)", ylabel="images")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Sentences and their embeddings
#
# The sentence embeddings are computed once and cached under `runs/` by a hash of the encoder and the exact
# texts; a re-run loads them.

# %%
sentences = [comment_sentences(c) for c in frame["comments"]]
texts = sorted({s for image in sentences for s in image} | set(PROMPT_TEXTS))
encode_started = time.perf_counter()
table = EmbeddingTable(texts, cached_text_embeddings(texts, cache_dir))
encode_seconds = time.perf_counter() - encode_started
no_sentence = sum(1 for s in sentences if not s)
print(f"{len(texts):,} distinct sentences, {sum(map(len, sentences)):,} in all; {no_sentence} images keep no sentence "
      f"after the split; embeddings ready in {encode_seconds:.1f} s")

# %%
ids = frame["image_id"].astype(str).tolist()
position = {image_id: row for row, image_id in enumerate(ids)}
rows = {name: [position[i] for i in split_ids] for name, split_ids in splits.items()}
mos = frame["mos"].to_numpy(np.float64)
truth = frame.iloc[rows["test"]].reset_index(drop=True)
predictions = {}

# %% [markdown]
# ## The linear baselines

# %%
documents = [" ".join(s) for s in sentences]
vectorizer = fit_tfidf([documents[r] for r in rows["train"]])
tfidf = vectorizer.transform(documents)
tfidf_fit = fit_ridge(tfidf[rows["train"]], mos[rows["train"]], tfidf[rows["val"]], mos[rows["val"]])
predictions["tfidf_ridge"] = prediction_frame(truth["image_id"], tfidf_fit.predict(tfidf[rows["test"]]))

pooled = pooled_embeddings(sentences, table)
minilm_fit = fit_ridge(pooled[rows["train"]], mos[rows["train"]], pooled[rows["val"]], mos[rows["val"]])
predictions["minilm_ridge"] = prediction_frame(truth["image_id"], minilm_fit.predict(pooled[rows["test"]]))
print(f"TF-IDF: {tfidf.shape[1]:,} terms, ridge alpha {tfidf_fit.alpha} (val SRCC by alpha {tfidf_fit.val_srcc})")
print(f"MiniLM: ridge alpha {minilm_fit.alpha} (val SRCC by alpha {minilm_fit.val_srcc})")

# %% [markdown]
# ## CDCM-Net's text branch
#
# Each image's first 17 sentences (the smoke profile's row count) are its comment rows, padded and masked. At
# the smoke width D = 64 the 384-d sentence features pass through CDCM-Net's fixed random projection to 64
# dimensions, which loses information; `cdcm_dim = 384` runs the branch at the features' own width (no
# projection, several times slower on a CPU), `profile = "full"` at the paper's sizes (D = 512, three layers).

# %%
comment_features, comment_mask, _ = comment_feature_rows(ids, dict(zip(ids, frame["comments"])), table,
                                                         ENCODERS["smoke"]["max_sentences"])
datasets = text_only_datasets(frame, comment_features, comment_mask, splits)
overrides = {"text_dim": table.table.shape[1]} | ({"dim": cdcm_dim} if cdcm_dim else {})
branch, cdcm_history = fit_text_branch(datasets, f"{run_dir}/cdcm_text_{cdcm_config}_d{cdcm_dim}", profile=cdcm_config,
                                       epochs=cdcm_epochs, batch_size=cdcm_batch_size, seed=seed, **overrides)
_, cdcm_predictions = evaluate(branch, torch.utils.data.DataLoader(datasets["test"], batch_size=512),
                               return_predictions=True)
predictions["cdcm_text"] = cdcm_predictions
print(f"width D = {branch.net.cfg['dim']}, best epoch by val SRCC: {cdcm_history['best_epoch']} of {cdcm_epochs}")

# %% [markdown]
# ## CG-IAA's MAP head on real critiques sorted by attribute

# %%
attribute_of = sentence_attributes([t for t in texts if t not in PROMPT_TEXTS], table.features)
critiques = attribute_critique_embeddings(sentences, attribute_of, table.features)
map_head, map_history, map_predictions = fit_text_only_map(critiques, frame, splits, run_dir, epochs=map_epochs,
                                                           hidden=map_hidden, seed=seed)
predictions["cgiaa_map_text"] = map_predictions
print(f"{len(attribute_of):,} sentences labelled; MAP best epoch by val SRCC: {map_history['best_epoch']} of {map_epochs}")

# %% [markdown]
# ## Results on the held-out images

# %%
MODEL_TITLES = {"tfidf_ridge": "TF-IDF + ridge", "minilm_ridge": "MiniLM + ridge",
                "cdcm_text": "CDCM-Net text branch", "cgiaa_map_text": "CG-IAA MAP, text only"}
boot = bootstrap_metrics(predictions, truth, n_boot=n_boot, seed=seed)
table_ours = results_table(boot)
versus_minilm = paired_differences(boot, baseline="minilm_ridge")
versus_tfidf = paired_differences(boot, baseline="tfidf_ridge")
shown = table_ours[["srcc", "srcc_low", "srcc_high", "plcc", "plcc_low", "plcc_high", "krcc", "acc", "emd1", "n"]]
shown.rename(index=MODEL_TITLES).astype(float).round(3)

# %% [markdown]
# Each model minus the MiniLM baseline, on the same resamples of the same test images (an interval that
# excludes 0 is a difference the test set can resolve):

# %%
pd.concat({"vs MiniLM + ridge": versus_minilm, "vs TF-IDF + ridge": versus_tfidf}).rename(index=MODEL_TITLES).astype(float).round(3)

# %% [markdown]
# **How to read this**, from the numbers above: an interval that excludes 0 is a difference these test images
# resolve. Where CDCM-Net's text branch falls below the MiniLM baseline at the smoke width, the 64-d random
# projection of the 384-d sentence features is the first suspect (`cdcm_dim = 384` removes it).

# %%
def reading(row: pd.Series) -> str:
    """above / below / level, from a paired difference's interval."""
    return "above" if row["low"] > 0 else "below" if row["high"] < 0 else "level with (interval contains 0)"


above_chance = [MODEL_TITLES[m] for m in table_ours.index if table_ours.loc[m, "srcc_low"] > 0]
print(f"SRCC interval above 0: {len(above_chance)} of {len(table_ours)} text models ({', '.join(above_chance)})")
for baseline, differences in (("MiniLM + ridge", versus_minilm), ("TF-IDF + ridge", versus_tfidf)):
    for model, row in differences.iterrows():
        print(f"{MODEL_TITLES[model]} vs {baseline}: {row['delta_srcc']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"
              f", {reading(row)}")

# %% [markdown]
# **The papers' text-only numbers** (`book/results/sota.csv`). None was measured on this data: CG-IAA's row
# scores critiques *generated* from the image on an undocumented AVA split; ARIC and VILA are the text-only rows
# of the same README table; CIAASF reads the image *and* real comments. No published text-only number from
# real DPChallenge comments could be verified for this book (the retrievable sources give abstracts only).

# %%
published = sota_table()
published = published[published["split"].str.contains("text only|comments", case=False)]
published[["method", "venue", "year", "split", "srcc", "plcc", "acc", "status"]]

# %%
fig, ax = plt.subplots(figsize=(8, 3))
order = list(MODEL_TITLES)
values = table_ours.loc[order, "srcc"].astype(float).to_numpy()
errors = np.abs(table_ours.loc[order, ["srcc_low", "srcc_high"]].astype(float).to_numpy().T - values)
ax.barh([MODEL_TITLES[m] for m in order], values, xerr=errors, color="C0", label=f"ours, {boot.n:,} test images")
for k, (_, row) in enumerate(published.iterrows()):
    ax.axvline(row["srcc"], color=f"C{k + 1}", linestyle="--", label=f"{row['method']} (published)")
ax.set(xlabel="SRCC with 95 % interval", xlim=(0, 1))
ax.legend(fontsize=7, loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What carries the signal
#
# **Words.** The TF-IDF ridge weights: the terms whose presence most raises or lowers the predicted score.

# %%
terms = top_terms(vectorizer, tfidf_fit, n_terms)
pd.concat({d: g.reset_index(drop=True)[["term", "weight"]] for d, g in terms.groupby("direction")}, axis=1).round(3)

# %% [markdown]
# Praise ("great", "love", "beautiful", "congratulations", a "ribbon") raises the predicted score; complaints
# about focus and negations ("not", "doesnt") lower it.
#
# **Attributes.** How CG-IAA's labeller sorts the sentences, how many test images have a sentence on each
# attribute, and what the trained MAP head loses on the test images when one attribute slot is emptied (set to
# zero, as for an image without a sentence on it), with paired intervals.

# %%
labels = pd.Series(attribute_of)
test_critiques = critiques[rows["test"]]
ablations = {"all four": map_predictions}
for slot, attribute in enumerate(ATTRIBUTES):
    emptied = test_critiques.clone()
    emptied[:, slot] = 0
    ablations[attribute] = predict_map(map_head, emptied, truth)
ablation_boot = bootstrap_metrics(ablations, truth, n_boot=n_boot, seed=seed)
drops = paired_differences(ablation_boot, baseline="all four")
attribute_table = pd.DataFrame({
    "share of sentences": labels.value_counts(normalize=True).reindex(ATTRIBUTES),
    "share of test images with one": (test_critiques.abs().sum(-1) > 0).float().mean(0).numpy(),
    "SRCC change when emptied": drops["delta_srcc"].reindex(ATTRIBUTES).astype(float),
    "low": drops["low"].reindex(ATTRIBUTES).astype(float),
    "high": drops["high"].reindex(ATTRIBUTES).astype(float),
}).rename(index=ATTRIBUTE_TITLES)
attribute_table.round(3)

# %% [markdown]
# Emptying any one attribute slot costs the MAP head SRCC (every interval lies below 0): each attribute
# carries some of the signal, and the general impression, present in most images, carries the most.

# %% [markdown]
# ## Closing note
#
# The figures of this run, computed above and printed here: each model's test SRCC with its interval, the
# run time, and whether the two paper heads beat the MiniLM baseline (a paired interval above 0).

# %%
seconds = time.perf_counter() - started
for model in order:
    row, delta = table_ours.loc[model], versus_minilm.loc[model] if model != "minilm_ridge" else None
    verdict = "" if delta is None else (f"; vs MiniLM {delta['delta_srcc']:+.3f} [{delta['low']:+.3f}, {delta['high']:+.3f}]")
    print(f"{MODEL_TITLES[model]:24s} SRCC {row['srcc']:.3f} [{row['srcc_low']:.3f}, {row['srcc_high']:.3f}]{verdict}")
print(f"n_test = {boot.n:,}; this run took {seconds:.0f} s ({encode_seconds:.0f} s for the sentence embeddings)")

# %%
metrics = {
    "profile": profile,
    "protocol": protocol,
    "split": "seeded (AVA's official test list is not shipped)",
    "n_images": len(frame), "n_train": len(splits["train"]), "n_val": len(splits["val"]), "n_test": boot.n,
    "n_sentences": len(texts) - len(PROMPT_TEXTS),
    "summary": {name: row.dropna().to_dict() for name, row in summary.iterrows()},
    "models": {m: table_ours.loc[m].dropna().astype(float).to_dict() for m in order},
    "delta_srcc_vs_minilm": {m: versus_minilm.loc[m].astype(float).to_dict() for m in versus_minilm.index},
    "delta_srcc_vs_tfidf": {m: versus_tfidf.loc[m].astype(float).to_dict() for m in versus_tfidf.index},
    "ridge_alpha": {"tfidf": tfidf_fit.alpha, "minilm": minilm_fit.alpha},
    "top_terms": {d: g["term"].tolist() for d, g in terms.groupby("direction")},
    "attributes": {a: {"share_of_sentences": float(labels.value_counts(normalize=True).get(a, 0.0)),
                       "delta_srcc_when_emptied": float(drops.loc[a, "delta_srcc"]),
                       "low": float(drops.loc[a, "low"]), "high": float(drops.loc[a, "high"])} for a in ATTRIBUTES},
    "encode_seconds": encode_seconds,
    "notebook_seconds": seconds,
}
_ = record_metrics(metrics_file, metrics)
