"""Reference exclusion (self, source group, near-duplicates), the no-information controls, MILNet's multi-level
features and the run hashes of MILNet / SSMR (retrieval metric, style store), checked on tiny hand-made data."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from iaa_lib.blocks.retrieval import (
    FeatureStore, ReferenceGraphData, ReferenceGraphDataset, ReferenceLeakError, assert_references_train_only,
    build_index, random_references, references_for_splits,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _points():
    # 1-d features on a line: a: 0, 1, 2 (group A); b: 2.1, 10, 11 (group B); duplicate of a1 at 1.0
    ids = ["a0", "a1", "a2", "b0", "b1", "b2", "dup"]
    values = torch.tensor([[0.0], [1.0], [2.0], [2.1], [10.0], [11.0], [1.0]]) + 5.0  # off the origin: norms ~ 5..16
    groups = {"a0": "A", "a1": "A", "a2": "A", "b0": "B", "b1": "B", "b2": "B", "dup": "D", "q": "A"}
    return ids, values, groups


def test_search_excludes_self_source_group_and_near_duplicates():
    ids, values, groups = _points()
    plain = build_index(values, ids, near_duplicate=0.0)
    assert plain.search(values[1:2], 2, query_ids=["a1"]).ref_ids == [["dup", "a0"]]  # the duplicate is nearest
    dedup = build_index(values, ids)  # default near_duplicate: a distance ~0 relative to the norms is the same image
    assert dedup.search(values[1:2], 2, query_ids=["a1"]).ref_ids == [["a0", "a2"]]
    grouped = build_index(values, ids, groups=groups)
    # a1's own group (a0, a2) and its duplicate are excluded: b0 (2.1) then b1 (10)
    assert grouped.search(values[1:2], 2, query_ids=["a1"]).ref_ids == [["b0", "b1"]]
    # a held-out query of group A gets no group-A image either
    assert grouped.search(torch.tensor([[7.5]]), 1, query_ids=["q"]).ref_ids == [["b0"]]
    with pytest.raises(ValueError, match="k must be in"):
        grouped.search(values[1:2], 5, query_ids=["a1"])  # 7 rows - a group of 3: at most 4
    with pytest.raises(KeyError, match="no source group"):
        grouped.search(values[:1], 1, query_ids=["unknown"])


def test_random_references_and_leak_guard_respect_groups():
    ids, _, groups = _points()
    drawn = random_references(["a1", "q"], ids, 3, seed=1, groups=groups)
    for query, refs in drawn.as_dict().items():
        assert len(set(refs)) == 3 and all(groups[r] != groups[query] for r in refs)
    assert_references_train_only(drawn, ids, groups=groups)
    with pytest.raises(ReferenceLeakError, match="own source group"):
        assert_references_train_only({"a1": ["a0"]}, ids, groups=groups)
    with pytest.raises(ValueError, match="outside|other than"):
        random_references(["a1"], ids, 5, groups=groups)


def _graph_data():
    ids = [f"i{n}" for n in range(10)]
    features = torch.arange(30, dtype=torch.float32).reshape(10, 3)
    frame = pd.DataFrame({"image_id": ids, "mos": torch.linspace(2, 8, 10).tolist()})
    splits = {"train": ids[:6], "val": ids[6:8], "test": ids[8:]}
    store = FeatureStore(ids, features, key="k")
    return ReferenceGraphData(frame, splits, store, store, references_for_splits(store, splits, k=2)), features


def test_controls_fill_the_reference_nodes_without_new_information():
    data, features = _graph_data()
    copies = data.datasets(2, reference_mode="query_copies")["test"]
    assert torch.equal(copies[0]["nodes"], features[8].repeat(3, 1))
    mean = data.datasets(2, reference_mode="mean")["test"]
    expected_mean = features[:6].mean(0)  # the TRAINING rows' mean, not the test rows'
    assert torch.equal(mean[1]["nodes"][0], features[9])
    assert torch.allclose(mean[1]["nodes"][1:], expected_mean.repeat(2, 1))
    retrieved = data.datasets(2)["test"]
    assert len({copies.fingerprint(), mean.fingerprint(), retrieved.fingerprint()}) == 3
    with pytest.raises(ValueError, match="reference_mode"):
        data.datasets(2, reference_mode="oracle")
    with pytest.raises(ValueError, match="needs references"):
        ReferenceGraphDataset(data.frame, data.node_store, None, 2)


def test_milnet_run_hash_changes_with_the_retrieval_metric_and_groups(tmp_path):
    from dataclasses import replace

    from iaa_lib.milnet.pipeline import MILNetRecipe, train_milnet
    from iaa_lib.training.checkpoints import read_checkpoint

    data, _ = _graph_data()
    data.frame[[f"dist_{k}" for k in range(1, 11)]] = 0.1
    recipe = MILNetRecipe(num_references=2, epochs=1, batch_size=4)
    hashes = []
    for variant in (data, replace(data, metric="cosine"), replace(data, groups={i: i for i in data.frame["image_id"]})):
        # the same references and features each time: only the run's key can tell the variants apart
        run = train_milnet(variant, recipe, tmp_path, "toy")
        hashes.append(read_checkpoint(run.out_dir / "last.pt")["config_hash"])
    assert len(set(hashes)) == 3  # each change retrained (a new hash replaced the checkpoint)


def test_ssmr_run_hash_changes_with_the_style_store_and_metric(tmp_path):
    from dataclasses import replace

    from iaa_lib.ssmr.pipeline import train_ssmr
    from iaa_lib.ssmr.srig import build_reference_setup
    from iaa_lib.training.checkpoints import read_checkpoint

    ids = [f"im{i}" for i in range(12)]
    generator = torch.Generator().manual_seed(3)
    semantic = FeatureStore(ids, torch.randn(12, 6, generator=generator), key="sem")
    style = FeatureStore(ids, torch.randn(12, 5, generator=generator), key="style-a")
    frame = pd.DataFrame({"image_id": ids, "mos": torch.linspace(3, 8, 12).tolist()})
    splits = {"train": ids[:8], "val": ids[8:10], "test": ids[10:]}
    setup = build_reference_setup(frame, splits, semantic, style)
    same_vectors_other_store = replace(setup, style=FeatureStore(ids, style.features, key="style-b"))
    other_metric = replace(setup, semantic_index=build_index(semantic.rows(ids[:8]), ids[:8], metric="cosine"))
    hashes = []
    for variant in (setup, same_vectors_other_store, other_metric):
        train_ssmr(variant, tmp_path, reference_source="random", num_references=2, epochs=1, seed=0)
        hashes.append(read_checkpoint(tmp_path / "last.pt")["config_hash"])
    assert len(set(hashes)) == 3


def test_ssmr_shipped_index_is_an_explicit_checked_reference_source(tmp_path):
    from iaa_lib.ssmr.pipeline import reference_set
    from iaa_lib.ssmr.srig import build_reference_setup

    ids = [f"{100 + i}" for i in range(12)]
    generator = torch.Generator().manual_seed(0)
    semantic = FeatureStore(ids, torch.randn(12, 4, generator=generator))
    style = FeatureStore(ids, torch.randn(12, 3, generator=generator))
    frame = pd.DataFrame({"image_id": ids, "mos": torch.linspace(3, 8, 12).tolist()})
    splits = {"train": ids[:8], "val": ids[8:10], "test": ids[10:]}
    setup = build_reference_setup(frame, splits, semantic, style)
    folder = tmp_path / "index"
    folder.mkdir()
    # the official format: 'query.jpg ref1.jpg ...' with CRLF line ends
    (folder / "AIAA_semantic_style_test_refer_50.txt").write_text("110.jpg 103.jpg 101.jpg 107.jpg \r\n111.jpg 100.jpg 102.jpg 104.jpg \r\n")
    (folder / "AIAA_semantic_style_val_refer_50.txt").write_text("108.jpg 105.jpg 106.jpg\n109.jpg 100.jpg 101.jpg\n")
    references, fill, sources = reference_set(setup, "shipped", 0.5, 2, shipped_index_dir=folder)
    assert fill is None
    assert references["test"] == {"110": ["103", "101"], "111": ["100", "102"]}
    assert sources["test"].startswith("shipped") and sources["val"].startswith("shipped")
    assert sources["train"].startswith("project SRIG")  # no shipped train index: said, not hidden
    with pytest.raises(ValueError, match="shipped_index_dir"):
        reference_set(setup, "shipped", 0.5, 2)
    (folder / "AIAA_semantic_style_val_refer_50.txt").write_text("108.jpg 109.jpg 106.jpg\n109.jpg 100.jpg 101.jpg\n")
    with pytest.raises(ReferenceLeakError):  # a held-out image as a reference is refused
        reference_set(setup, "shipped", 0.5, 2, shipped_index_dir=folder)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        reference_set(setup, "shipped", 0.5, 2, shipped_index_dir=tmp_path / "missing")


def test_mlsp_taps_give_the_papers_16928_channels_and_pool_each_tap():
    from iaa_lib.blocks.backbones import create_backbone
    from iaa_lib.milnet.mlsp import IRV2_MLSP_CHANNELS, MLSP_TAPS, MultiLevelPooled

    irv2 = create_backbone("timm:inception_resnet_v2", weights=None)
    encoder = MultiLevelPooled(irv2, MLSP_TAPS["timm:inception_resnet_v2"])
    with torch.no_grad():
        out = encoder(torch.randn(1, 3, 139, 139))
    assert out.shape == (1, IRV2_MLSP_CHANNELS) == (1, 16_928) and len(encoder.taps) == 43
    lite = create_backbone("timm:tf_efficientnet_lite0", weights=None)
    lite_encoder = MultiLevelPooled(lite, MLSP_TAPS["timm:tf_efficientnet_lite0"])
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        pooled = lite_encoder(images)
        last_block = lite.model.blocks(lite.model.bn1(lite.model.conv_stem(images)))
    assert pooled.shape == (2, 1808)
    assert torch.allclose(pooled[:, -320:], last_block.mean(dim=(2, 3)), atol=1e-5)  # the last tap, pooled by hand
    with pytest.raises(ValueError, match="not modules"):
        MultiLevelPooled(lite, [("no.such.block", "output")])


def test_pca_reduce_uses_training_rows_only():
    from iaa_lib.milnet.mlsp import pca_reduce

    generator = torch.Generator().manual_seed(0)
    train = torch.randn(50, 3, generator=generator) * torch.tensor([5.0, 1.0, 0.1])
    held_out = torch.tensor([[0.0, 0.0, 100.0]])  # a huge held-out value on the smallest training axis
    ids = [f"t{i}" for i in range(50)] + ["h"]
    store = FeatureStore(ids, torch.cat([train, held_out]), key="src")
    reduced = pca_reduce(store, ids[:50], 1)
    axis = torch.linalg.svd(train - train.mean(0), full_matrices=False).Vh[0]
    expected = (store.features - train.mean(0)) @ axis
    assert torch.allclose(reduced.features[:, 0].abs(), expected.abs(), atol=1e-4)  # the top axis, up to sign
    assert reduced.dim == 1 and reduced.key != store.key


def test_adaemd_relative_weight_is_the_factor_over_its_batch_mean():
    from iaa_lib.losses import AdaEMDLoss
    from iaa_lib.milnet.model import adaemd_relative_weights

    loss = AdaEMDLoss()
    loss.C.fill_(0.1)
    loss.tau.fill_(0.0)  # every sample hard: factor C + 2d
    pred = torch.softmax(torch.randn(4, 10, generator=torch.Generator().manual_seed(0)), dim=1)
    target = torch.full((4, 10), 0.1)
    d = loss.distance(pred, target)
    expected = (0.1 + 2 * d) / (0.1 + 2 * d).mean()
    assert torch.allclose(adaemd_relative_weights(loss, pred, target), expected)


def test_seed_ablation_table_against_scipy():
    import numpy as np
    from scipy.stats import spearmanr

    from iaa_lib.metrics import seed_ablation_table

    truth = np.arange(8.0)
    base = [truth + np.array([0, 3, -3, 0, 2, -2, 0, 1]), truth[::-1].copy()]
    better = [truth.copy(), truth + np.array([0, 1, -1, 0, 0, 0, 0, 0])]
    table = seed_ablation_table(truth, {"base": base, "better": better}, "base", n_boot=200)
    by_hand = np.mean([spearmanr(a, truth)[0] - spearmanr(b, truth)[0] for a, b in zip(better, base)])
    assert table.loc["better", "difference"] == pytest.approx(by_hand)
    assert table.loc["better", "srcc"] == pytest.approx(np.mean([spearmanr(a, truth)[0] for a in better]))
    assert table.loc["base", "difference"] == 0 and table.loc["better", "seeds"] == 2
    with pytest.raises(ValueError, match="baseline"):
        seed_ablation_table(truth, {"base": base}, "other")
