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
# # CG-IAA 2 · Four attribute experts that write critiques
#
# > One ClipCap-style generator per attribute turns the aesthetic-CLIP image embedding into a one-sentence critique.
#
# **What is reproduced.** The released generator's design: image embedding (unit norm) → transformer mapper
# (linear to P prefix tokens, a learned constant of P tokens, a pre-LN transformer with bias-free q/kv and a ReLU
# MLP of ratio 2, keep the last P outputs) → prefix of a GPT-2-shaped causal LM; caption loss = next-token
# cross-entropy on the caption after the prefix; batched KV-cached beam search (beam 5, length-normalised
# log-probability, stop at the first "."), with greedy decoding as an option checked against it. One mapper per
# attribute in front of one shared LM (the spec's default; equal to four frozen GPT-2 copies).
#
# **Known deviations.**
# - *Smoke profile:* GPT-2 weights are not available offline, so the LM is a tiny 2-layer, 64-d GPT-shaped
#   decoder trained from scratch (full: GPT-2 small loaded from a local folder and frozen, as ClipCap's
#   `--only_prefix`). The tokenizer is open_clip's bundled BPE restricted to the ids of the training captions
#   (a few hundred ids instead of 49,408); prefix length 4 and a 1-layer mapper instead of 40 and 8.
# - The experts learn from the **templated synthetic critiques**, so on real photos they can only write
#   synthetic-style sentences. The real photos' comments are shown beside them for an honest comparison.
# - The caption loss ignores exactly the padded positions; the released code pads with id 0 and ignores id 0
#   (so a real "!" is never learned): that variant is `loss_padding="as_published"`, compared below.
#
# **Rehearsal.** With `max_steps > 0` every training stage takes at most `max_steps` optimiser steps. The rehearsal
# also passes `max_generate=2` (a beam-5 step of the GPT-2-size decoder over 49,408 ids for every photo costs
# seconds on 2 CPU cores, so 67-token critiques for the whole copy would take many minutes), `expert_batch=8` (at
# 40 captions the four mappers' AdamW state and the decoder's activations come to about 8 GB).

# %% tags=["parameters"]
profile = "smoke"
expert_steps = 300
n_show = 4
seed = 0
data_root = None
gpt2_path = None
max_steps = 0  # > 0: a rehearsal, at most this many optimiser steps per training stage
weights = "pretrained"  # "random": CLIP ViT-B/16 and the GPT-2-size decoder built by name with random init
manifest = ""  # full: runs/data/ava_manifest.csv, written by `python -m iaa_lib data check`
max_generate = None  # longest generated critique in tokens (None: the config's, 67 in full)
expert_batch = 64  # captions per expert training step (full: 40)
metrics_file = "runs/cgiaa/02_critiques.json"

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from iaa_lib.blocks.text import split_sentences
from iaa_lib.cgiaa.attributes import ATTRIBUTES
from iaa_lib.cgiaa.chapter import PROFILES, RUN_DIR, chapter_catalogue, config_evidence, main_source, start
from iaa_lib.cgiaa.model import ATTRIBUTE_TITLES, caption_loss
from iaa_lib.cgiaa.pipeline import (attribute_splitter, caption_nll, critiques_stage, expert_captions, experts_stage,
                                    first_last_mean, image_embeddings, vlap_stage)
from iaa_lib.cgiaa.tokenizer import canonical_text
from iaa_lib.data.images import load_rgb
from iaa_lib.paths import resolve
from iaa_lib.viz import mark_random_weights

settings = PROFILES.resolve(profile, globals())
mark_random_weights(settings.weights)
start(settings)
started = time.perf_counter()
run_path = resolve(RUN_DIR)

# %% [markdown]
# ## The aesthetic CLIP from notebook 1 and the attribute captions

# %%
cfg = settings.model_config()
catalogue = chapter_catalogue(settings)
clip, features, vlap_history = vlap_stage(cfg, catalogue, run_path, settings.vlap_schedule(),
                                          settings.train_image_tower)
embeddings = image_embeddings(clip, features)

splitter = attribute_splitter(settings.zero_shot)  # keyword lexicon (+ MiniLM zero-shot refinement in full)
sources = ("synthetic",) if settings.n_synthetic else ("ava_sample",)
captions = expert_captions(catalogue, splitter, ("train",), sources)
val_captions = expert_captions(catalogue, splitter, ("val",), sources)
if val_captions.empty:  # no validation photo has a comment (the miniature AVA copy): hold out the test captions
    val_captions = expert_captions(catalogue, splitter, ("test",), sources)
print(f"{len(captions)} training captions from {captions['image_index'].nunique()} images; per attribute:")
captions["attribute"].value_counts().reindex(ATTRIBUTES)

# %% [markdown]
# ## Training the four experts

# %%
experts, tokenizer, expert_history = experts_stage(cfg, embeddings, captions, run_path, settings.expert_schedule(),
                                                   vlap_history["config_hash"])
n_params = sum(p.numel() for p in experts.parameters())
print(f"vocabulary {tokenizer.vocab_size} ids; experts {n_params:,} parameters "
      f"(LM {sum(p.numel() for p in experts.lm.parameters()):,})")
first_loss, last_loss = first_last_mean(expert_history["loss"])
val_nll = caption_nll(experts, tokenizer, embeddings, val_captions, cfg.caption_tokens)

# A reference that ignores the image: the per-attribute token frequencies of the training captions.
ids, mask = tokenizer.encode_captions(list(captions["sentence"]), cfg.caption_tokens)
val_ids, val_mask = tokenizer.encode_captions(list(val_captions["sentence"]), cfg.caption_tokens)
unigram = torch.bincount(ids[mask], minlength=tokenizer.vocab_size).float() + 1
unigram_nll = float(-(unigram / unigram.sum()).log()[val_ids[val_mask]].mean())
print(f"caption loss {first_loss:.3f} -> {last_loss:.3f}; held-out per-token NLL {val_nll:.3f} "
      f"(unigram reference {unigram_nll:.3f})")

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(expert_history["loss"], lw=1)
ax.axhline(val_nll, ls="--", c="C1", label=f"held-out NLL {val_nll:.2f}")
ax.axhline(unigram_nll, ls=":", c="grey", label=f"unigram reference {unigram_nll:.2f}")
ax.set(xlabel="step", ylabel="caption cross-entropy (nats/token)", title="attribute experts: training loss")
ax.legend()
plt.show()

# %% [markdown]
# ## Generating critiques (the critique cache)
#
# Every image gets one critique per attribute, generated once and stored with the run (CG-IAA's MAP stage uses
# generated critiques for every image, at training and at test time).

# %%
critiques = critiques_stage(experts, tokenizer, embeddings, cfg, run_path, expert_history["config_hash"])
table = critiques.pivot(index="image_index", columns="attribute", values="critique")[list(ATTRIBUTES)]
synthetic_test = catalogue[(catalogue["source"] == "synthetic") & (catalogue["split"] == "test")]


def own_sentences(index: int, attribute: str) -> set[str]:
    """The image's own comment sentences of one attribute, in the tokenizer's canonical form."""
    row = catalogue.loc[index]
    texts = [t for t, a in zip(row["comments"], row["comment_attributes"]) if a == attribute]
    return {canonical_text(s) for t in texts for s in split_sentences(t, "punctuated")}


synthetic_train = catalogue[(catalogue["source"] == "synthetic") & (catalogue["split"] == "train")]
scored = ATTRIBUTES if len(synthetic_test) else ()  # the templated comments are the reference: synthetic images only
match = {a: float(np.mean([table.loc[i, a] in own_sentences(i, a) for i in synthetic_test.index]))
         for a in scored}
match_train = {a: float(np.mean([table.loc[i, a] in own_sentences(i, a) for i in synthetic_train.index[:100]]))
               for a in scored}
train_sentences = captions.assign(canon=captions["sentence"].map(lambda s: tokenizer.decode(tokenizer.encode(s))))
chance = {a: float(np.mean([np.mean([s in own_sentences(i, a) for s in
                                     train_sentences.loc[train_sentences["attribute"] == a, "canon"].sample(
                                         200, replace=True, random_state=settings.seed)])
                            for i in synthetic_test.index[:30]])) for a in scored}
pd.DataFrame({"test images: generated = an own sentence": match,
              "train images (captions seen in training)": match_train,
              "chance: random training sentence": chance}).round(3)

# %% [markdown]
# A generated sentence counts only if it is literally one of the image's own sentences (the other phrasing of
# the same level counts as wrong), so these rates are a lower bound on "says the right thing". Critiques of
# training images are better than those of test images: the MAP head of notebook 3 is trained on the former
# and tested on the latter, a shift that CG-IAA shares (its experts saw AVA training images too).

# %% [markdown]
# ### Synthetic test photos: generated critiques beside the real (templated) comments

# %%
def show_critiques(indices, title):
    fig, axes = plt.subplots(len(indices), 2, figsize=(12, 2.3 * len(indices)),
                             gridspec_kw={"width_ratios": [1, 5]})
    for (ax_image, ax_text), index in zip(np.atleast_2d(axes), indices):
        row = catalogue.loc[index]
        ax_image.imshow(load_rgb(row["path"]))
        ax_image.set_axis_off()
        ax_image.set_title(f"{row['image_id']}\nmos {row['mos']:.2f}", fontsize=8)
        generated = "\n".join(f"{ATTRIBUTE_TITLES[a]:>16s}: {table.loc[index, a]}" for a in ATTRIBUTES)
        real = " | ".join(row["comments"]) or "(no comment)"
        real = real if len(real) < 260 else real[:257] + "..."
        ax_text.text(0, 0.95, "GENERATED\n" + generated, va="top", family="monospace", fontsize=8)
        ax_text.text(0, 0.22, "REAL: " + "\n".join(real[i:i + 120] for i in range(0, len(real), 120)),
                     va="top", fontsize=7.5, color="C3")
        ax_text.set_axis_off()
    fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()


if len(synthetic_test):  # the full profile has no synthetic set
    show_critiques(list(synthetic_test.index[:n_show]), "held-out synthetic images")

# %% [markdown]
# ### Real AVA photos: what the smoke experts write about photographs they were not built for

# %%
real_with_comments = catalogue[(catalogue["source"] == "ava_sample") & catalogue["comments"].map(bool)]
show_critiques(list(real_with_comments.index[:n_show]), "real AVA photos (experts trained on synthetic critiques)")

# %% [markdown]
# ## Beam search vs greedy decoding, and the as-published caption loss
#
# Beam search keeps 5 running hypotheses and pools finished ones; its score is the mean token log-probability.

# %%
demo_test = catalogue[(catalogue["source"] == main_source(settings)) & (catalogue["split"] == "test")]
sample = embeddings[torch.tensor(demo_test.index[:64].to_numpy())]
rows = []
for attribute in ATTRIBUTES:
    beam = experts.generate(attribute, sample, tokenizer.stop_ids, cfg.max_generate, beam_width=cfg.beam_width)
    greedy = experts.generate(attribute, sample, tokenizer.stop_ids, cfg.max_generate, beam_width=1)
    rows.append({"attribute": attribute, "same text": np.mean([a == b for a, b in zip(beam.tokens, greedy.tokens)]),
                 "beam mean log-prob": beam.scores.mean().item(), "greedy mean log-prob": greedy.scores.mean().item(),
                 "beam >= greedy": float((beam.scores >= greedy.scores - 1e-5).float().mean())})
decoding = pd.DataFrame(rows).set_index("attribute")
decoding.round(3)

# %%
# Same logits, two paddings: a caption ending in a real "!" (id 0) loses that token under the released loss.
with torch.no_grad():
    ids_bang, mask_bang = tokenizer.encode_captions(["Excellent work, one of my favourites!"], cfg.caption_tokens)
    prefix = experts.prefix("general", embeddings[:1])
    logits, _ = experts.lm(inputs_embeds=torch.cat([prefix, experts.lm.embed(ids_bang)], 1))
    losses = {mode: float(caption_loss(logits, ids_bang, mask_bang, cfg.prefix_length, mode))
              for mode in ("mask", "as_published")}
print(f"tokens {ids_bang[0, :int(mask_bang.sum())].tolist()} (id 0 = '!'); loss per mode: {losses}")

# %%
elapsed = time.perf_counter() - started
metrics = {
    "profile": settings.profile, "expert_loss_first": first_loss, "expert_loss_last": last_loss, "expert_val_nll": val_nll,
    "unigram_val_nll": unigram_nll, "vocab_size": tokenizer.vocab_size, "n_captions": len(captions),
    **{f"match_{a}": match[a] for a in scored}, **{f"chance_{a}": chance[a] for a in scored},
    **{f"match_train_{a}": match_train[a] for a in scored},
    "beam_ge_greedy": float(decoding["beam >= greedy"].mean()),
    "loss_mask_bang": losses["mask"], "loss_as_published_bang": losses["as_published"], "seconds": elapsed,
    "n_decoded": len(sample), "expert_steps_run": len(expert_history["loss"]), **config_evidence(settings, clip, experts, tokenizer),
}
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, metrics)
metrics
