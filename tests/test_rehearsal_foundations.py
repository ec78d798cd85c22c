"""The NIMA baseline's full-profile rehearsal: Inception-v3 at 224 px, real photos from AVA through the manifest."""
from __future__ import annotations

import pytest
import torch

from iaa_lib.metrics import predicted_mos

NAME = "notebooks/00_foundations/03_baseline"


@pytest.fixture(scope="module")
def baseline(rehearsal_runs):
    return rehearsal_runs[NAME]["metrics"]


def test_the_baseline_rehearsal_built_the_full_backbone(baseline):
    assert baseline["backbone"] == "timm:inception_v3" and baseline["image_size"] == 224
    assert baseline["n_parameters"] > 20_000_000  # Inception-v3 (about 21.8 M) with the 10-bin head


def test_the_baseline_rehearsal_read_ava_through_the_manifest_and_stopped_at_two_steps(baseline, mini_ava):
    assert baseline["real_set"] == "ava" and baseline["real_train_steps"] == 2
    readable_test = set(mini_ava.test_ids) - set(mini_ava.missing) - set(mini_ava.corrupt)
    assert baseline["ava_sample_test"]["n"] == len(readable_test)  # the official list's readable images


def test_random_weights_build_the_full_backbone_by_name_without_weights():
    from dataclasses import replace

    from iaa_lib.nima.pipeline import NIMA_PROFILES, new_nima

    torch.manual_seed(0)
    model = new_nima(replace(NIMA_PROFILES.full, weights="random"))
    assert model.model_config["backbone"] == "timm:inception_v3" and model.model_config["weights"] is None
    with torch.no_grad():  # two training batches (batch norm statistics), then eval: not one constant score
        model.train()
        for _ in range(2):
            model(torch.randn(4, 3, 224, 224))
        scores = predicted_mos(model.eval()(torch.randn(6, 3, 224, 224)))
    assert scores.max() - scores.min() > 0.01, f"random-init Inception-v3 saturated to one score: {scores}"
    assert NIMA_PROFILES.smoke.weights == "pretrained" and NIMA_PROFILES.full.manifest == "runs/data/ava_manifest.csv"


def test_a_missing_manifest_names_the_data_check_command(tmp_path):
    from dataclasses import replace

    from iaa_lib.nima.pipeline import NIMA_PROFILES, baseline_data

    settings = replace(NIMA_PROFILES.full, manifest=str(tmp_path / "ava_manifest.csv"))
    with pytest.raises(FileNotFoundError, match="python -m iaa_lib data check"):
        baseline_data("ava", settings, tmp_path, (0.5,) * 3, (0.5,) * 3)
