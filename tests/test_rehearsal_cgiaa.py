"""CG-IAA's full-profile rehearsal: the aesthetic CLIP ViT-B/16 (QuickGELU, random init) at 224 px with both towers
trained by VLAP, four 40-token-prefix experts in front of a frozen GPT-2-size decoder, beam-5 critiques for every
photo, the MAP heads; AVA read through the manifest with the shipped DPC critiques as comments, 2 optimiser steps
per stage; plus the switch's checks that need no rehearsal."""
from __future__ import annotations

from dataclasses import replace

import pytest

CGIAA_PARTS = ("01_pretraining", "02_critiques", "03_scoring", "04_explain")
CLIP_B16 = 149_620_737  # open_clip ViT-B-16: both towers, the visual projection and logit_scale
# GPT-2 small (124,439,808 with its 50,257 ids) over open_clip's 49,408 BPE ids: (50,257 - 49,408) x 768 fewer.
GPT2_SIZE_LM = 124_439_808 - (50_257 - 49_408) * 768


@pytest.fixture(scope="module")
def cgiaa(rehearsal_runs):
    return {part: rehearsal_runs[f"notebooks/cgiaa/{part}"]["metrics"] for part in CGIAA_PARTS}


def test_every_cgiaa_part_ran_clip_vit_b16_at_224_px(cgiaa):
    for part, metrics in cgiaa.items():
        assert metrics["config"] == "full" and metrics["image_size"] == 224, part
        assert metrics["image_tower"] == "open_clip:ViT-B-16-quickgelu", part
        assert metrics["clip_parameters"] == CLIP_B16 and metrics["visual_dim"] == 768, part


def test_the_experts_decode_with_a_frozen_gpt2_size_lm_and_beam_search(cgiaa):
    for part in ("02_critiques", "03_scoring", "04_explain"):
        metrics = cgiaa[part]
        assert metrics["lm_parameters"] == GPT2_SIZE_LM and metrics["lm_frozen"], part
        assert (metrics["lm_layers"], metrics["lm_width"], metrics["prefix_length"]) == (12, 768, 40), part
        assert metrics["beam_width"] == 5 and metrics["max_generate"] == 2, part
    assert cgiaa["02_critiques"]["vocab_size"] == 49_408 and cgiaa["02_critiques"]["n_decoded"] > 0


def test_vlap_and_the_experts_trained_on_the_real_photos_critiques(cgiaa):
    pretraining, critiques = cgiaa["01_pretraining"], cgiaa["02_critiques"]
    assert pretraining["n_test_images"] > 0 and pretraining["n_dpc_critiques_labelled"] == 64
    assert critiques["n_captions"] > 0
    assert pretraining["vlap_steps_run"] == critiques["expert_steps_run"] == 2  # of 20 epochs / 235,000 steps
    assert cgiaa["04_explain"]["ig_steps"] == 2 and cgiaa["04_explain"]["n_test"] > 0


def test_random_weights_are_an_explicit_switch_and_gpt2_stays_required_without_it():
    from iaa_lib.cgiaa.chapter import PROFILES

    full = PROFILES.full
    cfg = replace(full, weights="random").model_config()
    assert (cfg.image_tower, cfg.image_weights, cfg.lm_weights) == ("open_clip:ViT-B-16-quickgelu", None, "random")
    assert full.model_config().image_weights == "openai" and full.model_config().lm_weights == "pretrained"
    with pytest.raises(ValueError, match="gpt2_path"):
        replace(full, data_root="somewhere", manifest="").check_inputs()  # pretrained: GPT-2 must be given
    with pytest.raises(ValueError, match="weights must be one of"):
        replace(full, weights="none")


def test_the_full_profile_names_the_data_check_when_its_manifest_is_missing(tmp_path):
    from iaa_lib.cgiaa.chapter import PROFILES

    with pytest.raises(FileNotFoundError, match="data check"):
        replace(PROFILES.full, manifest=str(tmp_path / "absent.csv"), weights="random").check_inputs()
