"""The comparison protocol: shared data, paired-bootstrap results table, differences, disagreement ranking."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats

from iaa_lib.book import compare
from iaa_lib.book.compare import (
    ProtocolData, bootstrap_metrics, disagreement, load_protocol, metric_values,
    paired_differences, paper_numbers, protocol_data, results_table, start, train_and_predict, train_models)
from iaa_lib.book.profiles import FailureSettings
from iaa_lib.cgiaa.spec import catalogue as cgiaa_catalogue
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.eat.spec import sampling_pixels as eat_sampling_pixels


def truth_frame(n: int = 12, seed: int = 0) -> pd.DataFrame:
    """Test rows with random 10-bin vote histograms and their means."""
    rng = np.random.default_rng(seed)
    dist = rng.dirichlet(np.ones(10), size=n)
    frame = pd.DataFrame(dist, columns=DIST_COLUMNS)
    frame.insert(0, "mos", dist @ np.arange(1, 11))
    frame.insert(0, "image_id", [f"img{i:02d}" for i in range(n)])
    return frame


def predictions_of(truth: pd.DataFrame, pred_mos: np.ndarray, dist: np.ndarray | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"image_id": truth["image_id"], "mos": truth["mos"], "pred_mos": pred_mos})
    if dist is not None:
        for k in range(10):
            frame[f"pred_dist_{k + 1}"] = dist[:, k]
    return frame


def test_metric_values_match_scipy_and_hand_worked_values():
    mos = np.array([3.0, 4.0, 5.5, 6.0, 7.0])
    pred = np.array([3.5, 5.2, 4.9, 6.5, 6.9])
    dist = np.tile(np.eye(10)[4], (5, 1))  # every image: all votes on 5
    pred_dist = np.tile(np.eye(10)[6], (5, 1))  # every prediction: all mass on 7
    values = metric_values(pred, mos, pred_dist, dist)
    assert values["srcc"] == pytest.approx(stats.spearmanr(pred, mos)[0])
    assert values["plcc"] == pytest.approx(stats.pearsonr(pred, mos)[0])
    assert values["krcc"] == pytest.approx(stats.kendalltau(pred, mos)[0])
    assert values["acc"] == pytest.approx(3 / 5)  # > 5 rule: 3.0, 4.0 low; 5.5, 6.0, 7.0 high; pred 5.2 wrong, 4.9 wrong
    # CDF gap is 1 on bins 5 and 6 and 0 elsewhere: EMD1 = 2/10, EMD2 = sqrt(2/10)
    assert values["emd1"] == pytest.approx(0.2) and values["emd2"] == pytest.approx(np.sqrt(0.2))
    assert np.isnan(metric_values(pred, mos, None, dist)["emd1"])


def test_results_table_point_values_and_intervals():
    truth = truth_frame(20)
    rng = np.random.default_rng(1)
    noisy = truth["mos"].to_numpy() + rng.normal(0, 0.3, len(truth))
    predictions = {"perfect": predictions_of(truth, truth["mos"].to_numpy(), truth[DIST_COLUMNS].to_numpy()),
                   "noisy": predictions_of(truth, noisy)}
    table = results_table(bootstrap_metrics(predictions, truth, n_boot=200, seed=0))
    assert table.loc["perfect", "srcc"] == 1.0 and table.loc["perfect", "srcc_low"] == 1.0
    assert table.loc["perfect", "emd1"] == pytest.approx(0.0) and table.loc["perfect", "emd2_high"] == pytest.approx(0.0)
    assert table.loc["noisy", "srcc"] == pytest.approx(stats.spearmanr(noisy, truth["mos"])[0])
    assert table.loc["noisy", "srcc_low"] <= table.loc["noisy", "srcc"] <= table.loc["noisy", "srcc_high"]
    assert table.loc["noisy", "srcc_low"] < table.loc["noisy", "srcc_high"]
    assert np.isnan(table.loc["noisy", "emd1"]) and np.isnan(table.loc["noisy", "emd1_low"])
    assert (table["n"] == 20).all()


def test_results_table_aligns_rows_by_image_id():
    truth = truth_frame(15)
    pred = truth["mos"].to_numpy() + np.linspace(-1, 1, 15)
    ordered = predictions_of(truth, pred)
    shuffled = ordered.sample(frac=1.0, random_state=3)
    a = results_table(bootstrap_metrics({"m": ordered}, truth, n_boot=50))
    b = results_table(bootstrap_metrics({"m": shuffled}, truth, n_boot=50))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="no prediction for 1 test images"):
        bootstrap_metrics({"m": ordered.iloc[1:]}, truth, n_boot=10)
    with pytest.raises(ValueError, match="at least 2 test images"):
        bootstrap_metrics({"m": ordered.iloc[:1]}, truth.iloc[:1], n_boot=10)


def test_paired_differences_of_identical_models_are_exactly_zero():
    truth = truth_frame(15)
    pred = predictions_of(truth, truth["mos"].to_numpy() + np.linspace(-1, 1, 15) ** 2)
    better = predictions_of(truth, truth["mos"].to_numpy())
    table = paired_differences(bootstrap_metrics({"nima": pred, "same": pred.copy(), "better": better}, truth, n_boot=100))
    assert table.loc["same"].tolist() == [0.0, 0.0, 0.0]
    assert table.loc["better", "delta_srcc"] > 0 and table.loc["better", "low"] >= 0
    with pytest.raises(KeyError, match="baseline 'other'"):
        paired_differences(bootstrap_metrics({"nima": pred, "same": pred}, truth, n_boot=10), baseline="other")
    with pytest.raises(ValueError, match="metric must be"):
        paired_differences(bootstrap_metrics({"nima": pred, "same": pred}, truth, n_boot=10), metric="emd1")


def test_disagreement_spread_and_most_wrong_by_hand():
    truth = pd.DataFrame({"image_id": ["a", "b", "c"], "mos": [3.0, 5.0, 7.0]})
    predictions = {"agree": pd.DataFrame({"image_id": ["a", "b", "c"], "pred_mos": [3.0, 5.0, 7.0]}),
                   "flip": pd.DataFrame({"image_id": ["a", "b", "c"], "pred_mos": [7.0, 5.0, 3.0]})}
    table = disagreement(predictions, truth)
    # percentiles: agree (1/3, 2/3, 1), flip (1, 2/3, 1/3): spreads a = c = 2/3, b = 0
    assert table["image_id"].tolist()[-1] == "b" and table["spread"].iloc[-1] == 0
    assert table["spread"].iloc[0] == pytest.approx(2 / 3)
    assert set(table.loc[table["image_id"].isin(["a", "c"]), "most_wrong"]) == {"flip"}


def test_load_protocol_on_the_embedded_sample():
    data = load_protocol("ava_sample")
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 46, "val": 16, "test": 15}
    assert {"image_id", "path", "mos", "comments", *DIST_COLUMNS} <= set(data.frame.columns)
    assert sum(bool(c) for c in data.frame["comments"]) == 16
    assert all(p.endswith(".jpg") for p in data.frame["path"])
    assert data.describe() == "ava_sample, 46 / 16 / 15 (train / val / test)"


def test_load_protocol_synthetic_and_bad_requests(tmp_path):
    data = load_protocol("synthetic", tmp_path, n_synthetic=20, synthetic_size=32)
    assert sum(len(v) for v in data.splits.values()) == 20
    assert all(len(c) == 4 for c in data.frame["comments"])
    with pytest.raises(ValueError, match="test_list"):
        load_protocol("ava", tmp_path)
    with pytest.raises(ValueError, match="dataset must be"):
        load_protocol("imagenet", tmp_path)


def test_train_and_predict_rejects_unknown_names():
    data = ProtocolData("x", pd.DataFrame(), {"train": [], "val": [], "test": []})
    with pytest.raises(KeyError, match="unknown model 'vit'"):
        train_and_predict("vit", data)
    with pytest.raises(ValueError, match="profile must be one of"):
        train_and_predict("nima", data, profile="medium")
    with pytest.raises(KeyError, match=r"unknown nima setting\(s\) \['epoch'\]"):
        train_and_predict("nima", data, overrides={"epoch": 3})
    with pytest.raises(ValueError, match="needs GPT-2 weights"):
        train_and_predict("cgiaa", data, profile="full")


def test_notebook_set_up_from_the_shared_settings(tmp_path, monkeypatch):
    settings = FailureSettings(models="nima,cgiaa", n_synthetic=20, synthetic_size=32, cgiaa_gpt2_path="/g",
                               threads=2, seed=3, run_dir=str(tmp_path))
    threads = torch.get_num_threads()
    try:
        start(settings)
        assert torch.get_num_threads() == 2
        first = torch.rand(3)
        torch.manual_seed(3)
        assert torch.equal(first, torch.rand(3))
    finally:
        torch.set_num_threads(threads)
    data = protocol_data(settings, "synthetic")
    assert data.frame.equals(load_protocol("synthetic", tmp_path, n_synthetic=20, synthetic_size=32, seed=3).frame)
    calls = []
    monkeypatch.setattr(compare, "train_and_predict", lambda *args: calls.append(args) or args[0])
    assert train_models(settings, data) == {"nima": "nima", "cgiaa": "cgiaa"}
    assert calls == [("nima", data, "smoke", str(tmp_path), 3, None),
                     ("cgiaa", data, "smoke", str(tmp_path), 3, {"gpt2_path": "/g"})]


def test_cgiaa_catalogue_layout():
    data = load_protocol("ava_sample")
    catalogue = cgiaa_catalogue(data)
    assert len(catalogue) == 77 and set(catalogue["source"]) == {"ava_sample"}
    assert (catalogue.set_index("image_id").loc[data.splits["test"], "split"] == "test").all()
    assert all(a == [] for a in catalogue["comment_attributes"])


def test_paper_numbers_come_from_the_sota_table():
    table = paper_numbers(["nima", "milnet"])
    nima = table[table["method"] == "NIMA (Inception-v2)"].iloc[0]
    assert nima["srcc"] == 0.612 and nima["split"] == "ava_official" and nima["status"] == "verified"
    milnet = table[table["model"] == "MILNet"].iloc[0]
    assert np.isnan(milnet["srcc"]) and "no verified number" in milnet["status"]


def test_eat_sampling_pixels_lie_on_the_displayed_image():
    from iaa_lib.eat.model import EAT

    torch.manual_seed(0)
    model = EAT(config="smoke")
    points = eat_sampling_pixels(model, Image.new("RGB", (80, 60), (120, 30, 200)), 64, 200)
    assert points.ndim == 2 and points.shape[1] == 2 and len(points) > 0
    assert (points >= 0).all() and (points <= 200).all()


def test_nearest_training_sentences_picks_the_closest_by_cosine():
    from iaa_lib.cdcm.data import nearest_training_sentences

    class Readout(torch.nn.Module):
        def project_text(self, features):
            return features  # text_dim == model width: no projection

        def forward(self, visual_tokens):
            return {"memory_readout": visual_tokens}

    class Cache:
        vectors = {"bright": [1.0, 0.0], "dark": [0.0, 1.0], "test only": [1.0, 1.0]}

        def features(self, sentences):
            return torch.tensor([self.vectors[s] for s in sentences])

    inputs = {"frame": pd.DataFrame({"image_id": ["t1", "t2", "q1", "q2"]}),
              "sentences": [["bright"], ["dark"], ["test only"], []],
              "tokens": torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.9, 0.1]], [[0.2, 3.0]]]),
              "cache": Cache()}
    recalled = nearest_training_sentences(Readout(), inputs, ["t1", "t2"], ["q1", "q2"])
    assert recalled == {"q1": "bright", "q2": "dark"}  # the test image's own sentence is never a candidate
    with pytest.raises(ValueError, match="no comment sentences"):
        nearest_training_sentences(Readout(), inputs, ["q2"], ["q1"])
