"""The rehearsal (issue 16): every notebook with the rehearsal switches runs its full profile on the miniature AVA
copy, 2 optimiser steps per training run, random weights; common checks of every rehearsed notebook's metrics."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from iaa_lib.book.compare import with_rehearsal
from iaa_lib.book.rehearsal import (EXTRA_PARAMETERS, REHEARSAL_MAX_STEPS, SWITCHES, rehearsal_notebooks,
                                    rehearsal_parameters)
from iaa_lib.book.runner import PROVENANCE_KEY
from iaa_lib.paths import REPO_ROOT

EVIDENCE = ("n_parameters", "image_size", "backbone", "config")  # what proves the full configuration ran


def _numbers(value, where: str = ""):
    """(path, number) for every int/float inside a metrics dict, nested dicts and lists included."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for k, item in enumerate(value):
            yield from _numbers(item, f"{where}[{k}]")


def test_the_rehearsable_notebooks_are_the_ones_with_every_switch():
    names = rehearsal_notebooks()
    for required in ("notebooks/00_foundations/03_baseline", "notebooks/eat/02_train", "notebooks/eat/03_evaluate",
                     "notebooks/eat/04_attention"):
        assert required in names
    assert "notebooks/00_foundations/01_data" not in names  # no full profile, nothing to rehearse
    assert set(EXTRA_PARAMETERS) <= set(names), "an EXTRA_PARAMETERS entry names a notebook that is not rehearsed"


def test_rehearsal_parameters_are_the_convention_plus_the_notebooks_own(tmp_path):
    passed = rehearsal_parameters("notebooks/eat/03_evaluate", tmp_path, tmp_path / "m.csv")
    assert {k: passed[k] for k in SWITCHES} == {"profile": "full", "manifest": str(tmp_path / "m.csv"),
                                                "max_steps": 2, "weights": "random"}
    assert passed["official_checkpoint"].startswith(str(tmp_path)) and passed["batch_size"] == 2


def test_with_rehearsal_sets_the_switches_in_a_recipe_or_as_keys_and_refuses_a_model_without_them():
    @dataclass(frozen=True)
    class Recipe:
        lr: float = 1.0
        max_steps: int = 0
        weights: str = "pretrained"

    recipe = with_rehearsal("nima", {"recipe": Recipe()}, max_steps=2, weights="random")["recipe"]
    assert (recipe.max_steps, recipe.weights, recipe.lr) == (2, "random", 1.0)
    assert with_rehearsal("x", {"lr": 1, "max_steps": 0, "weights": "pretrained"}, 2, "random") == {
        "lr": 1, "max_steps": 2, "weights": "random"}
    assert with_rehearsal("x", {"lr": 1}) == {"lr": 1}  # defaults: nothing to set
    with pytest.raises(ValueError, match="x's comparison settings"):
        with_rehearsal("x", {"lr": 1}, max_steps=2)


def test_every_rehearsable_notebook_was_rehearsed_and_wrote_the_time_table(rehearsal_runs):
    assert sorted(rehearsal_runs) == sorted(rehearsal_notebooks())
    table = (REPO_ROOT / "_build" / "rehearsal_timings.md").read_text()
    for name, run in rehearsal_runs.items():
        assert f"| {name} |" in table
        assert run["seconds"] > 0 and run["peak_rss_mib"] > 0


def test_every_rehearsed_notebook_ran_its_full_profile_with_random_weights_and_the_step_cap(rehearsal_runs):
    for name, run in rehearsal_runs.items():
        metrics = run["metrics"]
        assert metrics["weights"] == "random", name
        assert metrics["max_steps"] == REHEARSAL_MAX_STEPS, name
        assert any(key in metrics for key in EVIDENCE), f"{name} records no evidence of its full configuration"
        assert "-p profile full" in metrics[PROVENANCE_KEY]["command"], name
        for where, number in _numbers({k: v for k, v in metrics.items() if k != PROVENANCE_KEY}):
            assert math.isfinite(number), f"{name}: {where} = {number}"


def test_book_rehearse_dir_without_rehearse_is_a_usage_error(capsys):
    from iaa_lib.book.cli import EXIT_USAGE, main

    assert main(["book", "--rehearse-dir", "somewhere"]) == EXIT_USAGE
    assert "--rehearse-dir needs --rehearse" in capsys.readouterr().err
