"""SSMR's full-profile rehearsal: Swin-V2-B semantic and EfficientNet-Lite0 Gram-style features built with random
weights, the paper's 6-layer 1024-wide head, 2 optimiser steps per run. No BAID image ships with the book, so the
rehearsal reads the miniature AVA's manifest as the art set (AVA is one of the paper's datasets); the BAID manifest
path is checked below on BAID's real label rows with stand-in photos."""
from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pandas as pd
import pytest

from iaa_lib.data.check import check_dataset, write_manifest
from iaa_lib.data.labelled_sets import labelled_set
from iaa_lib.data.sample import SAMPLE_DIR
from iaa_lib.paths import DATA_DIR
from iaa_lib.ssmr.chapter import PROFILES
from iaa_lib.ssmr.pipeline import art_set, art_set_name

PARTS = ("01_references", "02_train", "03_evaluate", "04_graph")
# Headless backbones: timm's ImageNet models minus the 1000-way classifier (in_features * 1000 + 1000):
# swinv2_base_window8_256 87,918,816 - 1,025,000; tf_efficientnet_lite0 4,652,008 - 1,281,000.
SWINV2_B_HEADLESS, LITE0_HEADLESS = 87_918_816 - 1_025_000, 4_652_008 - 1_281_000
# The code's RsgcnModel(1024, 1024, 1024, 5, 1) without its unused gcn_fc (iaa_lib.ssmr.model), plus the textbook
# variant's 6 edge-prior weights (one per GCN layer).
FULL_HEAD_TEXTBOOK = 26_296_321 + 6


@pytest.fixture(scope="module")
def ssmr(rehearsal_runs):
    return {part: rehearsal_runs[f"notebooks/ssmr/{part}"]["metrics"] for part in PARTS}


def _numbers(value):
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_every_part_ran_the_full_profile_with_random_weights_and_a_step_cap(ssmr):
    for part, metrics in ssmr.items():
        assert (metrics["profile"], metrics["config"], metrics["weights"], metrics["max_steps"]) == (
            "full", "full", "random", 2), part
        assert all(math.isfinite(n) for n in _numbers(metrics)), part


def test_references_used_swin_v2_b_semantics_and_gram_style_on_the_manifest(ssmr, mini_ava):
    refs = ssmr["01_references"]
    assert refs["art_set"] == "ava" and refs["k"] == 4 and refs["image_size"] == 256
    assert (refs["semantic_backbone"], refs["semantic_dim"]) == ("timm:swinv2_base_window8_256", 1024)
    assert refs["semantic_backbone_parameters"] == SWINV2_B_HEADLESS
    assert refs["style_backbone"] == "timm:tf_efficientnet_lite0" and refs["style_backbone_parameters"] == LITE0_HEADLESS
    unreadable = set(mini_ava.missing) | set(mini_ava.corrupt) | {mini_ava.cut_row}
    assert refs["n_images"] == len(set(mini_ava.ids) - unreadable)


def test_the_paper_head_trained_two_steps_per_run(ssmr):
    train = ssmr["02_train"]
    assert train["art_set"] == "ava" and train["art_parameters"] == train["parameters"] == FULL_HEAD_TEXTBOOK
    assert (train["art_node_dim"], train["art_layers"]) == (1024, 6)
    assert train["synthetic_optimiser_steps"] == train["art_optimiser_steps"] == 2


# ----------------------------------------------------------------------------- no rehearsal needed
def test_full_profile_reads_baid_through_the_data_checks_manifest():
    full = PROFILES.get("full")
    assert (full.manifest, full.data_root, full.weights, full.max_steps) == ("runs/data/baid_manifest.csv", "",
                                                                            "pretrained", 0)
    assert full.features().weights == "imagenet"
    random = replace(full, weights="random").features()
    assert (random.weights, random.style_weights) == (None, None)


def _baid_layout(root):
    """BAID's released layout (dataset/{split}_set.csv, images/) with its first real rows and stand-in photos."""
    photos = sorted((SAMPLE_DIR / "images").glob("*.jpg"))
    (root / "dataset").mkdir(parents=True)
    (root / "images").mkdir()
    rows = {}
    for split, count in (("train", 6), ("val", 2), ("test", 2)):
        frame = pd.read_csv(DATA_DIR / "labels" / f"baid_{split}.csv").head(count)
        frame[["image", "score"]].to_csv(root / "dataset" / f"{split}_set.csv", index=False)
        rows[split] = frame
    for photo, name in zip(photos, [n for frame in rows.values() for n in frame["image"]]):
        shutil.copyfile(photo, root / "images" / name)
    return rows


def test_a_baid_manifest_gives_baids_official_splits_and_scores(tmp_path):
    rows = _baid_layout(tmp_path / "BAID")
    manifest = write_manifest(check_dataset("baid", tmp_path / "BAID", progress=False), tmp_path / "baid.csv")
    assert art_set_name("", manifest) == "baid"
    frame, splits = art_set("", manifest=manifest)
    assert {name: len(ids) for name, ids in splits.items()} == {"train": 6, "val": 2, "test": 2}
    expected = {n.rsplit(".", 1)[0]: s for frame_ in rows.values() for n, s in zip(frame_["image"], frame_["score"])}
    assert dict(zip(frame["image_id"], frame["mos"])) == pytest.approx(expected)
    assert labelled_set("baid", manifest=manifest)[2] == splits


def test_one_art_source_only_and_baid_needs_a_manifest(tmp_path):
    with pytest.raises(ValueError, match="one art set source"):
        art_set_name(tmp_path, tmp_path / "baid.csv")
    with pytest.raises(ValueError, match="data-check manifest"):
        labelled_set("baid")
    with pytest.raises(FileNotFoundError, match="data check"):
        art_set_name("", tmp_path / "absent.csv")
