"""Tests of iaa_lib.blocks.retrieval: exact top-k vs brute force, self-exclusion, train-only guard, feature cache."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from iaa_lib.blocks.retrieval import (
    FeatureStore,
    ReferenceGraphDataset,
    ReferenceLeakError,
    SearchResult,
    assert_references_train_only,
    build_index,
    extract_features,
    feature_cache_key,
    load_references,
    random_references,
    prepare_reference_graph_data,
    references_for_splits,
    save_references,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _features(n: int, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator), [f"img{i:04d}" for i in range(n)]


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_search_matches_brute_force_across_chunks(metric):
    train, train_ids = _features(300)
    queries, _ = _features(37, seed=1)
    index = build_index(train, train_ids, metric=metric, query_chunk=8, reference_chunk=50)
    result = index.search(queries, k=7, query_ids=[f"q{i}" for i in range(37)])
    if metric == "l2":
        brute = torch.cdist(queries.double(), train.double())
    else:
        brute = 1 - nn.functional.normalize(queries.double(), dim=1) @ nn.functional.normalize(train.double(), dim=1).T
    expected_d, expected_i = brute.topk(7, dim=1, largest=False)
    assert torch.equal(result.indices, expected_i)
    assert torch.allclose(result.distances.double(), expected_d, atol=1e-4)
    assert result.ref_ids[3] == [train_ids[j] for j in expected_i[3].tolist()]
    assert (result.distances.diff(dim=1) >= 0).all()


def test_training_queries_exclude_themselves_and_get_the_next_neighbours():
    train, train_ids = _features(120)
    index = build_index(train, train_ids, reference_chunk=32, query_chunk=16)
    result = index.search(train, k=5, query_ids=train_ids)
    brute = torch.cdist(train.double(), train.double())
    brute.fill_diagonal_(float("inf"))
    assert torch.equal(result.indices, brute.topk(5, dim=1, largest=False).indices)
    for query, refs in result.as_dict().items():
        assert query not in refs
    # without exclusion each training query finds itself at rank 1, distance 0 (official test-list behaviour)
    with_self = index.search(train, k=5, query_ids=train_ids, exclude_self=False)
    assert with_self.ref_ids[0][0] == train_ids[0]
    assert with_self.distances[:, 0].abs().max() < 1e-2


def test_build_index_refuses_held_out_ids_and_guard_catches_leaks():
    train, ids = _features(20)
    with pytest.raises(ReferenceLeakError, match="held-out"):
        build_index(train, ids, forbidden_ids=["img0003", "other"])
    index = build_index(train[:15], ids[:15], forbidden_ids=ids[15:])
    test_refs = index.search(train[15:], k=3, query_ids=ids[15:])
    assert_references_train_only(test_refs, ids[:15], held_out_ids=ids[15:])
    assert all(r in ids[:15] for refs in test_refs.ref_ids for r in refs)
    with pytest.raises(ReferenceLeakError, match="non-training"):
        assert_references_train_only({"img0016": ["img0001", "img0017"]}, ids[:15], held_out_ids=ids[15:])
    with pytest.raises(ReferenceLeakError, match="own reference"):
        assert_references_train_only({"img0001": ["img0001"]}, ids[:15])
    with pytest.raises(ReferenceLeakError, match="overlap"):
        assert_references_train_only({}, ids[:15], held_out_ids=ids[14:])


def test_search_rejects_bad_inputs():
    train, ids = _features(10)
    index = build_index(train, ids)
    with pytest.raises(ValueError, match="query_features"):
        index.search(torch.randn(2, 3), k=2, query_ids=["a", "b"])
    with pytest.raises(ValueError, match="k must be"):
        index.search(train, k=10, query_ids=ids)  # only 9 others remain after self-exclusion
    with pytest.raises(ValueError, match="needs query_ids"):
        index.search(train, k=2)
    with pytest.raises(ValueError, match="unique"):
        build_index(train[:2], ["a", "a"])
    with pytest.raises(ValueError, match="metric"):
        build_index(train, ids, metric="dot")


def test_random_references_are_training_ids_without_self():
    ids = [f"t{i}" for i in range(6)]
    result = random_references(ids + ["x"], ids, k=5, seed=3)
    assert_references_train_only(result, ids, held_out_ids=["x"])
    assert all(len(set(r)) == 5 for r in result.ref_ids)
    assert random_references(ids, ids, k=2, seed=3).ref_ids == random_references(ids, ids, k=2, seed=3).ref_ids


def test_reference_file_round_trip(tmp_path):
    result = SearchResult(["a", "b"], [["c", "d"], ["e", "c"]], torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2))
    path = save_references(result, tmp_path / "refs.txt")
    assert load_references(path) == result.as_dict()
    (tmp_path / "crlf.txt").write_bytes(b"a.jpg c.jpg d.jpg\r\n")
    assert load_references(tmp_path / "crlf.txt", strip_suffix=".jpg") == {"a": ["c", "d"]}


class _MeanColour(nn.Module):
    """Tiny 'backbone': per-channel mean scaled by a factor, so two instances give different features."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, x):
        return x.mean(dim=(2, 3)) * self.scale


def _to_tensor(image):
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)


@pytest.fixture()
def tiny_images(tmp_path):
    ids = ["a", "b", "c"]
    for i, image_id in enumerate(ids):
        Image.new("RGB", (8, 8), color=(40 * i, 80, 200 - 50 * i)).save(tmp_path / f"{image_id}.jpg")
    return pd.DataFrame({"image_id": ids, "mos": [4.0, 5.0, 6.0]}), tmp_path


def test_extract_features_caches_and_invalidates_on_backbone_change(tiny_images, tmp_path, monkeypatch):
    frame, image_dir = tiny_images
    cache = tmp_path / "cache"
    kwargs = dict(transform=_to_tensor, cache_dir=cache, batch_size=2)
    first = extract_features(frame, image_dir, backbone_name="mean_a", weights=None, backbone=_MeanColour(1.0), **kwargs)
    assert first.features.shape == (3, 3) and first.ids == ["a", "b", "c"]
    # same key -> loaded from disk, even with a module that would give different numbers
    again = extract_features(frame, image_dir, backbone_name="mean_a", weights=None, backbone=_MeanColour(2.0), **kwargs)
    assert again.key == first.key and torch.equal(again.features, first.features)
    # another backbone name, other weights or another transform -> new key, fresh extraction
    other = extract_features(frame, image_dir, backbone_name="mean_b", weights=None, backbone=_MeanColour(2.0), **kwargs)
    assert other.key != first.key and torch.allclose(other.features, 2 * first.features)
    reweighted = extract_features(frame, image_dir, backbone_name="mean_a", weights="v2", backbone=_MeanColour(1.0), **kwargs)
    assert reweighted.key not in (first.key, other.key)
    assert len(list(cache.iterdir())) == 3


def test_cache_key_is_the_run_fingerprint_of_the_documented_parts(tiny_images):
    # The one run-hash helper: sha256 over each part's sorted-key JSON, first 16 hex digits; files by (id, size:mtime).
    frame, image_dir = tiny_images
    paths = [image_dir / f"{i}.jpg" for i in frame.image_id]
    files = [[i, f"{p.stat().st_size}:{p.stat().st_mtime_ns}"] for i, p in zip(frame.image_id, paths)]
    parts = ["FeatureStore", "m", "None", repr(_to_tensor), files]
    expected = hashlib.sha256(b"".join(json.dumps(part, sort_keys=True).encode() for part in parts)).hexdigest()[:16]
    assert feature_cache_key("m", None, _to_tensor, list(frame.image_id), paths) == expected


def test_cache_key_tracks_ids_and_image_content(tiny_images):
    frame, image_dir = tiny_images
    paths = [image_dir / f"{i}.jpg" for i in frame.image_id]
    key = feature_cache_key("m", None, _to_tensor, list(frame.image_id), paths, fingerprint="bytes")
    assert feature_cache_key("m", None, _to_tensor, ["a", "b", "x"], paths, fingerprint="bytes") != key
    Image.new("RGB", (8, 8), color=(1, 2, 3)).save(paths[0])
    assert feature_cache_key("m", None, _to_tensor, list(frame.image_id), paths, fingerprint="bytes") != key
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        feature_cache_key("m", None, None, ["missing"], [image_dir / "missing.jpg"])


def test_reference_graph_dataset_orders_query_then_references():
    features, ids = _features(6, d=4)
    store = FeatureStore(ids, features)
    frame = pd.DataFrame({"image_id": ids[:2], "mos": [3.0, 7.0], **{f"dist_{i}": [0.1, 0.1] for i in range(1, 11)}})
    refs = {ids[0]: [ids[3], ids[2], ids[5]], ids[1]: [ids[4], ids[0], ids[2]]}
    dataset = ReferenceGraphDataset(frame, store, refs, num_references=2)
    item = dataset[1]
    assert torch.equal(item["nodes"], features[[1, 4, 0]])
    assert item["dist"].shape == (10,) and float(item["mos"]) == 7.0 and item["image_id"] == ids[1]
    assert ReferenceGraphDataset(frame, store, refs, num_references=0)[0]["nodes"].shape == (1, 4)
    with pytest.raises(KeyError, match="no references"):
        ReferenceGraphDataset(frame, store, {ids[0]: refs[ids[0]]}, num_references=2)
    with pytest.raises(ValueError, match="4 needed"):
        ReferenceGraphDataset(frame, store, refs, num_references=4)


@pytest.mark.parametrize("mode", ["retrieved", "random"])
def test_references_for_splits_use_training_images_only(mode):
    features, ids = _features(40, d=8)
    store = FeatureStore(ids, features)
    splits = {"train": ids[:24], "val": ids[24:32], "test": ids[32:]}
    refs = references_for_splits(store, splits, k=4, reference_mode=mode, reference_chunk=7)
    assert set(refs) == {"train", "val", "test"}
    for name, result in refs.items():
        assert result.query_ids == splits[name] and all(len(r) == 4 for r in result.ref_ids)
        assert all(r in splits["train"] for refs_ in result.ref_ids for r in refs_)
    assert all(q not in r for q, r in refs["train"].as_dict().items())
    if mode == "retrieved":  # test queries get their nearest training images, not val/test ones
        brute = torch.cdist(features[32:], features[:24]).topk(4, largest=False).indices
        assert refs["test"].ref_ids == [[ids[j] for j in row] for row in brute.tolist()]
    with pytest.raises(ReferenceLeakError):
        references_for_splits(store, {"train": ids[:24], "test": ids[20:]}, k=2)


def test_prepare_reference_graph_data_end_to_end(tmp_path, monkeypatch):
    ids = [f"i{n}" for n in range(10)]
    for n, image_id in enumerate(ids):
        Image.new("RGB", (8, 8), color=(25 * n, 100, 250 - 25 * n)).save(tmp_path / f"{image_id}.jpg")
    frame = pd.DataFrame({"image_id": ids, "mos": np.linspace(2, 8, 10)})
    import iaa_lib.blocks.backbones as backbones

    built = []

    def fake_create_backbone(name, weights=None):
        built.append(name)
        module = _MeanColour(1.0)
        module.mean, module.std, module.input_size = (0.5,) * 3, (0.5,) * 3, 8
        return module

    monkeypatch.setattr(backbones, "create_backbone", fake_create_backbone)
    splits = {"train": ids[:6], "val": ids[6:8], "test": ids[8:]}
    kwargs = dict(node_backbone=("fake:a", None), retrieval_backbone=("fake:a", None), cache_dir=tmp_path / "c", k=3)
    data = prepare_reference_graph_data(frame, tmp_path, splits, **kwargs)
    assert data.retrieval_store is data.node_store and built == ["fake:a"]
    prepare_reference_graph_data(frame, tmp_path, splits, **kwargs)
    assert built == ["fake:a"]  # second call: cache hit, no backbone built
    sets = data.datasets(num_references=3)
    assert {n: len(d) for n, d in sets.items()} == {"train": 6, "val": 2, "test": 2}
    assert sets["test"][0]["nodes"].shape == (4, 3) and sets["test"][0]["image_id"] == "i8"
    random_sets = data.datasets(num_references=3, reference_mode="random", seed=1)
    assert all(set(row[1:]) <= set(splits["train"]) for row in random_sets["val"].node_ids)


def test_references_for_splits_read_query_features_one_block_at_a_time(monkeypatch):
    features, ids = _features(50, d=6)
    store = FeatureStore(ids, features)
    splits = {"train": ids[:30], "test": ids[30:]}
    expected = references_for_splits(store, splits, k=3)  # default blocks hold every query at once
    requested = []
    real_rows = FeatureStore.rows

    def spy(self, wanted):
        wanted = list(wanted)
        requested.append(len(wanted))
        return real_rows(self, wanted)

    monkeypatch.setattr(FeatureStore, "rows", spy)
    blocked = references_for_splits(store, splits, k=3, query_chunk=4, reference_chunk=7)
    assert requested[0] == 30 and max(requested[1:]) == 4  # the index's training rows, then query blocks of 4
    for name in splits:
        assert blocked[name].ref_ids == expected[name].ref_ids
        assert torch.allclose(blocked[name].distances, expected[name].distances)
