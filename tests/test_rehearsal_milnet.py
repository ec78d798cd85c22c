"""MILNet's full-profile rehearsal: Inception-ResNet-v2 node and ResNet-50 retrieval features built with random
weights, the miniature AVA read through its manifest, the paper's 6-layer 512-wide head, 2 optimiser steps per run.

Reads the metrics of the `rehearsal_runs` fixture (tests/conftest.py); the unit tests below it need no rehearsal."""
from __future__ import annotations

import math

import pytest

from iaa_lib.milnet.chapter import PROFILES
from iaa_lib.milnet.model import OFFICIAL_PARAMETERS, UNUSED_GCN_FC_PARAMETERS
from iaa_lib.milnet.pipeline import MILNetRecipe, milnet_graph_data

PARTS = ("01_references", "02_train", "03_evaluate", "04_graph")
# Headless backbones: the published ImageNet models minus their 1000-way classifier (in_features * 1000 + 1000):
# timm inception_resnet_v2 55,843,464 - 1,537,000; torchvision resnet50 25,557,032 - 2,049,000.
IRV2_HEADLESS, RESNET50_HEADLESS = 55_843_464 - 1_537_000, 25_557_032 - 2_049_000
# The paper's head on 1536-d nodes instead of 6144-d: only the 1x1 embedding conv (in x 512 weights) shrinks.
FULL_HEAD_ON_IRV2 = OFFICIAL_PARAMETERS - UNUSED_GCN_FC_PARAMETERS - (6144 - 1536) * 512


@pytest.fixture(scope="module")
def milnet(rehearsal_runs):
    return {part: rehearsal_runs[f"notebooks/milnet/{part}"]["metrics"] for part in PARTS}


def _numbers(value):
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_every_part_ran_the_full_profile_with_random_weights_and_a_step_cap(milnet):
    for part, metrics in milnet.items():
        assert (metrics["profile"], metrics["weights"], metrics["max_steps"]) == ("full", "random", 2), part
        assert all(math.isfinite(n) for n in _numbers(metrics)), part


def test_references_came_from_the_paper_backbones_on_the_manifest(milnet, mini_ava):
    refs = milnet["01_references"]
    assert refs["real_dataset"] == "ava" and refs["k"] == 4
    assert (refs["real_node_backbone"], refs["real_node_dim"], refs["real_node_image_size"]) == (
        "timm:inception_resnet_v2", 1536, 299)
    assert (refs["real_retrieval_backbone"], refs["real_retrieval_dim"], refs["real_retrieval_image_size"]) == (
        "torchvision:resnet50", 2048, 224)
    assert refs["real_node_backbone_parameters"] == IRV2_HEADLESS
    assert refs["real_retrieval_backbone_parameters"] == RESNET50_HEADLESS
    assert refs["real_node_backbone_weights"] == refs["real_retrieval_backbone_weights"] == "None"  # random init
    unreadable = set(mini_ava.missing) | set(mini_ava.corrupt) | {mini_ava.cut_row}
    sizes = refs["real_split_sizes"]
    assert sum(sizes.values()) == len(set(mini_ava.ids) - unreadable)  # every readable labelled photo, once
    assert sizes["test"] == len(set(mini_ava.test_ids) - unreadable)  # generic_test.jpgl's readable photos
    assert refs["syn_bruteforce_agreement"] == 1.0 and refs["syn_train_self_hits"] == 0


def test_the_paper_head_trained_two_steps_per_run(milnet):
    train = milnet["02_train"]
    assert train["paper_head_parameters"] == OFFICIAL_PARAMETERS - UNUSED_GCN_FC_PARAMETERS
    assert train["n_parameters"] == train["real_n_parameters"] == FULL_HEAD_ON_IRV2
    assert train["real_node_feature_dim"] == 1536
    assert train["syn_optimiser_steps"] == train["real_optimiser_steps"] == 2
    assert milnet["03_evaluate"]["config"] == "full"
    assert milnet["04_graph"]["n_layers"] == 6


# ----------------------------------------------------------------------------- no rehearsal needed
def test_full_profile_reads_ava_through_the_data_checks_manifest():
    full = PROFILES.get("full")
    assert (full.manifest, full.real_dataset, full.weights, full.max_steps) == (
        "runs/data/ava_manifest.csv", "ava", "pretrained", 0)
    smoke = PROFILES.get("smoke")
    assert (smoke.manifest, smoke.weights, smoke.max_steps) == ("", "pretrained", 0)
    assert full.recipe().slug() == MILNetRecipe(config="full", epochs=10, batch_size=128, lr=3e-4,
                                                schedule="step").slug()  # no cap: the slug names none


def test_a_step_cap_gets_its_own_checkpoint_folder():
    assert MILNetRecipe(max_steps=2).slug() == MILNetRecipe().slug() + "_m2"


def test_manifest_and_data_root_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="one source of AVA"):
        milnet_graph_data("ava", "full", manifest=tmp_path / "m.csv", data_root=tmp_path, test_list=tmp_path / "t")
    with pytest.raises(ValueError, match="dataset='ava' alone"):
        milnet_graph_data("ava_sample", "smoke", manifest=tmp_path / "m.csv")


def test_weights_other_than_pretrained_or_random_are_refused(tmp_path):
    with pytest.raises(ValueError, match="weights must be one of"):
        milnet_graph_data("ava_sample", "smoke", weights="imagenet", run_dir=tmp_path)
