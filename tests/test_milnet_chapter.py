"""The MILNet chapter's settings: notebooks hold the smoke profile, passed values win, the comparison reads them."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from iaa_lib.book.runner import notebook_parameters, read_notebook
from iaa_lib.milnet.chapter import PROFILES, load_chapter
from iaa_lib.data.sota import published
from iaa_lib.milnet.spec import SPEC
from iaa_lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks" / "milnet").glob("0*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_parameters_cell_holds_the_smoke_profile(path):
    PROFILES.check_parameters(notebook_parameters(read_notebook(path)))
    assert 'profile == "full"' not in path.read_text()  # the full profile lives in iaa_lib/milnet/chapter.py


def test_a_pinned_parameter_survives_the_full_profile():
    assert len(NOTEBOOKS) == 4
    namespace = {"profile": "full", "epochs": 20, "lr": 0.001, "pinned_parameters": ["epochs"]}
    settings = PROFILES.resolve("full", namespace)
    assert settings.epochs == 20  # passed with -p, although it equals the smoke default
    assert settings.lr == 3e-4 and settings.config == "full"  # not passed: the full profile's value
    assert PROFILES.resolve("full", {"epochs": 7}).epochs == 7  # edited by hand (differs from smoke)


def test_full_profile_is_the_official_schedule():
    recipe = PROFILES.full.recipe()
    assert (recipe.config, recipe.epochs, recipe.batch_size, recipe.lr, recipe.schedule, recipe.step_epochs,
            recipe.gamma, recipe.num_references) == ("full", 10, 128, 3e-4, "step", 3, 0.1, 4)
    # real photos at each backbone's own input size; the synthetic set's features at its own 96 px
    assert PROFILES.full.real_image_size is None and PROFILES.full.real_dataset == "ava"
    assert PROFILES.full.image_size == PROFILES.full.synthetic_size == 96


def test_comparison_uses_the_chapter_recipe():
    for name in ("smoke", "full"):
        assert SPEC.compare_settings[name]["recipe"] == PROFILES.get(name).recipe()
        assert SPEC.compare_settings[name]["image_size"] == PROFILES.get(name).image_size


def test_load_chapter_sets_threads_and_refuses_unknown_sets():
    before = torch.get_num_threads()
    try:
        chapter = load_chapter(replace(PROFILES.smoke, threads=1))
        assert torch.get_num_threads() == 1
        for call in (chapter.graph_data, chapter.train):
            with pytest.raises(ValueError, match="'synthetic' or 'real'"):
                call("imagenet")
    finally:
        torch.set_num_threads(before)


def test_published_reads_the_row_of_sota_csv():
    row = published("MLSP (Pool-3FC)", "AVA")  # sota.csv: srcc 0.756, plcc 0.757, no accuracy
    assert (row["srcc"], row["plcc"]) == (0.756, 0.757) and math.isnan(row["acc"])
    with pytest.raises(KeyError, match="0 rows"):
        published("MILNet", "nowhere")
