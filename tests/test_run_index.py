"""The run index: an identical configuration trained in another folder is loaded, not retrained; a different one
trains; a stale entry (its folder retrained with another configuration, or gone) is ignored."""
from __future__ import annotations

import shutil

import pytest
import torch

from iaa_lib.losses import EMDLoss
from iaa_lib.training import fit_or_load
from iaa_lib.training.run_index import INDEX_FOLDER, finished_run_elsewhere
from tests.test_engine import config, loaders, make_model


@pytest.fixture(autouse=True)
def own_runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_RUNS_DIR", str(tmp_path / "runs"))


def test_an_identical_configuration_elsewhere_loads_and_a_different_one_trains(tmp_path, capsys):
    train, val = loaders()
    chapter, comparison = tmp_path / "chapter", tmp_path / "comparison"
    trained, history = fit_or_load(make_model(), EMDLoss(r=2), train, val, config(chapter, epochs=2))
    assert (tmp_path / "runs" / INDEX_FOLDER / f"{history['config_hash']}.txt").read_text() == str(chapter.resolve())
    loaded, loaded_history = fit_or_load(make_model(seed=7), EMDLoss(r=2), train, val,
                                         config(comparison, epochs=2, progress=True))
    assert f"loaded finished run from {chapter.resolve()}" in capsys.readouterr().out
    assert not (comparison / "last.pt").exists()  # nothing trained there
    assert loaded_history["epochs"] == history["epochs"]
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, trained.state_dict()[name])
    _, other = fit_or_load(make_model(), EMDLoss(r=2), train, val, config(comparison, epochs=2, lr=1e-2))
    assert (comparison / "last.pt").is_file() and other["config_hash"] != history["config_hash"]
    _, more_data = fit_or_load(make_model(), EMDLoss(r=2), loaders(n_train=40)[0], val,
                               config(tmp_path / "third", epochs=2))
    assert (tmp_path / "third" / "last.pt").is_file() and more_data["config_hash"] != history["config_hash"]


def test_a_stale_entry_is_ignored(tmp_path):
    train, val = loaders()
    chapter = tmp_path / "chapter"
    _, history = fit_or_load(make_model(), EMDLoss(r=2), train, val, config(chapter, epochs=2))
    fit_or_load(make_model(), EMDLoss(r=2), train, val, config(chapter, epochs=3))  # the folder now holds another run
    assert finished_run_elsewhere(history["config_hash"], tmp_path / "comparison") is None
    _, again = fit_or_load(make_model(), EMDLoss(r=2), train, val, config(tmp_path / "comparison", epochs=2))
    assert (tmp_path / "comparison" / "last.pt").is_file() and again["config_hash"] == history["config_hash"]
    shutil.rmtree(tmp_path / "comparison")
    assert finished_run_elsewhere(history["config_hash"], chapter) is None  # the registered folder is gone
