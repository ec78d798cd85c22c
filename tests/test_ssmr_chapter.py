"""SSMR's chapter settings: one smoke and one full profile, read by every notebook and by the comparison."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from iaa_lib.book.runner import notebook_parameters, read_notebook
from iaa_lib.paths import REPO_ROOT
from iaa_lib.ssmr.chapter import PROFILES, load_chapter
from iaa_lib.data.sota import published
from iaa_lib.ssmr.spec import SPEC


def test_every_notebook_opens_with_the_smoke_profile():
    notebooks = sorted((REPO_ROOT / "notebooks" / "ssmr").glob("0*.py"))
    assert [path.stem for path in notebooks] == ["01_references", "02_train", "03_evaluate", "04_graph"]
    for path in notebooks:
        PROFILES.check_parameters(notebook_parameters(read_notebook(path)))
        assert "if profile" not in path.read_text(), path.name  # the full profile lives in iaa_lib/ssmr/chapter.py


def test_passed_values_win_over_the_full_profile():
    namespace = {"epochs": 15, "lr": 1e-3, "backbone_name": "timm:tf_efficientnet_lite0",
                 "pinned_parameters": ["epochs", "backbone_name"]}
    settings = PROFILES.resolve("full", namespace)
    assert settings.epochs == 15 and settings.backbone_name == "timm:tf_efficientnet_lite0"  # passed with -p
    assert settings.lr == 3e-5 and settings.config == "full"  # not passed: the full profile's values


def test_full_profile_is_the_code_recipe():
    full = PROFILES.full
    assert (full.epochs, full.batch_size, full.lr, full.schedule, full.step_epochs, full.gamma) == (
        20, 128, 3e-5, "step", 3, 0.1)
    assert full.features().backbone_name == "timm:swinv2_base_window8_256" and full.image_size == 256


def test_comparison_reads_the_chapter_profiles():
    for name, entry in SPEC.compare_settings.items():
        assert entry == {"settings": PROFILES.get(name), "image_size": PROFILES.get(name).synthetic_size}


def test_load_chapter_seeds_and_sets_threads():
    before = torch.get_num_threads()
    try:
        chapter = load_chapter(replace(PROFILES.smoke, threads=1, seed=3))
        first = torch.rand(2)
        load_chapter(replace(PROFILES.smoke, threads=1, seed=3))
        assert torch.equal(first, torch.rand(2)) and torch.get_num_threads() == 1
        assert chapter.seconds() >= 0.0 and chapter.art_name == "stylized"
        with pytest.raises(ValueError, match="'synthetic' or 'art'"):
            chapter.train("baid")
    finally:
        torch.set_num_threads(before)


def test_published_gives_accuracy_as_a_fraction():
    row = published("SAAN", "BAID")  # sota.csv: plcc 0.467, acc 76.8 (percent)
    assert row["plcc"] == pytest.approx(0.467) and row["acc"] == pytest.approx(0.768)
    with pytest.raises(KeyError, match="0 rows"):
        published("SSMR", "nowhere")
