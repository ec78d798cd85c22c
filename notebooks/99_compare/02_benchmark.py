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
# # Comparison 2 · Speed, size and memory of the six models
#
# > Parameters, forward FLOPs, inference and training throughput and peak memory of every model at its
# > paper configuration, measured on this machine.
#
# **What is measured.** For NIMA (Inception-v3), EAT-base, MILNet, SSMR, CDCM-Net and CG-IAA at their `full`
# configuration (each paper's `bench` in `iaa_lib/<paper>/spec.py`), with random weights (speed does not depend on the weights):
# parameters; forward GFLOPs per image from `torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per
# multiply-add, so about twice the "FLOPs" = MACs that papers quote; matmul, convolution and attention only,
# not elementwise ops, normalisation or EAT's grid_sample); inference img/s (eval, no grad) and training img/s
# (forward, stand-in loss mean(pred²), backward, AdamW step), warm-up steps not timed; peak memory, which on a
# CPU is the peak resident set size of a fresh process (it includes about 0.5 GiB of Python and torch runtime,
# column `runtime_mem_mib`) and on a GPU `torch.cuda.max_memory_allocated`.
#
# **Known deviations.** The inputs are not the same kind for every model, so img/s are not comparable across
# rows without the `input` column: NIMA, EAT and CG-IAA take 224 px images (CG-IAA also four tokenised
# critiques, whose generation by the GPT-2 experts is not included); MILNet, SSMR and CDCM-Net take features
# of frozen extractors (MLSP Inception-ResNet-v2, Swin-V2, CLIP ViT-B/32) that the papers compute once and
# cache, so only their heads are timed. NIMA runs at 224 px as in its training recipe, not at Inception-v3's
# native 299 px. The smoke profile times **one step without warm-up at batch 1** on a shared 2-core CPU, and
# its train rows share a process with the inference run (`mem_kind = cpu_rss_after_infer`): its numbers are
# rough. The recorded table below (batch 4, one thread, the median of 3 timed steps after a warm-up, a fresh
# process per measurement) is the one to quote; `profile = "full"` measures on a GPU when there is one (fp32 and bf16, eager and
# `torch.compile`).

# %% tags=["parameters"]
profile = "smoke"
models = "nima,eat,milnet,ssmr,cdcm,cgiaa"
config = "full"
device = "cpu"
batch_size = 1
steps = 1
warmup = 0
threads = 1
isolate = "model"
precisions = "default"
compiled = "default"
recorded_csv = "benchmarks/results/models_cpu.csv"
out_dir = "runs/99_compare/benchmark"
metrics_file = "runs/99_compare/02_benchmark.json"

# %%
from iaa_lib.book.profiles import BENCHMARK_PROFILES

settings = BENCHMARK_PROFILES.resolve(profile, globals())
device, batch_size, steps, warmup = settings.device, settings.batch_size, settings.steps, settings.warmup
threads, isolate, precisions, compiled = settings.threads, settings.isolate, settings.precisions, settings.compiled

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from iaa_lib.book.bench import metrics_by_model, plot_benchmark, run_benchmarks, save_results, summary_table
from iaa_lib.book.provenance import results_provenance
from iaa_lib.book.runner import record_metrics
from iaa_lib.paths import resolve

# %% [markdown]
# Every model runs in its own Python process, so the peak memory of one does not leak into the next. The
# benchmark below takes about a minute in the smoke profile.

# %%
start = time.perf_counter()
frame = run_benchmarks(
    models.split(","), device=device, batch_size=batch_size, steps=steps, warmup=warmup,
    precisions=None if precisions == "default" else precisions.split(","),
    compiled=None if compiled == "default" else [c == "on" for c in compiled.split(",")],
    threads=threads or None, config=config, isolate=isolate)
benchmark_seconds = time.perf_counter() - start
csv_path, md_path = save_results(frame, resolve(out_dir) / "models.csv",
                                 f"notebooks/99_compare/02_benchmark.py, profile={profile!r}")
print(f"{len(frame)} measurements in {benchmark_seconds:.0f} s on {frame['device_name'].iloc[0]}; saved {csv_path}")
summary_table(frame)

# %% [markdown]
# Throughput on a log axis (left) and forward cost against inference speed (right; marker area grows with the
# number of parameters). The end-to-end image models (EAT-base, CG-IAA, NIMA) sit at the expensive end; the
# feature-based heads (MILNet, SSMR, CDCM-Net) are cheap because their extractors run once, offline.

# %%
plot_benchmark(frame)
plt.show()

# %% [markdown]
# ## The recorded table
#
# The committed run, with more steps and a warm-up, next to this run's numbers. The command, date, git revision
# and CPU are in the header of its markdown file and in its provenance record; the recorded numbers keep that
# provenance in this notebook's metrics (and on the citable-results page), not this build's. Times on the shared
# machine are upper bounds.

# %%
recorded_path = resolve(recorded_csv)
display(Markdown(recorded_path.with_suffix(".md").read_text().split("\n\n")[0]))
recorded = pd.read_csv(recorded_path)
keys = ["model", "mode", "device", "precision", "compiled"]
side_by_side = recorded[keys + ["params_m", "gflops_per_image", "img_per_s", "peak_mem_mib"]].merge(
    frame[keys + ["img_per_s", "peak_mem_mib"]], on=keys, how="left", suffixes=("_recorded", "_this_run"))
side_by_side.round(2)

# %%
recorded_provenance = {**results_provenance(recorded_path), "source": recorded_csv}
metrics = {"benchmark_seconds": benchmark_seconds, "profile": profile, "batch_size": batch_size, "steps": steps,
           "device_name": frame["device_name"].iloc[0], "models": metrics_by_model(frame),
           "recorded": {"models": metrics_by_model(recorded), "provenance": recorded_provenance}}
record_metrics(metrics_file, metrics)
pd.DataFrame(metrics["models"]).T
