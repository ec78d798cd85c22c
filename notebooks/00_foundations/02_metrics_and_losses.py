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
# # Foundations 2 · Metrics and losses: SRCC, PLCC, accuracy and the EMD variants
#
# > The numbers every chapter reports, and what the as-published loss variants of EAT and MILNet change.
#
# **What is shown.** The metrics of `iaa_lib.metrics` and the losses of `iaa_lib.losses`, computed on
# real AVA vote histograms: the textbook EMD, EAT's batch-pooled EMD, MILNet's training distance
# (absolute value inside the partial sum) and its adaptive AdaEMD, each beside the textbook form.
# **Known deviations.** The "predictions" here are synthetic perturbations of the true histograms,
# so that the losses can be compared on the same inputs; no model is trained in this notebook.

# %% tags=["parameters"]
ava_votes_file = "data/labels/ava_votes.csv.gz"
n_images = 4000
noise = 0.6
batch_size = 16
ada_epochs = 6
seed = 0
metrics_file = "runs/00_foundations/02_metrics_and_losses.json"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy.stats import wasserstein_distance

from iaa_lib.data.labels import DIST_COLUMNS, read_ava_votes
from iaa_lib.losses import AdaEMDLoss, emd_loss, milnet_distance
from iaa_lib.metrics import accuracy, dist_to_mean, emd, score_metrics, srcc
from iaa_lib.paths import resolve

torch.manual_seed(seed)
rng = np.random.default_rng(seed)

# %% [markdown]
# ## Real histograms and a noisy predictor
#
# We draw real AVA histograms `dist` and build predictions `pred_dist` by perturbing their logits with
# Gaussian noise: a stand-in for a model that is right on average and wrong per image.

# %%
ava = read_ava_votes(resolve(ava_votes_file)).sample(n_images, random_state=seed)
dist = torch.tensor(ava[DIST_COLUMNS].to_numpy(), dtype=torch.float64)
logits = torch.log(dist + 1e-3) + noise * torch.randn(dist.shape, dtype=torch.float64)
pred_dist = torch.softmax(logits, dim=1)
mos, pred_mos = dist_to_mean(dist), dist_to_mean(pred_dist)
metrics = score_metrics(pred_mos, mos, pred_dist, dist)
pd.Series(metrics).round(4).to_frame("noisy predictor").T

# %% [markdown]
# ## EMD as a distance between histograms
#
# With $K$ bins and $\Delta\mathrm{CDF}_k = \sum_{j\le k}(q_j - p_j)$,
# $\mathrm{EMD}_r(p, q) = \big(\tfrac1K \sum_k |\Delta\mathrm{CDF}_k|^r\big)^{1/r}$. For $r = 1$ it is the
# 1-Wasserstein distance between the two score distributions divided by $K$, which we check against
# scipy's independent implementation:

# %%
subset = range(200)
ours = np.array([emd(pred_dist[i:i + 1], dist[i:i + 1], r=1) for i in subset])
scipy_w1 = np.array([wasserstein_distance(np.arange(1, 11), np.arange(1, 11), pred_dist[i], dist[i]) / 10
                     for i in subset])
identity_error = float(np.abs(ours - scipy_w1).max())
print(f"max |EMD1 - W1/K| over {len(subset)} pairs: {identity_error:.2e}")

# %% [markdown]
# The hand-worked case $K = 2$, $p = (1, 0)$, $q = (0, 1)$ gives $\mathrm{EMD}_1 = 0.5$,
# $\mathrm{EMD}_2 = \sqrt{1/2} = 0.7071$ and MILNet's distance $\sqrt{(1 + 2^2)/2} = 1.5811$:

# %%
p_toy, q_toy = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
toy = {"EMD r=1": emd_loss(q_toy, p_toy, r=1).item(), "EMD r=2": emd_loss(q_toy, p_toy, r=2).item(),
       "MILNet d": milnet_distance(q_toy, p_toy).item()}
pd.Series(toy).round(4).to_frame("K = 2 toy").T

# %% [markdown]
# ## The variants side by side on the same predictions
#
# * `sample` (NIMA, the book's default): the root per image, then the mean over the batch.
# * `batch_pooled` (EAT's `EDMLoss` as published): one root over batch **and** bins. Equal for $r = 1$,
#   never smaller for $r = 2$ (Jensen), and the gap depends on the batch.
# * MILNet's training distance puts $|\cdot|$ inside the partial sum: an upper bound, not an EMD.

# %%
batches = torch.split(torch.arange(n_images), batch_size)


def per_batch(fn):
    return float(np.mean([fn(pred_dist[b], dist[b]).item() for b in batches]))


variants = pd.DataFrame({
    "r = 1": [per_batch(lambda q, p: emd_loss(q, p, r=1, reduction="sample")),
              per_batch(lambda q, p: emd_loss(q, p, r=1, reduction="batch_pooled")), np.nan],
    "r = 2": [per_batch(lambda q, p: emd_loss(q, p, r=2, reduction="sample")),
              per_batch(lambda q, p: emd_loss(q, p, r=2, reduction="batch_pooled")),
              per_batch(lambda q, p: milnet_distance(q, p).mean())],
}, index=["sample (textbook)", "batch_pooled (EAT)", "abs inside (MILNet)"])
variants.round(4)

# %%
per_image_emd2 = emd_loss(pred_dist, dist, r=2, reduction="none")
per_image_milnet = milnet_distance(pred_dist, dist)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].scatter(per_image_emd2, per_image_milnet, s=3, alpha=0.4)
axes[0].plot([0, per_image_emd2.max()], [0, per_image_emd2.max()], color="grey", ls="--", lw=1)
axes[0].set(xlabel="true EMD (r = 2)", ylabel="MILNet distance", title="MILNet's distance is an upper bound")
sizes = [1, 2, 4, 8, 16, 32, 64, 128]
ratio = [np.mean([(emd_loss(pred_dist[b], dist[b], 2, "batch_pooled")
                   / emd_loss(pred_dist[b], dist[b], 2, "sample")).item()
                  for b in torch.split(torch.arange(n_images), size)]) for size in sizes]
axes[1].plot(sizes, ratio, marker="o")
axes[1].set(xscale="log", xlabel="batch size", ylabel="batch_pooled / sample",
            title="EAT's pooled loss grows with the batch")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Correlations are computed over the whole test set
#
# Averaging SRCC over evaluation batches is not the same number: small batches give noisy, biased
# estimates. The book always computes metrics once over all test images.

# %%
whole = srcc(pred_mos, mos)
per_batch_srcc = float(np.mean([srcc(pred_mos[b], mos[b]) for b in batches]))
print(f"SRCC over all {n_images} images: {whole:.4f}; mean SRCC over batches of {batch_size}: "
      f"{per_batch_srcc:.4f}")

# %% [markdown]
# Binary accuracy uses the same threshold rule on prediction and truth; the rule matters only at 5.0:

# %%
edge_true, edge_pred = np.array([5.0, 5.0, 6.0, 4.0]), np.array([5.0, 5.2, 6.1, 4.9])
pd.DataFrame({"rule": ["gt", "ge"],
              "acc on the edge case": [accuracy(edge_pred, edge_true, high_if=h) for h in ("gt", "ge")]})

# %% [markdown]
# ## AdaEMD: what MILNet's adaptive loss really does
#
# Per sample $\ell = d$ if $d < \tau$, else $(C + d)\,d$, where $C$ is (almost) the previous batch
# loss and $\tau$ the previous epoch's mean loss. The gradient of a "hard" sample is $(C + 2d)\nabla d$:
# when $C + 2d < 1$ hard samples are **down**-weighted, not up-weighted.

# %%
d = np.linspace(0, 0.6, 200)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
for C in (0.0, 0.1, 0.3):
    tau = 0.2
    axes[0].plot(d, np.where(d < tau, d, (C + d) * d), label=f"C = {C}")
    axes[1].plot(d, np.where(d < tau, 1.0, C + 2 * d), label=f"C = {C}")
axes[0].set(xlabel="d", ylabel="loss", title="AdaEMD loss (τ = 0.2)")
axes[1].set(xlabel="d", ylabel="gradient weight vs plain d", title="weight of a sample's gradient")
axes[1].axhline(1, color="grey", lw=1, ls="--")
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# A live run: free logits per image fitted to the real histograms with AdaEMD, correct inner distance
# (true EMD, the default) against the as-published one (absolute value inside the sum).

# %%
def fit_free_logits(inner: str) -> pd.DataFrame:
    torch.manual_seed(seed)
    free = torch.zeros(n_images, 10, requires_grad=True)
    loss_fn = AdaEMDLoss(inner=inner)
    optimiser = torch.optim.Adam([free], lr=0.05)
    rows = []
    for epoch in range(ada_epochs):
        for batch in torch.split(torch.randperm(n_images), 128):
            loss = loss_fn(torch.softmax(free[batch], 1), dist[batch].float())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        loss_fn.on_epoch_end()
        fitted = torch.softmax(free.detach(), 1)
        rows.append({"inner": inner, "epoch": epoch + 1, "C": loss_fn.C.item(), "tau": loss_fn.tau.item(),
                     "hard_fraction": loss_fn.hard_fraction.item(),
                     "true EMD2": emd(fitted, dist, r=2)})
    return pd.DataFrame(rows)


ada = pd.concat([fit_free_logits("true_emd"), fit_free_logits("milnet_abs_inside")])
fig, axes = plt.subplots(1, 3, figsize=(13, 3))
for inner, rows in ada.groupby("inner"):
    axes[0].plot(rows["epoch"], rows["tau"], marker="o", label=inner)
    axes[1].plot(rows["epoch"], rows["hard_fraction"], marker="o", label=inner)
    axes[2].plot(rows["epoch"], rows["true EMD2"], marker="o", label=inner)
axes[0].set(xlabel="epoch", ylabel="τ")
axes[1].set(xlabel="epoch", ylabel="hard fraction (last batch)")
axes[2].set(xlabel="epoch", ylabel="true EMD (r = 2) of the fit")
axes[2].legend()
plt.tight_layout()
plt.show()

# %%
from iaa_lib.book.runner import record_metrics

final = ada.groupby("inner").last()
record_metrics(metrics_file, {
    "noisy_predictor": metrics,
    "emd1_vs_scipy_max_error": identity_error,
    "toy": toy,
    "batch_pooled_over_sample_r2": float(variants.loc["batch_pooled (EAT)", "r = 2"]
                                         / variants.loc["sample (textbook)", "r = 2"]),
    "milnet_over_emd_r2": float(variants.loc["abs inside (MILNet)", "r = 2"]
                                / variants.loc["sample (textbook)", "r = 2"]),
    "srcc_whole": whole,
    "srcc_mean_of_batches": per_batch_srcc,
    "adaemd_final_emd2": final["true EMD2"].to_dict(),
    "adaemd_first_emd2": ada.groupby("inner").first()["true EMD2"].to_dict(),
})
