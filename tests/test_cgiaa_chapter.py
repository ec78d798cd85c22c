"""CG-IAA chapter settings: passed values win, the comparison reads them."""
from __future__ import annotations

from dataclasses import replace

import pytest

from iaa_lib.cgiaa.chapter import COMPARE_FIELDS, FULL, PROFILES, SMOKE


def test_full_profile_takes_its_defaults_unless_a_value_is_pinned():
    cell = {"profile": "full", "map_epochs": 40, "data_root": "/ava", "gpt2_path": "/gpt2"}
    resolved = PROFILES.resolve("full", {**cell, "pinned_parameters": ["profile", "data_root", "gpt2_path"]})
    assert resolved == replace(FULL, data_root="/ava", gpt2_path="/gpt2") and resolved.map_epochs == 20
    pinned = PROFILES.resolve("full", {**cell, "pinned_parameters": ["profile", "map_epochs"]})
    assert (pinned.map_epochs, pinned.map_lr, pinned.config) == (40, 1e-4, "full")


def test_settings_build_the_stage_schedules():
    vlap, experts = FULL.vlap_schedule(), FULL.expert_schedule()
    assert (vlap.epochs, vlap.batch_size, vlap.lr, vlap.seed) == (20, 64, 6e-5, 0)
    assert (experts.steps, experts.batch_size, experts.lr, experts.warmup) == (235_000, 40, 2e-5, 5000)
    assert SMOKE.model_config().map_hidden == 128 and FULL.model_config().image_tower == "open_clip:ViT-B-16"
    assert SMOKE.map_options() == dict(epochs=40, lr=1e-3, batch_size=32, hidden=128, seed=0, max_steps=0)
    assert replace(FULL, max_steps=2).vlap_schedule().max_steps == replace(FULL, max_steps=2).expert_schedule().max_steps == 2


def test_full_profile_needs_data_root_and_gpt2_weights():
    with pytest.raises(FileNotFoundError, match="data check"):  # its default manifest is not written yet
        FULL.check_inputs()
    with pytest.raises(ValueError, match="data_root"):
        replace(FULL, manifest="").check_inputs()
    with pytest.raises(ValueError, match="gpt2_path"):
        replace(FULL, manifest="", data_root="/ava").check_inputs()
    replace(FULL, manifest="", data_root="/ava").check_inputs(gpt2=False)
    replace(FULL, manifest="", data_root="/ava", weights="random").check_inputs()  # the random twin needs no file
    SMOKE.check_inputs()


def test_comparison_reads_the_chapter_profiles():
    from iaa_lib.cgiaa.spec import SPEC

    for name, settings in (("smoke", SMOKE), ("full", FULL)):
        assert SPEC.compare_settings[name] == {f: getattr(settings, f) for f in COMPARE_FIELDS}
    assert SPEC.compare_settings["smoke"]["vlap_steps"] == 150 and SPEC.compare_settings["full"]["map_hidden"] == 512
