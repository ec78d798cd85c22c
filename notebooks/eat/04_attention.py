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
# # EAT 4 · Where the deformable attention looks
#
# > Learned reference points, offsets kept or shrunk by the sign mask, attention maps per stage and an attribution, on real photographs.
#
# **What is reproduced.** The quantities EAT's forward pass returns for every deformable block: the
# learned reference points ("interest points") and the sampling positions = reference + masked offset.
# We draw them over real AVA photos, colour each offset by EAT's sign-agreement mask (kept at full
# strength vs shrunk to 25 %), show attention maps per stage and the relative-position bias tables, and
# put an integrated-gradients attribution (captum) beside them for the highest- and lowest-scored test
# photos. A last figure shows the as-published model's batch dependence on one image.
# **Known deviations.** The model is the smoke EAT of part 2 (64 px, trained on 46 photos from random
# weights), so its feature maps are 16/8/4 cells wide, not DAT-B's 56/28/14/7, and what it attends to is
# illustrative only. `profile = "full"` draws the same figures for the 224 px model.

# %% tags=["parameters"]
profile = "smoke"
data_root = ""
dat_checkpoint = ""
batch_size = 16
max_steps = 0
weights = "pretrained"
manifest = ""
ig_steps = 32
display_size = 256
seed = 0
run_dir = "runs/eat"
metrics_file = "runs/eat/04_attention.json"

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from captum.attr import IntegratedGradients

from iaa_lib.data.images import load_rgb
from iaa_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from iaa_lib.eat.dat import normalised_to_pixels, offset_kept, uniform_grid
from iaa_lib.eat.model import record_attention
from iaa_lib.eat.pipeline import EAT_PROFILES, load_chapter
from iaa_lib.metrics import predicted_mos
from iaa_lib.viz import mark_random_weights

# %% [markdown]
# ## The trained models (from part 2)
#
# The same settings as part 2 (`EAT_PROFILES`), so `load_chapter` only loads its runs: the textbook model trained
# on the real photos, whose attention is drawn, and the as-published model trained on the synthetic set.
# The rehearsal (README) passes `ig_steps = 4` besides part 2's `batch_size = 2`: integrated gradients costs
# `ig_steps` forward and backward passes of DAT-B at 224 px per photo, minutes on a 2-core CPU at the full 64.

# %%
settings = EAT_PROFILES.resolve(profile, globals())
mark_random_weights(settings.weights)  # weights="random" (a rehearsal): every figure says so
chapter = load_chapter(settings, run_dir)
model, published = chapter.models["ava_sample"].eval(), chapter.models["as_published"].eval()
real_parts, image_dir, real_test = chapter.real.parts, chapter.real.image_dir, chapter.real.loaders["test"]

# %% [markdown]
# ## The highest- and lowest-scored test photos

# %%
test_ids = real_parts["test"]["image_id"].tolist()
images = torch.stack([real_test.dataset[i]["image"] for i in range(len(test_ids))])
with torch.no_grad(), record_attention(model):
    out = model(images)
    attention = {name: module.last_attention for name, module in model.named_modules() if getattr(module, "last_attention", None) is not None}
scores = predicted_mos(out["pred"])
picked = [int(scores.argmax()), int(scores.argmin())]
mos = real_parts["test"].set_index("image_id")["mos"]
photos = [load_rgb(image_dir / f"{test_ids[i]}.jpg").resize((display_size, display_size)) for i in picked]
labels = [f"{test_ids[i]}: predicted {scores[i]:.2f}, mos {mos[test_ids[i]]:.2f}" for i in picked]
print("\n".join(labels))

# %% [markdown]
# ## Reference points and sampling positions in every deformable block
#
# Blue dots: the learned reference points of one offset group; the segment from each reference point to
# its sampling position is the offset, **green** where it points further into the reference point's
# quadrant (kept at full strength by EAT's mask) and **red** where it was shrunk to 25 %. Offsets are at
# most one feature cell long, so they are short by design. (The photos are shown squashed to a square,
# as the model sees them.)

# %% tags=["figure:eat_sampling_points"]
blocks = [name for name, _ in model.deformable_blocks()]
kept_fraction = {}
fig, axes = plt.subplots(len(picked), len(blocks), figsize=(4.2 * len(blocks), 4.2 * len(picked)), squeeze=False)
for row, (index, photo, label) in enumerate(zip(picked, photos, labels)):
    for col, (block, positions, references) in enumerate(zip(blocks, out["positions"], out["references"])):
        size = positions.shape[2]
        pos = normalised_to_pixels(positions[index, 0], size, display_size).reshape(-1, 2)
        ref = normalised_to_pixels(references[index, 0], size, display_size).reshape(-1, 2)
        kept = offset_kept(positions[index, 0], references[index, 0]).reshape(-1)
        ax = axes[row, col]
        ax.imshow(photo)
        for (ry, rx), (py, px), keep in zip(ref.tolist(), pos.tolist(), kept.tolist()):
            ax.plot([rx, px], [ry, py], color="lime" if keep else "red", lw=2)
        ax.scatter(ref[:, 1], ref[:, 0], s=10, color="deepskyblue", zorder=3)
        ax.set_title(f"{block} ({size}x{size} cells)\n{label}", fontsize=8)
        ax.set_xlim(0, display_size)
        ax.set_ylim(display_size, 0)
        ax.axis("off")
for block, positions, references in zip(blocks, out["positions"], out["references"]):
    kept_fraction[block] = float(offset_kept(positions, references).float().mean())
plt.tight_layout()
plt.show()
pd.Series(kept_fraction, name="fraction of offsets kept at full strength (all test photos, all groups)").round(3).to_frame()

# %% [markdown]
# ## Learned reference points vs DAT's grid
#
# DAT samples around a fixed uniform grid of cell centres; EAT learns where the reference points sit,
# one map per block shared by all offset groups. Grey: the grid; colours: the learned points for the
# highest- and the lowest-scored photo.

# %%
fig, axes = plt.subplots(1, len(blocks), figsize=(4 * len(blocks), 4), squeeze=False)
reference_spread = {}
for ax, block, references in zip(axes[0], blocks, out["references"]):
    size = references.shape[2]
    grid = uniform_grid(size, size).reshape(-1, 2)
    ax.scatter(grid[:, 1], -grid[:, 0], color="grey", s=25, label="DAT grid")
    for index, label in zip(picked, ("highest", "lowest")):
        learned = references[index, 0].reshape(-1, 2)
        ax.scatter(learned[:, 1], -learned[:, 0], s=12, alpha=0.8, label=f"learned, {label}-scored photo")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_title(block, fontsize=9)
    reference_spread[block] = {"learned": float(references[:, 0].reshape(len(test_ids), -1, 2).std(dim=1).mean()),
                               "DAT grid": float(grid.std(dim=0).mean())}
axes[0, 0].legend(fontsize=7)
plt.tight_layout()
plt.show()
pd.DataFrame(reference_spread).T.round(3).rename_axis("spread (std of the points, normalised units)")

# %% [markdown]
# In this small model the learned points cover less of the map than the grid (their spread over the 15
# test photos, in the table, is smaller) and for some photos, like the two drawn, they crowd into a small
# region. Nothing in EAT forces them to spread: the reference map
# is tanh of a 1x1 convolution of the block input, trained only through the score loss. Every query then
# samples its keys around the same few places ("interest points"), shifted by its own offsets. Whether the
# published DAT-B model behaves the same could only be checked with its released weights (`load_official_checkpoint`).

# %% [markdown]
# ## Attention maps per stage
#
# Stage 1 (window attention): how much attention each position receives, averaged over queries and
# heads. Stages 2 and 3 (deformable blocks): the attention of the centre query over the sampled keys,
# each drawn at its sampling position (size and colour = weight, heads of group 0 averaged).

# %%
def received_attention(weights: torch.Tensor, fmap: int, window: int) -> torch.Tensor:
    """(nW, heads, N, N) window attention of one image -> (fmap, fmap) attention received per position."""
    per_key = weights.mean(dim=(1, 2))  # (nW, N)
    r = fmap // window
    return per_key.view(r, r, window, window).permute(0, 2, 1, 3).reshape(fmap, fmap)


fig, axes = plt.subplots(len(picked), 1 + len(model.stages), figsize=(3.4 * (1 + len(model.stages)), 3.5 * len(picked)), squeeze=False)
for row, (index, photo) in enumerate(zip(picked, photos)):
    axes[row, 0].imshow(photo)
    axes[row, 0].set_title(labels[row], fontsize=8)
    for stage, module_stage in enumerate(model.stages):
        ax = axes[row, stage + 1]
        ax.imshow(photo)
        name = next((n for n in blocks if n.startswith(f"stages.{stage}.")), f"stages.{stage}.attns.0")
        weights = attention[name][index]
        if weights.ndim == 4:  # window attention (nW, heads, N, N)
            window = module_stage.attns[0].window_size
            fmap = model.cfg.feature_sizes[stage]
            heat = received_attention(weights, fmap, window)
            ax.imshow(heat, extent=(0, display_size, display_size, 0), cmap="inferno", alpha=0.6)
        else:  # deformable (heads, H, W, H, W)
            block = blocks.index(name)
            size = weights.shape[1]
            heads_per_group = weights.shape[0] // out["positions"][block].shape[1]
            centre = weights[:heads_per_group, size // 2, size // 2].mean(0).reshape(-1)
            points = normalised_to_pixels(out["positions"][block][index, 0], size, display_size).reshape(-1, 2)
            ax.scatter(points[:, 1], points[:, 0], s=250 * centre / centre.max(), c=centre, cmap="inferno", edgecolors="white", linewidths=0.5)
            query = normalised_to_pixels(uniform_grid(size, size)[size // 2, size // 2], size, display_size)
            ax.scatter([query[1]], [query[0]], marker="x", color="cyan", s=80)
        ax.set_title(f"stage {stage + 1}: {name}", fontsize=8)
        ax.set_xlim(0, display_size)
        ax.set_ylim(display_size, 0)
        ax.axis("off")
    axes[row, 0].axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Relative-position bias tables
#
# Each deformable block reads its bias bilinearly from a table of $(2H-1)\times(2W-1)$ displacements per
# head (the centre is zero displacement). First heads of each block:

# %%
fig, axes = plt.subplots(1, 2 * len(blocks), figsize=(3 * 2 * len(blocks), 3), squeeze=False)
for b, (block, module) in enumerate(model.deformable_blocks()):
    for h in range(2):
        ax = axes[0, 2 * b + h]
        table = module.rpe_table[h].detach()
        image = ax.imshow(table, cmap="coolwarm", vmin=-table.abs().max(), vmax=table.abs().max())
        ax.set_title(f"{block}, head {h}", fontsize=8)
        ax.axis("off")
        fig.colorbar(image, ax=ax, fraction=0.046)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Integrated gradients beside the sampling points
#
# Which pixels raise the predicted score (red) or lower it (blue), from a black image (the normalised
# zero-intensity image) to the photo. IG's completeness check: the attributions sum to the score change.

# %%
def score_fn(x: torch.Tensor) -> torch.Tensor:
    return predicted_mos(model(x)["pred"])


mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
inputs = images[picked]
baseline = ((0 - mean) / std).expand_as(inputs)
ig = IntegratedGradients(score_fn)
attributions, delta = ig.attribute(inputs, baselines=baseline, n_steps=settings.ig_steps, return_convergence_delta=True)
fig, axes = plt.subplots(len(picked), 3, figsize=(10, 3.5 * len(picked)), squeeze=False)
last = len(blocks) - 1
for row, (index, photo) in enumerate(zip(picked, photos)):
    heat = attributions[row].sum(0).detach()
    limit = float(heat.abs().max())
    axes[row, 0].imshow(photo)
    axes[row, 0].set_title(labels[row], fontsize=8)
    axes[row, 1].imshow(heat, cmap="bwr", vmin=-limit, vmax=limit)
    axes[row, 1].set_title(f"integrated gradients (delta {float(delta[row]):+.3f})", fontsize=8)
    axes[row, 2].imshow(photo)
    size = out["positions"][last].shape[2]
    for group in range(out["positions"][last].shape[1]):
        pts = normalised_to_pixels(out["positions"][last][index, group], size, display_size).reshape(-1, 2)
        axes[row, 2].scatter(pts[:, 1], pts[:, 0], s=14, label=f"group {group}")
    axes[row, 2].set_title(f"sampling points, {blocks[last]}", fontsize=8)
    axes[row, 2].set_xlim(0, display_size)
    axes[row, 2].set_ylim(display_size, 0)
    for ax in axes[row]:
        ax.axis("off")
axes[0, 2].legend(fontsize=6, loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The batch-dependence demo
#
# The as-published model averages its reference points over the batch. The same photo is scored alone
# and with different batch companions; the last row is the largest change of its score. The textbook
# model (per-image references) gives the same score every time.

# %%
photo = images[picked[0]:picked[0] + 1]
others = images[[i for i in range(len(images)) if i != picked[0]]]
image_size = settings.image_size
noise = torch.randn(15, 3, image_size, image_size, generator=torch.Generator().manual_seed(seed))
companions = {"alone": photo,
              "with 3 dark images": torch.cat([photo, ((0.1 - mean) / std).expand(3, 3, image_size, image_size)]),
              "with 3 bright images": torch.cat([photo, ((0.9 - mean) / std).expand(3, 3, image_size, image_size)]),
              f"with the {len(others)} other test photos": torch.cat([photo, others]),
              "with 15 noise images": torch.cat([photo, noise])}
with torch.no_grad():
    demo = pd.DataFrame({
        name: {setting: float(predicted_mos(m(batch)["pred"])[0]) for setting, batch in companions.items()}
        for name, m in (("eat_textbook", model), ("eat_as_published", published))
    })
demo.loc["largest change"] = demo.max() - demo.min()
demo.round(4)

# %%
from iaa_lib.book.runner import record_metrics

record_metrics(metrics_file, {
    "highest_score": float(scores[picked[0]]),
    "lowest_score": float(scores[picked[1]]),
    "offset_kept_fraction": kept_fraction,
    "ig_convergence_delta_max": float(delta.abs().max()),
    "batch_dependence_range_textbook": float(demo.loc["largest change", "eat_textbook"]),
    "batch_dependence_range_as_published": float(demo.loc["largest change", "eat_as_published"]),
    "n_test_photos": len(test_ids),
    "reference_spread": reference_spread,
    "weights": settings.weights,
    "max_steps": settings.max_steps,
    "config": settings.config,
    "image_size": settings.image_size,
    "ig_steps": settings.ig_steps,
    "n_parameters": sum(p.numel() for p in model.parameters()),
})
