"""EAT chapter pipeline: the profiles, the chapter's data and loaders, and that a finished run is loaded, not retrained."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from iaa_lib.book.runner import notebook_parameters, read_notebook
from iaa_lib.eat.pipeline import EAT_PROFILES, eat_data, labelled_parts, load_chapter
from iaa_lib.eat.spec import SPEC
from iaa_lib.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks" / "eat").glob("0*.py"))


def test_paper_recipe_and_its_fit_config(tmp_path):
    paper = EAT_PROFILES.full
    assert (paper.config, paper.image_size, paper.epochs, paper.batch_size, paper.lr) == ("full", 224, 20, 16, 1e-6)
    cfg = paper.fit_config(tmp_path / "run")
    assert (cfg.optimizer, cfg.schedule, cfg.step_epochs, cfg.gamma, cfg.weight_decay) == ("adam", "step", 5, 0.1, 0.0)
    assert cfg.out_dir == str(tmp_path / "run") and cfg.seed == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cells_hold_the_smoke_profile(path):
    parameters = notebook_parameters(read_notebook(path))
    EAT_PROFILES.check_parameters(parameters)
    assert {"seed", "run_dir"} <= set(parameters)


def test_a_passed_parameter_wins_over_the_full_profile():
    parameters = notebook_parameters(read_notebook(REPO_ROOT / "notebooks" / "eat" / "02_train.py"))
    assert len(NOTEBOOKS) == 4 and EAT_PROFILES.resolve("full", parameters) == EAT_PROFILES.full
    pinned = EAT_PROFILES.resolve("full", {**parameters, "epochs": 12, "pinned_parameters": ["epochs"]})
    assert (pinned.epochs, pinned.image_size, pinned.lr, pinned.manifest) == (12, 224, 1e-6, "runs/data/ava_manifest.csv")
    edited = EAT_PROFILES.resolve("full", {**parameters, "ig_steps": 8})  # an edit by hand differs from smoke
    assert (edited.ig_steps, edited.epochs) == (8, 20)


def test_the_comparison_trains_with_the_chapter_profiles():
    assert {p: s["recipe"] for p, s in SPEC.compare_settings.items()} == {"smoke": EAT_PROFILES.smoke,
                                                                          "full": EAT_PROFILES.full}


def test_sample_loaders_use_the_recipe_batch_everywhere():
    data = eat_data("ava_sample", replace(EAT_PROFILES.smoke, batch_size=8))
    assert {name: len(part) for name, part in data.parts.items()} == {"train": 46, "val": 16, "test": 15}
    assert all(loader.batch_size == 8 for loader in data.loaders.values())
    assert data.loaders["train"].drop_last and not data.loaders["test"].drop_last
    assert data.loaders["test"].dataset[0]["image"].shape == (3, 64, 64)


def test_bad_datasets_raise():
    with pytest.raises(ValueError, match="data_root"):
        labelled_parts("ava", EAT_PROFILES.smoke)
    with pytest.raises(ValueError, match="dataset must be"):
        labelled_parts("tad66k", EAT_PROFILES.smoke)


def test_load_chapter_trains_once_then_loads(tmp_path):
    settings = replace(EAT_PROFILES.smoke, epochs=1, ava_epochs=1, batch_size=8, n_synthetic=40, synthetic_size=32,
                       threads=0)
    first = load_chapter(settings, str(tmp_path))
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/last.pt")}
    assert len(stamps) == 3
    again = load_chapter(settings, str(tmp_path))
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/last.pt")} == stamps  # nothing retrained
    for name, model in first.models.items():
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.models[name].state_dict().values()))
    assert len(again.main.parts["test"]) == 6 and len(again.real.parts["test"]) == 15
