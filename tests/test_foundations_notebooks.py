"""The foundations notebooks' recorded metrics (each notebook executed once in smoke mode)."""
from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.notebook


def test_data_notebook(notebook_metrics):
    m = notebook_metrics("notebooks/00_foundations/01_data.py")
    assert m["ava_images"] == 255_502 and m["sample_images"] == 77
    assert 5.2 < m["ava_mos_mean"] < 5.6 and m["ava_share_4_to_7"] > 0.9
    assert m["ava_high_ge"] - m["ava_high_gt"] == pytest.approx(m["ava_mos_exactly_5"] / 255_502)
    assert m["split_sizes"] == {"train": 46, "val": 16, "test": 15}
    assert m["leak_caught"] is True


def test_metrics_notebook(notebook_metrics):
    m = notebook_metrics("notebooks/00_foundations/02_metrics_and_losses.py")
    assert m["emd1_vs_scipy_max_error"] < 1e-9
    assert m["toy"]["EMD r=1"] == pytest.approx(0.5)
    assert m["toy"]["EMD r=2"] == pytest.approx(math.sqrt(0.5), rel=1e-5)
    assert m["toy"]["MILNet d"] == pytest.approx(math.sqrt(2.5), rel=1e-5)
    assert m["batch_pooled_over_sample_r2"] > 1.0 and m["milnet_over_emd_r2"] > 1.0
    assert m["srcc_mean_of_batches"] != pytest.approx(m["srcc_whole"], abs=1e-3)
    for inner, final in m["adaemd_final_emd2"].items():
        assert final < m["adaemd_first_emd2"][inner], inner


def test_baseline_notebook_learns(notebook_metrics):
    m = notebook_metrics("notebooks/00_foundations/03_baseline.py")
    assert m["synthetic_train_loss_last"] < m["synthetic_train_loss_first"]
    assert m["synthetic_test"]["srcc"] > 0.5, m["synthetic_test"]
    assert m["synthetic_test"]["n"] == 30
    for name, value in m["loss_variants_test_srcc"].items():
        assert value > 0.3, name
    real = m["ava_sample_test"]
    assert real["n"] == 15 and all(math.isfinite(real[k]) for k in ("srcc", "plcc", "acc", "emd2"))
    low, high = m["ava_sample_srcc_ci"]
    assert low <= real["srcc"] <= high
