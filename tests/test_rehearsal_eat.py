"""EAT's full-profile rehearsal: DAT-B at 224 px built with random weights, AVA read through the manifest with EAT's
90/5/5 split, 2 optimiser steps per run, and the released-checkpoint section run on an official-layout file."""
from __future__ import annotations

import pytest

from iaa_lib.data.sota import published

EAT_BASE_PARAMETERS = 86_878_166  # DAT-B with EAT's references and the 10-output head (iaa_lib.eat.model)


@pytest.fixture(scope="module")
def eat(rehearsal_runs):
    return {part: rehearsal_runs[f"notebooks/eat/{part}"]["metrics"] for part in ("02_train", "03_evaluate",
                                                                                   "04_attention")}


def test_every_eat_part_ran_dat_b_at_224_px(eat):
    for metrics in eat.values():
        assert metrics["config"] == "full" and metrics["image_size"] == 224
        assert metrics["n_parameters"] == EAT_BASE_PARAMETERS


def test_eat_trained_each_run_two_steps_on_its_split_of_the_manifest(eat, mini_ava):
    train = eat["02_train"]
    assert train["train_steps"] == {"textbook": 2, "as_published": 2, "ava_sample": 2}
    sizes = train["main_split_sizes"]
    unreadable = set(mini_ava.missing) | set(mini_ava.corrupt) | {mini_ava.cut_row}
    assert sum(sizes.values()) == len(set(mini_ava.ids) - unreadable)  # every readable labelled image, once
    assert sizes["train"] > sizes["val"] > 0 and sizes["test"] > 0
    assert train["synthetic_test"]["n"] == sizes["test"]  # the "synthetic_*" keys hold the main (AVA) set here


def test_the_released_checkpoint_section_scored_the_test_split(eat):
    released = eat["03_evaluate"]["released_checkpoint"]
    assert released["n"] == eat["02_train"]["main_split_sizes"]["test"]
    assert released["batch_size"] == 16 and "EAT as published (AVA)" in released["protocol"]
    assert -1 <= released["srcc"] <= 1 and 0 <= released["acc"] <= 1
    assert published("EAT", "AVA")["srcc"] == pytest.approx(0.7596)  # what the section prints beside it


def test_the_attention_part_ran_its_integrated_gradients(eat):
    assert eat["04_attention"]["ig_steps"] == 4 and eat["04_attention"]["n_test_photos"] == 15


def test_random_weights_skip_the_dat_checkpoint_only_by_the_explicit_switch(tmp_path):
    from dataclasses import replace

    from iaa_lib.eat.pipeline import EAT_PROFILES, new_eat

    full = EAT_PROFILES.full
    assert full.dat_weights == full.dat_checkpoint and replace(full, weights="random").dat_weights == ""
    with pytest.raises(FileNotFoundError, match="dat_base_in1k_224.pth"):
        new_eat("smoke", "eat_textbook", tmp_path / "dat_base_in1k_224.pth")  # "pretrained" and no file: the error
    with pytest.raises(ValueError, match="weights must be one of"):
        replace(full, weights="none")


def test_a_missing_manifest_names_the_data_check_command(tmp_path):
    from dataclasses import replace

    from iaa_lib.eat.pipeline import EAT_PROFILES, labelled_parts

    with pytest.raises(FileNotFoundError, match="python -m iaa_lib data check"):
        labelled_parts("ava", replace(EAT_PROFILES.full, manifest=str(tmp_path / "ava_manifest.csv")))
    with pytest.raises(ValueError, match="not both"):
        labelled_parts("ava", replace(EAT_PROFILES.full, data_root=str(tmp_path)))
