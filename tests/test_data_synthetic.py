"""Synthetic data: determinism, schema, known score function, measurable factors, learnability."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from iaa_lib.data.datasets import AestheticDataset
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.data.synthetic import (
    COMMENT_ATTRIBUTES,
    FACTOR_WEIGHTS,
    FACTORS,
    make_synthetic,
    measure_factors,
    true_score,
)
from iaa_lib.data.transforms import eval_transform

N = 200


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(frame, seconds taken) for N images at 96 px."""
    start = time.perf_counter()
    frame = make_synthetic(N, tmp_path_factory.mktemp("synthetic"), image_size=96, seed=0)
    return frame, time.perf_counter() - start


@pytest.fixture(scope="module")
def measured(synthetic):
    """Measured factors [N, 4] of the synthetic images, in FACTORS order."""
    frame, _ = synthetic
    return np.array([[measure_factors(Image.open(p))[k] for k in FACTORS] for p in frame["path"]])


def test_generation_is_fast(synthetic):
    assert synthetic[1] < 10.0  # about 0.7 s on one idle core (generous for a shared, loaded CI machine)


def test_frame_follows_the_label_schema(synthetic):
    frame, _ = synthetic
    assert frame["image_id"].is_unique and len(frame) == N
    assert np.allclose(frame[DIST_COLUMNS].sum(axis=1), 1.0)
    assert frame["n_votes"].between(100, 200).all() and frame["mos"].between(1, 10).all()
    assert frame[list(FACTORS)].stack().between(0, 1).all()
    assert sum(FACTOR_WEIGHTS.values()) == pytest.approx(1.0)
    assert np.allclose(frame["true_score"], 1 + 9 * sum(w * frame[f] for f, w in FACTOR_WEIGHTS.items()))
    assert frame["comments"].map(len).eq(len(COMMENT_ATTRIBUTES)).all()
    with Image.open(frame["path"].iloc[0]) as image:
        assert image.size == (96, 96) and image.mode == "RGB"


def test_votes_are_centred_on_the_true_score(synthetic):
    frame, _ = synthetic
    assert stats.spearmanr(frame["mos"], frame["true_score"])[0] > 0.95
    # Discretisation to 1..10 pulls means toward the centre but never flips the side of 5.5 by much.
    assert np.abs(frame["mos"] - frame["true_score"]).max() < 1.0


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    a = make_synthetic(6, tmp_path / "a", image_size=48, seed=7)
    b = make_synthetic(6, tmp_path / "b", image_size=48, seed=7, image_format="jpg")
    c = make_synthetic(6, tmp_path / "c", image_size=48, seed=8)
    columns = ["mos", *FACTORS, "n_votes", "image_id"]
    assert a[columns].equals(b[columns]) and a["comments"].tolist() == b["comments"].tolist()
    again = make_synthetic(6, tmp_path / "a2", image_size=48, seed=7)
    assert all(open(p, "rb").read() == open(q, "rb").read() for p, q in zip(a["path"], again["path"]))
    assert not np.allclose(a["mos"], c["mos"])
    assert b["path"].str.endswith(".jpg").all()


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 2, "image_size": 16}, {"n": 2, "image_format": "gif"}])
def test_bad_parameters_raise(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_synthetic(out_dir=tmp_path, **kwargs)


def test_comments_describe_the_factors(synthetic):
    frame, _ = synthetic
    focus = frame["comments"].map(lambda c: c[COMMENT_ATTRIBUTES.index("depth_and_focus")])
    blurred = frame["sharpness"] < 1 / 3
    assert focus[blurred].str.contains("blurry|out of focus").all()
    assert not focus[~blurred].str.contains("blurry|out of focus").any()
    colour = frame["comments"].map(lambda c: c[0])
    assert colour[frame["colourfulness"] > 2 / 3].str.contains("[Vv]ivid|[Rr]ich").all()


def test_measured_factors_recover_the_true_factors(synthetic, measured):
    frame, _ = synthetic
    for column, name in enumerate(FACTORS):
        assert stats.spearmanr(measured[:, column], frame[name])[0] > 0.85, name


def test_regression_on_measured_factors_learns_the_score(synthetic, measured):
    from sklearn.linear_model import LinearRegression

    frame, _ = synthetic
    features = measured[:, :3]  # sharpness, contrast, colourfulness only
    train, test = slice(0, 140), slice(140, N)
    model = LinearRegression().fit(features[train], frame["mos"].to_numpy()[train])
    held_out = stats.spearmanr(model.predict(features[test]), frame["mos"].to_numpy()[test])[0]
    assert held_out > 0.75
    shuffled = np.random.default_rng(0).permutation(frame["mos"].to_numpy())
    chance = LinearRegression().fit(features[train], shuffled[train]).predict(features[test])
    assert abs(stats.spearmanr(chance, shuffled[test])[0]) < 0.35


def test_synthetic_frame_feeds_the_dataset(synthetic):
    frame, _ = synthetic
    item = AestheticDataset(frame.head(3), transform=eval_transform(32))[2]
    assert item["image"].shape == (3, 32, 32) and item["image_id"] == frame["image_id"].iloc[2]


def test_true_score_function_endpoints():
    assert true_score({f: 0.0 for f in FACTORS}) == pytest.approx(1.0)
    assert true_score({f: 1.0 for f in FACTORS}) == pytest.approx(10.0)
