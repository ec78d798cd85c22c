"""CDCM-Net's full-profile rehearsal: CLIP ViT-B/32 image and text towers (QuickGELU, random init) at 224 px, the
paper-size memory and fusion, AVA read through the manifest with the shipped DPC critiques as its comments, two
optimiser steps per training run; plus the switch's checks that need no rehearsal."""
from __future__ import annotations

from dataclasses import replace

import pytest

CDCM_PARTS = ("01_data", "02_train", "03_evaluate", "04_memory")
# The spec (section 3): MMDF without the unused FeatureInforEncoder 25,777,696 + the memory 1,574,400.
CDCM_FULL_PARAMETERS = 25_777_696 + 1_574_400
CLIP_B32_IMAGE_TOWER = 87_849_216  # open_clip ViT-B-32 visual tower (patch 32, width 768, 12 layers, proj 512)


@pytest.fixture(scope="module")
def cdcm(rehearsal_runs):
    return {part: rehearsal_runs[f"notebooks/cdcm/{part}"]["metrics"] for part in CDCM_PARTS}


def test_every_cdcm_part_ran_the_papers_clip_encoders_and_model_size(cdcm):
    for part, metrics in cdcm.items():
        assert metrics["image_encoder"] == metrics["text_encoder"] == "open_clip:ViT-B-32-quickgelu", part
        assert metrics["image_size"] == 224 and metrics["n_visual_tokens"] == 50, part  # CLS + 7 x 7 patches
        assert metrics["visual_dim"] == metrics["text_dim"] == 512, part
        assert metrics["cdcm_parameters"] == CDCM_FULL_PARAMETERS, part
        assert metrics["image_encoder_parameters"] == CLIP_B32_IMAGE_TOWER, part


def test_the_real_set_is_every_readable_image_of_the_manifest_with_its_official_test_list(cdcm, mini_ava):
    sizes = cdcm["01_data"]["real_split_sizes"]
    unreadable = set(mini_ava.missing) | set(mini_ava.corrupt) | {mini_ava.cut_row}
    assert sum(sizes.values()) == len(set(mini_ava.ids) - unreadable)
    assert sizes["test"] == len(set(mini_ava.test_ids) - unreadable)
    assert sizes["train"] > sizes["val"] > 0
    assert cdcm["01_data"]["min_sentences"] == 0  # passed by the rehearsal: the mini copy has 1-2 critiques a photo


def test_the_rehearsal_read_real_critiques_and_trained_each_model_one_capped_epoch(cdcm):
    data, train = cdcm["01_data"], cdcm["02_train"]
    assert data["sample_images_with_comments"] > 0 and data["dpc_n"] == 16
    assert data["n_synthetic"] == 64
    assert set(train["train_epochs"].values()) == {1}
    assert set(train["train_epochs"]) == {"cdcm", "cdcm_as_published", "image_only", "real_comments", "sample"}


def test_random_weights_are_an_explicit_switch_and_name_the_quickgelu_architecture():
    from iaa_lib.cdcm.chapter import PROFILES
    from iaa_lib.cdcm.model import ENCODERS, encoder_spec

    assert encoder_spec("full") == ENCODERS["full"]  # "pretrained": the OpenAI weights by name, unchanged
    spec = encoder_spec("full", "random")
    assert spec["image"] == spec["text"] == "open_clip:ViT-B-32-quickgelu"
    assert spec["image_weights"] is None and spec["text_weights"] is None
    with pytest.raises(ValueError, match="MiniLM"):
        encoder_spec("smoke", "random")
    with pytest.raises(ValueError, match="weights must be one of"):
        replace(PROFILES.full, weights="none")


def test_the_full_profile_names_the_data_check_when_its_manifest_is_missing(tmp_path):
    from iaa_lib.cdcm.chapter import PROFILES

    with pytest.raises(FileNotFoundError, match="data check"):
        replace(PROFILES.full, manifest=str(tmp_path / "absent.csv")).check_inputs()
    with pytest.raises(ValueError, match="needs manifest"):
        replace(PROFILES.full, manifest="").check_inputs()
