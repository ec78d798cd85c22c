"""SSMR: MRGR head (shapes, parameter count, mappings, loss, gradients), SRIG fusion, BAID loader, leak guards."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from iaa_lib.data.baid import BAID_COUNTS, baid_labels, load_baid
from iaa_lib.ssmr.model import AS_PUBLISHED_SCORE_RANGE, SSMR, SSMRLoss, denormalise_score, normalise_score
from iaa_lib.blocks.retrieval import FeatureStore, ReferenceLeakError, assert_references_train_only, build_index
from iaa_lib.ssmr.srig import (
    FusedIndex, SSMRGraphDataset, build_reference_setup, distance_scale, fused_similarity_prior, load_shipped_index,
)
from iaa_lib.ssmr.pipeline import run_folder

SPEC_HEAD_PARAMETERS = 26_301_442  # spec: RsgcnModel(1024, 1024, 1024, 5, 1), incl. the unused 5,121-param gcn_fc


def tiny(**kw) -> SSMR:
    return SSMR("smoke", min_score=2.0, max_score=8.0, in_dim=12, hidden=8, layers=2, **kw)


def test_full_config_parameter_count_matches_spec():
    with torch.device("meta"):
        as_published = SSMR("full", variant="as_published")
        textbook = SSMR("full", min_score=2.700217, max_score=10.0)
    count = sum(p.numel() for p in as_published.parameters())
    assert count == SPEC_HEAD_PARAMETERS - 5_121  # the unused gcn_fc is not built
    assert abs(count - SPEC_HEAD_PARAMETERS) / SPEC_HEAD_PARAMETERS < 0.01
    assert sum(p.numel() for p in textbook.parameters()) == count + 6  # one edge-prior weight per GCN layer


def test_forward_shapes_and_input_keys():
    model = tiny()
    assert model.input_keys == ("nodes", "prior")
    assert tiny(edge_prior="none").input_keys == ("nodes",)
    nodes, prior = torch.randn(3, 5, 12), torch.rand(3, 5, 5)
    out = model(nodes, prior)
    assert out["pred"].shape == (3,) and out["raw"].shape == (3,)
    assert out["affinities"].shape == (3, 2, 5, 5)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="min_score and max_score"):
        SSMR("smoke")
    with pytest.raises(ValueError, match="config"):
        SSMR("huge", variant="as_published")
    with pytest.raises(ValueError, match="prior"):
        tiny()(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match="nodes of shape"):
        tiny()(torch.randn(2, 4, 12), torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        SSMRLoss(2, 8)(torch.zeros(2, 1), torch.zeros(2, 1))


def test_as_published_defaults():
    model = SSMR("smoke", variant="as_published")
    assert (model.min_score, model.max_score) == AS_PUBLISHED_SCORE_RANGE
    assert model.prediction_mapping == "sigmoid" and model.input_keys == ("nodes",)


def test_min_max_round_trip_and_hand_values():
    scores = torch.tensor([2.75695, 5.0, 10.0])
    normalised = normalise_score(scores, *AS_PUBLISHED_SCORE_RANGE)
    assert torch.allclose(normalised, torch.tensor([0.0, (5 - 2.75695) / 7.24305, 1.0]))
    assert torch.allclose(denormalise_score(normalised, *AS_PUBLISHED_SCORE_RANGE), scores)


def test_prediction_mappings_train_vs_eval():
    model = tiny()
    raw = torch.tensor([-0.5, 0.25, 1.5])
    assert torch.allclose(model.to_score(raw, "raw"), torch.tensor([-1.0, 3.5, 11.0]))
    assert torch.allclose(model.to_score(raw, "clip"), torch.tensor([2.0, 3.5, 8.0]))
    assert torch.allclose(model.to_score(raw, "sigmoid"), 2.0 + 6.0 * torch.sigmoid(raw))
    nodes, prior = torch.randn(4, 5, 12), torch.rand(4, 5, 5)
    model.train()
    out = model(nodes, prior)
    assert torch.allclose(out["pred"], 2.0 + 6.0 * out["raw"])  # training: affine, so the loss sees o
    model.eval()
    out = model(nodes, prior)
    assert torch.allclose(out["pred"], 2.0 + 6.0 * out["raw"].clamp(0, 1))


def test_loss_is_smooth_l1_on_normalised_scores():
    loss = SSMRLoss(2.0, 8.0)
    pred, target = torch.tensor([2.0, 8.0, 14.0]), torch.tensor([5.0, 5.0, 2.0])
    # normalised: pred (0, 1, 2), target (0.5, 0.5, 0); |d| = .5, .5, 2 -> huber .125, .125, 1.5
    assert loss(pred, target).item() == pytest.approx((0.125 + 0.125 + 1.5) / 3)


def test_gradients_reach_every_part_that_learns():
    torch.manual_seed(0)
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    nodes, prior, target = torch.randn(8, 5, 12), torch.rand(8, 5, 5), torch.rand(8) * 6 + 2
    for _ in range(3):  # the residual BNs start at zero: after a few steps gradients reach θ, φ, g too
        optimizer.zero_grad()
        SSMRLoss(2.0, 8.0)(model(nodes, prior)["pred"], target).backward()
        optimizer.step()
    names = ["head.embed.0.weight", "head.gcn.0.theta.0.weight", "head.gcn.1.g.0.weight",
             "head.gcn.1.out_bn.weight", "head.prior_weight", "head.fc.weight"]
    grads = dict(model.named_parameters())
    for name in names:
        assert grads[name].grad is not None and grads[name].grad.abs().sum() > 0, name


def test_bf16_autocast_forward():
    model = tiny().eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 5, 12), torch.rand(2, 5, 5))
    assert torch.isfinite(out["pred"].float()).all()


# ----------------------------------------------------------------------------- SRIG
def _stores(n_train=12, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"tr{i}" for i in range(n_train)] + [f"te{i}" for i in range(n_test)]
    semantic = FeatureStore(ids, torch.tensor(rng.normal(size=(len(ids), 6)), dtype=torch.float32))
    style = FeatureStore(ids, torch.tensor(rng.normal(size=(len(ids), 5)), dtype=torch.float32))
    return ids[:n_train], ids[n_train:], semantic, style


def test_fused_index_endpoints_equal_single_descriptor_rankings():
    train, test, semantic, style = _stores()
    sem_index, sty_index = build_index(semantic.rows(train), train), build_index(style.rows(train), train)
    for alpha, single, store in ((1.0, sem_index, semantic), (0.0, sty_index, style)):
        fused = FusedIndex(sem_index, sty_index, alpha=alpha, candidates=len(train))
        got = fused.search(semantic.rows(test), style.rows(test), 3, test)
        expected = single.search(store.rows(test), 3, test)
        assert got.ref_ids == expected.ref_ids


def test_fused_distance_hand_computed_and_exact():
    train, test, semantic, style = _stores()
    sem_index, sty_index = build_index(semantic.rows(train), train), build_index(style.rows(train), train)
    fused = FusedIndex(sem_index, sty_index, alpha=0.3, candidates=len(train))
    got = fused.search(semantic.rows(test), style.rows(test), 4, test)
    s, t = fused.semantic_scale, fused.style_scale
    d_sem = torch.cdist(semantic.rows(test), semantic.rows(train))
    d_sty = torch.cdist(style.rows(test), style.rows(train))
    brute = 0.3 * (d_sem - s.mean) / s.std + 0.7 * (d_sty - t.mean) / t.std
    best, order = brute.topk(4, dim=1, largest=False)
    assert torch.allclose(got.distances, best, atol=1e-5)
    assert got.ref_ids == [[train[j] for j in row] for row in order.tolist()]


def test_distance_scale_matches_numpy():
    features = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    scale = distance_scale(build_index(features, ["a", "b", "c"]), pairs=3000)
    # pairs are uniform over ordered distinct pairs: distances 5, 10, 5 -> mean 6.67, std 2.36
    assert scale.mean == pytest.approx(20 / 3, rel=0.05)
    assert scale.std == pytest.approx(np.std([5, 10, 5]), rel=0.05)


def test_references_come_from_train_only_and_exclude_self():
    train, test, semantic, style = _stores()
    setup = build_reference_setup(None, {"train": train, "test": test}, semantic, style)
    refs = setup.references(alpha=0.5, k=4)
    for name in ("train", "test"):
        for query, ref_ids in refs[name].as_dict().items():
            assert set(ref_ids) <= set(train) and query not in ref_ids
    with pytest.raises(ReferenceLeakError):
        build_reference_setup(None, {"train": train + test[:1], "test": test}, semantic, style)
    with pytest.raises(ReferenceLeakError):
        assert_references_train_only({"te0": ["tr1", "te1"]}, train, test)


def test_graph_dataset_prior_is_fused_cosine():
    train, test, semantic, style = _stores()
    refs = {q: train[:4] for q in test}
    frame = pd.DataFrame({"image_id": test, "mos": [5.0, 6.0, 4.0, 3.0]})
    dataset = SSMRGraphDataset(frame, semantic, style, refs, num_references=4, alpha=0.25)
    item = dataset[1]
    assert item["nodes"].shape == (5, 6) and item["prior"].shape == (5, 5)
    ids = [test[1], *train[:4]]
    def cos(x):
        unit = torch.nn.functional.normalize(x, dim=1)
        return unit @ unit.T

    expected = 0.25 * cos(semantic.rows(ids)).clamp_min(0) + 0.75 * cos(style.rows(ids)).clamp_min(0)
    assert torch.allclose(item["prior"], expected, atol=1e-6)
    assert torch.allclose(fused_similarity_prior(semantic.rows(ids)[None], style.rows(ids)[None], 0.25)[0], expected, atol=1e-6)


def test_shipped_index_loader_checks_train_only(tmp_path):
    path = tmp_path / "AIAA_semantic_style_test_refer_50.txt"
    path.write_text("q1.jpg a.jpg b.jpg\r\nq2.jpg b.jpg c.jpg\r\n")
    assert load_shipped_index(path, ["a", "b", "c"], ["q1", "q2"], queries=["q1", "q2"]) == {"q1": ["a", "b"], "q2": ["b", "c"]}
    with pytest.raises(ValueError, match="no reference line"):
        load_shipped_index(path, ["a", "b", "c"], queries=["q1", "q3"])
    with pytest.raises(ReferenceLeakError):
        load_shipped_index(path, ["a", "b"], ["q1", "q2"])


# ----------------------------------------------------------------------------- BAID
def test_baid_labels_counts_and_scale():
    for split, count in BAID_COUNTS.items():
        frame = baid_labels(split)
        assert len(frame) == count
        assert frame["mos"].between(0, 10).all()
    assert baid_labels("train")["mos"].min() == pytest.approx(2.700217)
    with pytest.raises(ValueError, match="split"):
        baid_labels("dev")


def test_load_baid_needs_user_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        load_baid("val", tmp_path)
    (tmp_path / "241705.jpg").write_bytes(b"not checked")
    with pytest.raises(FileNotFoundError, match="3199 of 3200"):
        load_baid("val", tmp_path)
    frame = load_baid("val", tmp_path, check_images=False)
    assert frame.loc[0, "path"] == str(tmp_path / "241705.jpg")


def test_run_folder_names_only_non_default_settings():
    assert run_folder("runs/ssmr", "synthetic", 0.5, 4) == "runs/ssmr/train/synthetic_a0.5_k4"
    assert (run_folder("r", "baid", 1.0, 0, reference_source="random", variant="as_published")
            == "r/train/baid_a1.0_k0_random_as_published")


def test_train_ssmr_initial_weights_follow_the_seed_not_the_process_history(tmp_path, monkeypatch):
    """The head is built after seeding: whatever drew random numbers before, the same seed starts the same head."""
    import pandas as pd

    from iaa_lib.blocks.retrieval import FeatureStore, build_index
    from iaa_lib.ssmr import pipeline
    from iaa_lib.ssmr.srig import ReferenceSetup

    ids = [f"im{i}" for i in range(12)]
    generator = torch.Generator().manual_seed(3)
    semantic = FeatureStore(ids, torch.randn(12, 6, generator=generator))
    style = FeatureStore(ids, torch.randn(12, 5, generator=generator))
    splits = {"train": ids[:8], "val": ids[8:10], "test": ids[10:]}
    frame = pd.DataFrame({"image_id": ids, "mos": torch.linspace(3, 8, 12).tolist()})
    setup = ReferenceSetup(frame, splits, semantic, style, build_index(semantic.rows(ids[:8]), ids[:8]),
                           build_index(style.rows(ids[:8]), ids[:8]))
    initial = []

    def record_initial_weights(model, loss, train_loader, val_loader, cfg):
        initial.append([p.detach().clone() for p in model.parameters()])
        return model, {}

    monkeypatch.setattr(pipeline, "fit_or_load", record_initial_weights)
    for earlier_draws in (0, 5):
        torch.rand(earlier_draws)  # another notebook cell, or another model, ran first
        pipeline.train_ssmr(setup, tmp_path, reference_source="random", num_references=2, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(*initial))
    pipeline.train_ssmr(setup, tmp_path, reference_source="random", num_references=2, seed=8)
    assert not all(torch.equal(a, b) for a, b in zip(initial[0], initial[2]))
