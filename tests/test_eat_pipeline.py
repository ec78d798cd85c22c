"""EAT chapter pipeline: the recipe, the chapter's data and loaders, and that a finished run is loaded, not retrained."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from iaa_lib.eat.pipeline import EATRecipe, chapter_runs, eat_data, labelled_parts


def test_paper_recipe_and_its_fit_config(tmp_path):
    paper = EATRecipe.paper()
    assert (paper.config, paper.image_size, paper.epochs, paper.batch_size, paper.lr) == ("full", 224, 20, 16, 1e-6)
    cfg = paper.fit_config(tmp_path / "run")
    assert (cfg.optimizer, cfg.schedule, cfg.step_epochs, cfg.gamma, cfg.weight_decay) == ("adam", "step", 5, 0.1, 0.0)
    assert cfg.out_dir == str(tmp_path / "run") and EATRecipe.paper(seed=3).seed == 3


def test_sample_loaders_use_the_recipe_batch_everywhere():
    data = eat_data("ava_sample", EATRecipe(batch_size=8))
    assert {name: len(part) for name, part in data.parts.items()} == {"train": 46, "val": 16, "test": 15}
    assert all(loader.batch_size == 8 for loader in data.loaders.values())
    assert data.loaders["train"].drop_last and not data.loaders["test"].drop_last
    assert data.loaders["test"].dataset[0]["image"].shape == (3, 64, 64)


def test_bad_datasets_raise():
    with pytest.raises(ValueError, match="data_root"):
        labelled_parts("ava")
    with pytest.raises(ValueError, match="dataset must be"):
        labelled_parts("tad66k")


def test_chapter_runs_train_once_then_load(tmp_path):
    recipe = replace(EATRecipe(), epochs=1, batch_size=8)
    settings = dict(run_dir=str(tmp_path), n_synthetic=40, synthetic_size=32)
    first = chapter_runs(recipe, 1, **settings)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/last.pt")}
    assert len(stamps) == 3
    again = chapter_runs(recipe, 1, **settings)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/last.pt")} == stamps  # nothing retrained
    for name, model in first.models.items():
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.models[name].state_dict().values()))
    assert len(again.main.parts["test"]) == 6 and len(again.real.parts["test"]) == 15
