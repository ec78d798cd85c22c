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


def test_train_notebook_aux_sweep(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/02_train.py")
    assert m["final_rec_loss"] < m["zero_rec_loss"]  # the value memory, at the text's scale, reconstructs
    sweep = dict(zip(m["aux_weights"], m["aux_sweep_srcc"]))
    assert sweep[0.0] > sweep[0.1] > sweep[1.0]  # notebook 2: the smaller the auxiliary weight, the better
    assert sweep[1.0] == m["cdcm_test_srcc"]


def test_evaluate_notebook_memory_checks(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/03_evaluate.py")
    assert m["cdcm_recalled_srcc"] > 0.3 and m["test_n"] == 90
    assert math.isfinite(m["sample_srcc"])
    assert 0 < m["zero_value_max_change"] < 0.05  # V = 0 changes predictions, but hardly
    assert m["recall_cosine"] < m["mean_sentence_cosine"]  # the text: recall does not beat the mean sentence
    assert m["as_published_text_confidence_zero"] == 0.0


def test_evaluate_notebook_ablation(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/03_evaluate.py")
    # the text: below image-only in every seed, interval excludes 0; zeroing V moves SRCC by < 0.01
    assert m["ablation_vs_image_only_high"] < 0 and max(m["ablation_vs_image_only_per_seed"]) < 0
    assert m["ablation_vs_image_only_low"] <= m["ablation_vs_image_only_difference"] <= m["ablation_vs_image_only_high"]
    assert abs(m["ablation_vs_zero_memory_difference"]) < 0.01


def test_memory_notebook(notebook_metrics):
    m = notebook_metrics("notebooks/cdcm/04_memory.py")
    assert 0 < m["address_entropy"] <= math.log(m["n_slots"]) + 1e-6
    assert 0 <= m["decode_hit_rate"] <= 1 and m["fraction_c_txt_zero"] == 0.0
    assert math.isfinite(m["confidence_img_error_spearman"])
    # the text: decoding at chance level, below the best constant guess
    assert m["decode_hit_rate"] < 2 * m["decode_chance"] and m["decode_hit_rate"] < m["decode_majority_hit_rate"]
