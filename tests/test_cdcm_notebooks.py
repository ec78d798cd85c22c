"""CDCM-Net notebooks: recorded smoke metrics show real learning and the image-only test path."""
from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.notebook


def test_data_notebook(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/01_data.py")
    assert m["n_visual_tokens"] == 17 and m["text_dim"] == 384
    assert m["sample_images_with_comments"] == 16
    assert m["synthetic_sentences_per_image"] >= 4
    assert m["dpc_text_ridge_srcc"] > 0.2  # real critiques carry score information


def test_train_notebook_learns(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/02_train.py")
    for name in ("cdcm", "cdcm_as_published", "image_only", "real_comments"):
        assert m[f"{name}_final_train_loss"] < m[f"{name}_first_train_loss"], name
        assert m[f"{name}_test_srcc"] > 0.3, name
    assert m["real_comments_test_srcc"] > m["image_only_test_srcc"]  # synthetic comments describe the score
    assert all(math.isfinite(m[k]) for k in ("final_rec_loss", "final_add_loss", "final_conf_loss", "sample_test_srcc"))


def test_evaluate_notebook_never_reads_comments(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/03_evaluate.py")
    assert m["max_pred_change_without_comments"] == 0.0
    assert m["cdcm_recalled_srcc"] > 0.3 and m["test_n"] == 90
    assert math.isfinite(m["sample_srcc"])


def test_memory_notebook(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/04_memory.py")
    assert 0 < m["address_entropy"] <= math.log(m["n_slots"]) + 1e-6
    assert 0 <= m["decode_hit_rate"] <= 1 and m["fraction_c_txt_zero"] == 0.0
    assert math.isfinite(m["confidence_img_error_spearman"])
