"""CDCM-Net chapter settings: passed values win, the comparison reads them."""
from __future__ import annotations

from dataclasses import replace

import pytest

from iaa_lib.cdcm.chapter import COMPARE_FIELDS, FULL, PROFILES, SMOKE


def test_full_profile_takes_its_defaults_unless_a_value_is_pinned():
    cell = {"profile": "full", "epochs": 8, "lr": 1e-3, "data_root": "/ava"}
    resolved = PROFILES.resolve("full", {**cell, "pinned_parameters": ["profile", "data_root"]})
    assert resolved == replace(FULL, data_root="/ava")
    pinned = PROFILES.resolve("full", {**cell, "pinned_parameters": ["profile", "epochs", "data_root"]})
    assert (pinned.epochs, pinned.lr, pinned.sample_epochs) == (8, 1e-4, 20)
    assert PROFILES.resolve("smoke", {"profile": "smoke", "epochs": 3}).epochs == 3  # an edit made by hand


def test_full_profile_needs_data_root():
    with pytest.raises(FileNotFoundError, match="data check"):  # its default manifest is not written yet
        FULL.check_inputs()
    with pytest.raises(ValueError, match="data_root"):
        replace(FULL, manifest="").check_inputs()
    replace(FULL, manifest="", data_root="/ava").check_inputs()
    SMOKE.check_inputs()


def test_comparison_reads_the_chapter_profiles():
    from iaa_lib.cdcm.spec import SPEC

    for name, settings in (("smoke", SMOKE), ("full", FULL)):
        assert SPEC.compare_settings[name] == {f: getattr(settings, f) for f in COMPARE_FIELDS}
    assert SPEC.compare_settings["full"] == dict(profile="full", epochs=20, batch_size=32, lr=1e-4, max_steps=0,
                                                 weights="pretrained")
