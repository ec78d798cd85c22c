"""One protocol for every model of the book: the same images, split and labels, each model trained with its
chapter's recipe, all scored by the same metrics with paired bootstrap confidence intervals.

``load_protocol(dataset, ...)`` gives the shared data; ``train_and_predict(model, data, profile, run_dir)`` trains
(or loads, through ``fit_or_load``) one model and returns its test predictions plus what its visualisation
needs; ``start``, ``protocol_data`` and ``train_models`` do the same from a notebook's ``ComparisonSettings``;
``bootstrap_metrics`` scores a set of runs once, and ``results_table`` and ``paired_differences`` read it;
``disagreement`` ranks the test images by how much the models disagree about them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from iaa_lib.book.profiles import ComparisonSettings
from iaa_lib.data.labelled_sets import labelled_set
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.data.sample import load_dpc_comments, load_sample_comments
from iaa_lib.data.splits import apply_split, assert_disjoint
from iaa_lib.data.sota import sota_table
from iaa_lib.metrics import bootstrap_rows, score_metrics
from iaa_lib.models import PAPERS, paper_spec, paper_specs
from iaa_lib.paths import resolve
from iaa_lib.profiles import PROFILE_NAMES
from iaa_lib.seed import seed_and_threads

PROFILES = PROFILE_NAMES  # the chapters' profile names, from the core
METRICS = ("srcc", "plcc", "krcc", "acc", "emd1", "emd2")
@dataclass
class ProtocolData:
    """The shared data: one label frame (image_id, path, mos, dist_1..10, comments), one split, one name."""

    dataset: str
    frame: pd.DataFrame
    splits: dict[str, list[str]]

    def parts(self) -> dict[str, pd.DataFrame]:
        """{split: rows of the frame}, in split order."""
        return apply_split(self.frame, self.splits)

    def describe(self) -> str:
        """E.g. "synthetic, 180 / 60 / 60 (train / val / test)"."""
        counts = " / ".join(str(len(self.splits[s])) for s in ("train", "val", "test"))
        return f"{self.dataset}, {counts} (train / val / test)"


def load_protocol(dataset: str, run_dir: str | os.PathLike = "runs/99_compare", n_synthetic: int = 300,
                  synthetic_size: int = 96, data_root: str | None = None, test_list: str | None = None,
                  seed: int = 0) -> ProtocolData:
    """The protocol's data: "synthetic" (60/20/20), "ava_sample" (its fixed 46/16/15) or "ava" (data_root + test_list).

    Comments: the synthetic set's own critiques; the sample's real comments (16 photos); for full AVA the
    shipped DPC critiques (the others get none). Only the training split's comments are ever used for training.
    """
    frame, image_dir, splits = labelled_set(dataset, run_dir=run_dir, n_synthetic=n_synthetic,
                                            synthetic_size=synthetic_size, data_root=data_root, test_list=test_list,
                                            seed=seed)
    assert_disjoint(splits)
    frame = frame.copy()
    if "path" not in frame.columns:
        frame["path"] = [str(Path(image_dir) / f"{i}.jpg") for i in frame["image_id"]]
    if "comments" not in frame.columns:
        comments = load_sample_comments(data_root or None) if dataset == "ava_sample" else load_dpc_comments()
        frame["comments"] = [list(comments.get(str(i), [])) for i in frame["image_id"]]
    return ProtocolData(dataset, frame.reset_index(drop=True), {k: list(map(str, v)) for k, v in splits.items()})


@dataclass
class ModelRun:
    """One model trained under the protocol: test predictions (image_id, mos, pred_mos[, pred_dist_k]), training
    history, the model, and `explain`: what its visualisation needs (references, critiques, recalled text)."""

    name: str
    model: nn.Module
    history: dict
    predictions: pd.DataFrame
    explain: dict[str, Any] = field(default_factory=dict)

    def train_loss(self) -> tuple[float, float]:
        """(first, last) epoch mean training loss."""
        epochs = self.history["epochs"]
        return float(epochs[0]["train_loss"]), float(epochs[-1]["train_loss"])


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")


def model_titles() -> dict[str, str]:
    """Registry name -> the title the book shows, for every compared model (from the papers' specs)."""
    return {name: spec.title for name, spec in paper_specs().items()}


def train_and_predict(name: str, data: ProtocolData, profile: str = "smoke",
                      run_dir: str | os.PathLike = "runs/99_compare", seed: int = 0,
                      overrides: dict[str, Any] | None = None) -> ModelRun:
    """Train (or load the finished run of) model `name` on the protocol's train split with its chapter's recipe
    (its spec's compare_settings[profile], updated by `overrides`), select on val, and predict the test split.
    Checkpoints: <run_dir>/<dataset>/<name>."""
    _check_profile(profile)
    if name not in PAPERS:
        raise KeyError(f"unknown model {name!r}; compared models: {', '.join(PAPERS)}")
    spec = paper_spec(name)
    settings = spec.compare_settings[profile]
    unknown = sorted(set(overrides or {}) - set(settings))
    if unknown:
        raise KeyError(f"unknown {name} setting(s) {unknown}; known: {sorted(settings)}")
    out_dir = resolve(run_dir) / data.dataset / name
    model, history, predictions, explain = spec.compare(data, {**settings, **(overrides or {})}, out_dir, seed)
    run = ModelRun(name, model, history, predictions, explain)
    test_ids = set(data.splits["test"])
    predicted = set(run.predictions["image_id"].astype(str))
    if predicted != test_ids:
        raise RuntimeError(f"{name} predicted {len(predicted)} images but the test split has {len(test_ids)}")
    run.predictions = run.predictions.assign(image_id=run.predictions["image_id"].astype(str))
    return run


def start(settings: ComparisonSettings) -> None:
    """A Comparison notebook's first step: seed everything with settings.seed and set torch's threads."""
    seed_and_threads(settings.seed, settings.threads)


def protocol_data(settings: ComparisonSettings, protocol: str) -> ProtocolData:
    """load_protocol(protocol) with the settings' synthetic set, AVA copy ("" = none), seed and run_dir."""
    return load_protocol(protocol, settings.run_dir, n_synthetic=settings.n_synthetic,
                         synthetic_size=settings.synthetic_size, data_root=settings.data_root or None,
                         test_list=settings.test_list or None, seed=settings.seed)


def train_models(settings: ComparisonSettings, data: ProtocolData) -> dict[str, ModelRun]:
    """train_and_predict of every model of settings.models on `data` (trained, or loaded when finished)."""
    overrides = settings.overrides()
    return {name: train_and_predict(name, data, settings.profile, settings.run_dir, settings.seed,
                                    overrides.get(name))
            for name in settings.model_names()}


# ------------------------------------------------------------------------------------------ scoring
def _aligned(predictions: dict[str, pd.DataFrame], truth: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every model's predictions in the order of truth's image ids (the same test images for all, else an error)."""
    ids = truth["image_id"].astype(str).tolist()
    aligned = {}
    for name, frame in predictions.items():
        by_id = frame.assign(image_id=frame["image_id"].astype(str)).set_index("image_id")
        missing = sorted(set(ids) - set(by_id.index))
        if missing:
            raise ValueError(f"{name} has no prediction for {len(missing)} test images, e.g. {missing[:3]}")
        aligned[name] = by_id.loc[ids].reset_index()
    return aligned


def _pred_dist(frame: pd.DataFrame) -> np.ndarray | None:
    columns = [f"pred_dist_{k}" for k in range(1, 11)]
    return frame[columns].to_numpy(np.float64) if all(c in frame.columns for c in columns) else None


def metric_values(pred_mos: np.ndarray, mos: np.ndarray, pred_dist: np.ndarray | None, dist: np.ndarray,
                  threshold: float = 5.0, high_if: str = "gt") -> dict[str, float]:
    """METRICS of score_metrics; emd1/emd2 are NaN for a model that predicts a score, not a distribution."""
    values = score_metrics(pred_mos, mos, pred_dist, None if pred_dist is None else dist, threshold, high_if)
    return {metric: values.get(metric, float("nan")) for metric in METRICS}


def _bootstrap_estimates(frame: pd.DataFrame, truth: pd.DataFrame, resamples: np.ndarray, **rule) -> pd.DataFrame:
    pred_mos, mos = frame["pred_mos"].to_numpy(np.float64), truth["mos"].to_numpy(np.float64)
    pred_dist, dist = _pred_dist(frame), truth[DIST_COLUMNS].to_numpy(np.float64)
    rows = [metric_values(pred_mos[r], mos[r], None if pred_dist is None else pred_dist[r], dist[r], **rule)
            for r in resamples]
    return pd.DataFrame(rows, columns=list(METRICS))


@dataclass
class Bootstrap:
    """Every model's METRICS on one test set: point values (model x metric), the draws on the same n_boot
    resamples of the test images for every model (model -> n_boot x metric), and the number of test images."""

    point: pd.DataFrame
    draws: dict[str, pd.DataFrame]
    n: int


def bootstrap_metrics(predictions: dict[str, pd.DataFrame], truth: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                      threshold: float = 5.0, high_if: str = "gt") -> Bootstrap:
    """Paired percentile bootstrap of every model's metrics; truth: the test rows (image_id, mos, dist_1..10)."""
    aligned = _aligned(predictions, truth)
    mos, dist = truth["mos"].to_numpy(np.float64), truth[DIST_COLUMNS].to_numpy(np.float64)
    resamples = bootstrap_rows(len(truth), n_boot, seed)
    rule = dict(threshold=threshold, high_if=high_if)
    point = pd.DataFrame({name: metric_values(frame["pred_mos"].to_numpy(np.float64), mos, _pred_dist(frame), dist,
                                              **rule) for name, frame in aligned.items()}).T
    draws = {name: _bootstrap_estimates(frame, truth, resamples, **rule) for name, frame in aligned.items()}
    return Bootstrap(point, draws, len(truth))


def results_table(boot: Bootstrap, alpha: float = 0.05) -> pd.DataFrame:
    """One row per model: each metric of METRICS with its (1 - alpha) interval (<metric>_low, <metric>_high) and n."""
    rows = {}
    for name, draws in boot.draws.items():
        row: dict[str, float] = {}
        for metric in METRICS:
            row[metric] = boot.point.loc[name, metric]
            finite = draws[metric].dropna()
            row[f"{metric}_low"], row[f"{metric}_high"] = (
                np.quantile(finite, [alpha / 2, 1 - alpha / 2]) if len(finite) else (np.nan, np.nan))
        rows[name] = {**row, "n": boot.n}
    return pd.DataFrame(rows).T


def paired_differences(boot: Bootstrap, baseline: str = "nima", metric: str = "srcc", alpha: float = 0.05) -> pd.DataFrame:
    """metric(model) - metric(baseline) on the same test images, with the paired bootstrap's (1 - alpha) interval."""
    if baseline not in boot.draws:
        raise KeyError(f"baseline {baseline!r} is not among the models {sorted(boot.draws)}")
    if metric not in ("srcc", "plcc", "krcc", "acc"):
        raise ValueError(f"metric must be srcc, plcc, krcc or acc, got {metric!r}")
    rows = {}
    for name, draws in boot.draws.items():
        if name == baseline:
            continue
        delta = draws[metric].to_numpy() - boot.draws[baseline][metric].to_numpy()
        low, high = np.nanquantile(delta, [alpha / 2, 1 - alpha / 2])
        rows[name] = {f"delta_{metric}": boot.point.loc[name, metric] - boot.point.loc[baseline, metric],
                      "low": low, "high": high}
    return pd.DataFrame(rows).T


def paper_numbers(models: list[str] | tuple[str, ...] = PAPERS) -> pd.DataFrame:
    """The papers' own numbers from book/results/sota.csv (with split and verification status), one row per
    published result; models without a verified published number get a row saying so."""
    table = sota_table()
    rows = []
    for model in models:
        spec = paper_spec(model)
        found = table[table["method"].isin(spec.sota_methods)]
        if found.empty:
            rows.append({"model": spec.title, "method": "-", "dataset": "-", "split": "-", "srcc": np.nan,
                         "plcc": np.nan, "acc": np.nan, "status": "no verified number (see the chapter's spec)"})
        for _, row in found.iterrows():
            rows.append({"model": spec.title, "method": row["method"], "dataset": row["dataset"],
                         "split": row["split"], "srcc": row["srcc"], "plcc": row["plcc"], "acc": row["acc"],
                         "status": row["status"]})
    return pd.DataFrame(rows)


def disagreement(predictions: dict[str, pd.DataFrame], truth: pd.DataFrame) -> pd.DataFrame:
    """Per test image: mos, each model's pred_mos and its rank percentile among the test images, the spread
    (max - min percentile over models) and the model whose percentile is furthest from the mos percentile;
    sorted by spread, largest first."""
    aligned = _aligned(predictions, truth)
    table = truth[["image_id", "mos"]].astype({"image_id": str}).reset_index(drop=True)
    table["mos_pct"] = table["mos"].rank(pct=True)
    pct_columns = []
    for name, frame in aligned.items():
        table[f"{name}_pred"] = frame["pred_mos"].to_numpy()
        table[f"{name}_pct"] = frame["pred_mos"].rank(pct=True).to_numpy()
        pct_columns.append(f"{name}_pct")
    percentiles = table[pct_columns]
    table["spread"] = percentiles.max(axis=1) - percentiles.min(axis=1)
    errors = percentiles.sub(table["mos_pct"], axis=0).abs()
    table["most_wrong"] = errors.idxmax(axis=1).str.removesuffix("_pct")
    return table.sort_values("spread", ascending=False).reset_index(drop=True)
