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
# # Comparison 4 · Results you can cite
#
# > Every number this build of the book recorded, with the command that reproduces it, the commit, the hardware
# > and the seed.
#
# **How the numbers get here.** Each notebook writes its numbers to a metrics JSON file. When a notebook runs
# through `python -m iaa_lib run` (which is how `bash .ci/book` and the tests run every notebook), the runner
# stamps that file with a provenance record: the exact command, the git commit (`+dirty` when tracked files had
# uncommitted changes), the CPU and GPU, the seed, the library versions and the time taken. A number a notebook
# copies from a recorded file (the committed benchmark table) keeps that file's own provenance (its command,
# commit, date and hardware) and names the file in the column `copied_from`. This page reads those files; it
# computes nothing itself, so it shows exactly what was recorded. A notebook run by hand in
# Jupyter records its numbers without provenance and is marked so below; a notebook that has not run shows
# the command that would record its numbers.
#
# **To cite a number**, quote it with its row: value, notebook, commit, command, hardware and seed. Numbers from
# a commit marked `+dirty` cannot be reproduced from the repository alone. Smoke numbers come from the CPU smoke
# profiles on small data; only `profile = "full"` runs are comparable with the papers, and only on the same
# split id (see the conventions page).

# %% tags=["parameters"]
out_csv = "runs/99_compare/citable_results.csv"
metrics_file = "runs/99_compare/04_results_to_cite.json"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from iaa_lib.book.build import toc_notebooks
from iaa_lib.book.runner import record_metrics
from iaa_lib.paths import resolve
from iaa_lib.book.results import citation_table, metric_like, provenance_table, recorded_by_notebook

this_page = Path("04_results_to_cite.py").resolve()
recorded = recorded_by_notebook([nb for nb in toc_notebooks() if nb.resolve() != this_page])
pd.set_option("display.max_colwidth", 90)

# %% [markdown]
# ## Provenance of every notebook in this build

# %%
provenance = provenance_table(recorded)
provenance.drop(columns=["hardware"])

# %%
print("hardware:", *sorted(provenance["hardware"].dropna().unique()), sep="\n  ")
print("commits:", ", ".join(sorted(provenance["commit"].dropna().unique())) or "none recorded")

# %% [markdown]
# Where the build's time went (wall-clock seconds per notebook, as recorded):

# %%
timed = provenance.dropna(subset=["seconds"])
fig, ax = plt.subplots(figsize=(7, 0.22 * max(len(timed), 4) + 0.8))
ax.barh(timed["notebook"], timed["seconds"])
ax.invert_yaxis()
ax.set(xlabel="seconds", title=f"{timed['seconds'].sum() / 60:.1f} min over {len(timed)} notebooks")
ax.tick_params(axis="y", labelsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The comparison table (chapter "Comparison", notebook 1)
#
# Test-set metrics of the six models under one protocol, with 95 % paired-bootstrap intervals.

# %%
comparison = recorded.get(resolve("notebooks/99_compare/01_results.py"))
if comparison is None:
    print("not recorded in this build: run  python -m iaa_lib run notebooks/99_compare/01_results.py")
else:
    entries = {key: value for key, value in comparison.items() if isinstance(value, dict) and "srcc" in value}
    table = pd.DataFrame(entries).T
    table.index = pd.MultiIndex.from_tuples([tuple(k.split(".", 1)) for k in table.index], names=["protocol", "model"])
    columns = [c for c in ("srcc", "srcc_low", "srcc_high", "plcc", "krcc", "acc", "emd1", "emd2", "n") if c in table]
    print({k: comparison["provenance"][k] for k in ("command", "commit", "seed")} if "provenance" in comparison else "")
    display(table[columns].astype(float).round(3))

# %% [markdown]
# ## Every metric-like number
#
# SRCC, PLCC, KRCC, accuracy, EMD, throughput, size and memory, with their provenance. The CSV written below holds
# every recorded number, these and the rest (losses, counts, diagnostics).

# %%
everything = citation_table(recorded)
cited = metric_like(everything)
csv_path = resolve(out_csv)
csv_path.parent.mkdir(parents=True, exist_ok=True)
everything.to_csv(csv_path, index=False)
print(f"{len(everything)} numbers from {everything['notebook'].nunique()} notebooks written to {csv_path}")
with pd.option_context("display.max_rows", None):
    display(cited.drop(columns=["hardware", "command"]).round(4))

# %%
_ = record_metrics(metrics_file, {
    "n_notebooks": len(provenance),
    "n_recorded": int((provenance["status"] == "recorded").sum()),
    "n_not_run": int((provenance["status"] == "not run").sum()),
    "n_without_provenance": int((provenance["status"] == "interactive run, no provenance").sum()),
    "n_numbers": len(everything),
    "n_cited_numbers": len(cited),
    "commits": sorted(provenance["commit"].dropna().unique()),
})
