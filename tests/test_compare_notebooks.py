"""Comparison chapter: one protocol for every model, its failure cases, and the citable results page."""
from __future__ import annotations

import pytest

from iaa_lib.book.build import toc_notebooks

pytestmark = pytest.mark.notebook
MODELS = ("nima", "eat", "milnet", "ssmr", "cdcm", "cgiaa")
RESULTS = "notebooks/99_compare/01_results.py"


def test_every_model_learns_under_the_shared_synthetic_protocol(notebook_metrics):
    m = notebook_metrics(RESULTS)
    assert m["protocols"]["synthetic"] == "synthetic, 180 / 60 / 60 (train / val / test)"
    for model in MODELS:
        row = m[f"synthetic.{model}"]
        assert row["n"] == 60
        assert row["train_loss_last"] < row["train_loss_first"], model
        assert row["srcc"] > 0.25 and row["srcc_low"] > 0, model  # above chance on held-out images
        for metric in ("srcc", "plcc", "krcc", "acc"):
            assert row[f"{metric}_low"] <= row[metric] <= row[f"{metric}_high"], (model, metric)
    assert "emd1" not in m["synthetic.ssmr"]  # SSMR predicts a score, not a distribution
    assert 0 < m["synthetic.nima"]["emd1"] < m["synthetic.nima"]["emd2"]


def test_the_real_sample_is_scored_with_honest_intervals(notebook_metrics):
    m = notebook_metrics(RESULTS)
    for model in MODELS:
        row = m[f"ava_sample.{model}"]
        assert row["n"] == 15
        assert row["srcc_high"] - row["srcc_low"] > 0.5, model  # 15 photos cannot pin a correlation down
    for model in MODELS[1:]:
        delta = m[f"synthetic.delta_srcc_vs_nima.{model}"]
        assert delta["low"] <= delta["delta_srcc"] <= delta["high"]
    assert m["provenance"]["command"] == f"python -m iaa_lib run {RESULTS}" and m["provenance"]["seed"] == 0


def test_failure_cases_rank_real_test_photos_by_disagreement(notebook_metrics):
    m = notebook_metrics("notebooks/99_compare/03_failure_cases.py")
    assert m["n_test"] == 15 and len(m["shown"]) == 3
    spreads = [item["spread"] for item in m["shown"]]
    assert spreads == sorted(spreads, reverse=True) and spreads[0] > m["mean_spread"]
    for item in m["shown"]:
        assert {f"{model}_pred" for model in MODELS} <= set(item) and item["most_wrong"] in MODELS
    assert sum(m["most_wrong_counts"].values()) == 15


def test_results_page_cites_every_notebook_of_the_build(built_book, notebook_metrics):
    m = notebook_metrics("notebooks/99_compare/04_results_to_cite.py")
    assert m["n_not_run"] == 0 and m["n_without_provenance"] == 0
    assert m["n_recorded"] == m["n_notebooks"] == len(toc_notebooks()) - 1  # every page but this one
    assert len(m["commits"]) == 1  # one build, one commit
    assert m["n_numbers"] > m["n_cited_numbers"] > 100
