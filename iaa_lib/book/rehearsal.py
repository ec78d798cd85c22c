"""The rehearsal: every book notebook's full profile run end to end on the miniature AVA copy, a couple of steps.

``rehearse(folder)`` builds the miniature AVA (``iaa_lib.data.mini_ava``) and its data-check manifest in `folder`,
then executes every notebook of _toc.yml whose parameters cell has the rehearsal switches (profile, manifest,
max_steps, weights) with

    -p profile full -p manifest <folder>/mini_ava/manifest.csv -p max_steps 2 -p weights random

plus the notebook's entry in EXTRA_PARAMETERS, two chapters side by side and each notebook in its own kernel
(``iaa_lib.book.build.execute_notebooks``), its outputs under <folder>/runs (IAA_RUNS_DIR) and its executed copy
under <folder>/executed. Returns name -> {seconds, peak_rss_mib, metrics, parameters}; ``write_rehearsal_timings``
writes the time table (CSV + markdown).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from iaa_lib.book.build import execute_notebooks, toc_notebooks, write_timings
from iaa_lib.book.runner import notebook_parameters, read_notebook
from iaa_lib.paths import REPO_ROOT

REHEARSAL_MAX_STEPS = 2
SWITCHES = ("profile", "manifest", "max_steps", "weights")
REHEARSAL_BUDGET_S = 360  # the whole rehearsal, 2-core CPU (issue 16)
CELL_TIMEOUT_S = 1800  # a full-size training cell on a shared CPU (the book build's 600 s is for smoke cells)
TIMINGS_STEM = "rehearsal_timings"
RELEASED_CHECKPOINT = "EAT_AVA_official_layout_random.pth"  # written by `prepare`, read by eat/03_evaluate
# What a notebook's rehearsal passes beyond the switches, each with its reason in the notebook's prose:
# DAT-B at 224 px trains at about 5 s an image on 2 CPU cores and needs about 6.5 GB at batch 16 (eat/02_train);
# integrated gradients costs ig_steps DAT-B passes per photo (eat/04_attention); the baseline's synthetic set
# stands in for data (4,000 generated 224 px images in the full profile) and Inception-v3 at batch 64 needs
# minutes a step (00_foundations/03_baseline).
EXTRA_PARAMETERS: dict[str, dict[str, Any]] = {
    "notebooks/00_foundations/03_baseline": {"batch_size": 4, "n_synthetic": 60},
    "notebooks/eat/02_train": {"batch_size": 2},
    "notebooks/eat/03_evaluate": {"batch_size": 2, "official_checkpoint": f"<folder>/{RELEASED_CHECKPOINT}"},
    "notebooks/eat/04_attention": {"batch_size": 2, "ig_steps": 4},
    **{f"notebooks/milnet/{name}": {"n_synthetic": 60}
       for name in ("01_references", "02_train", "03_evaluate", "04_graph")},
    "notebooks/ssmr/02_train": {"n_synthetic": 40},
    "notebooks/ssmr/03_evaluate": {"n_synthetic": 40},
    "notebooks/cdcm/01_data": {"n_synthetic": 64, "min_sentences": 0, "n_dpc": 16},
    **{f"notebooks/cdcm/{name}": {"n_synthetic": 64, "min_sentences": 0}
       for name in ("02_train", "03_evaluate", "04_memory")},
    "notebooks/cgiaa/01_pretraining": {"dpc_critiques": 64},
    "notebooks/cgiaa/02_critiques": {"max_generate": 2, "expert_batch": 8},
    "notebooks/cgiaa/03_scoring": {"max_generate": 2, "expert_batch": 8},
    "notebooks/cgiaa/04_explain": {"max_generate": 2, "expert_batch": 8, "ig_steps": 2},
}


def rehearsal_notebooks(root: Path = REPO_ROOT) -> list[str]:
    """The book's notebooks (repo-relative names, no suffix) whose parameters cell has every rehearsal switch."""
    names = []
    for path in toc_notebooks(root):
        if all(switch in notebook_parameters(read_notebook(path)) for switch in SWITCHES):
            names.append(str(path.relative_to(root).with_suffix("")))
    return names


def prepare(folder: Path) -> Path:
    """Build the miniature AVA in <folder>/mini_ava, its manifest (the data check, which reports the copy's
    deliberate defects) and the released-layout EAT checkpoint; return the manifest's path."""
    import torch

    from iaa_lib.data.check import check_dataset, write_manifest
    from iaa_lib.data.mini_ava import build_mini_ava
    from iaa_lib.eat.model import EAT
    from iaa_lib.eat.pipeline import save_official_layout

    mini = build_mini_ava(folder / "mini_ava")
    manifest = write_manifest(check_dataset("ava", mini.root, progress=False), mini.root / "manifest.csv")
    torch.manual_seed(0)  # random-init DAT-B as published, saved as the official AVA file is laid out
    save_official_layout(EAT(config="full", variant="eat_as_published"), folder / RELEASED_CHECKPOINT)
    return manifest


def rehearsal_parameters(name: str, folder: Path, manifest: Path) -> dict[str, Any]:
    """The parameters notebook `name` is rehearsed with (module docstring)."""
    extra = {key: value.replace("<folder>", str(folder)) if isinstance(value, str) else value
             for key, value in EXTRA_PARAMETERS.get(name, {}).items()}
    return {"profile": "full", "manifest": str(manifest), "max_steps": REHEARSAL_MAX_STEPS, "weights": "random",
            **extra}


def rehearse(folder: str | os.PathLike, jobs: int = 2, log=print, root: Path = REPO_ROOT,
             only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Rehearse every notebook that supports it (or the names in `only`) in `folder` (created, module docstring);
    return name -> {seconds, peak_rss_mib, metrics, parameters}."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    supported = rehearsal_notebooks(root)
    unknown = sorted(set(only or ()) - set(supported))
    if unknown:
        raise ValueError(f"not rehearsable (no {', '.join(SWITCHES)} parameters, or not in _toc.yml): {unknown}; "
                         f"rehearsable: {supported}")
    chosen = set(only or supported)
    log(f"building the miniature AVA and its manifest in {folder} ...")
    manifest = prepare(folder)
    env = {**os.environ, "IAA_RUNS_DIR": str(folder / "runs")}
    passed = {name: rehearsal_parameters(name, folder, manifest) for name in chosen}
    runs = execute_notebooks(root, jobs=jobs, log=log, parameters=passed.get, output_dir=folder / "executed",
                             env=env, cell_timeout_s=CELL_TIMEOUT_S)
    return {name: {**run, "parameters": passed[name]} for name, run in runs.items()}


def write_rehearsal_timings(runs: dict[str, dict[str, Any]], wall_seconds: float, out_dir: Path,
                            command: str = "python -m iaa_lib book --rehearse") -> Path:
    """The rehearsal's time table as <out_dir>/rehearsal_timings.csv and .md (budget: the whole rehearsal's)."""
    return write_timings(runs, wall_seconds, out_dir, command, stem=TIMINGS_STEM, budget_s=REHEARSAL_BUDGET_S)


def rehearse_and_record(folder: str | os.PathLike, out_dir: Path = REPO_ROOT / "_build", jobs: int = 2,
                        log=print) -> dict[str, dict[str, Any]]:
    """rehearse(folder), then write the time table into out_dir; return the runs."""
    start = time.perf_counter()
    runs = rehearse(folder, jobs=jobs, log=log)
    csv_path = write_rehearsal_timings(runs, time.perf_counter() - start, out_dir)
    log(f"rehearsed {len(runs)} notebooks in {time.perf_counter() - start:.0f} s; times in {csv_path.with_suffix('.md')}")
    return runs
