"""Synthetic data: determinism, schema, known score function, factors measurable on the subject, a background
independent of the score (so global image statistics are near chance), learnability from the subject, cache key."""
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
    GENERATOR_VERSION,
    make_synthetic,
    measure_factors,
    placement_score,
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
    """Factors [N, 4] measured on each image's subject (its recorded centre and radius), in FACTORS order."""
    frame, _ = synthetic
    return np.array([[measure_factors(Image.open(row.path), (row.subject_x, row.subject_y), row.subject_radius)[k]
                      for k in FACTORS] for row in frame.itertuples()])


def _background_statistics(path: str, centre: tuple[float, float], radius: float) -> list[float]:
    """Mean luma, luma std, mean |Laplacian|, mean chroma magnitude of the pixels more than 1.5 radius + 8 px
    from the subject centre (beyond the subject and its largest blur)."""
    rgb = np.asarray(Image.open(path), dtype=np.float64) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    yy, xx = np.mgrid[0:luma.shape[0], 0:luma.shape[1]] + 0.5
    outside = np.hypot(xx - centre[0], yy - centre[1]) > 1.5 * radius + 8
    laplacian = np.abs(4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:])
    chroma = np.hypot(rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2])
    return [luma[outside].mean(), luma[outside].std(), laplacian[outside[1:-1, 1:-1]].mean(), chroma[outside].mean()]


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


def test_placement_is_that_of_the_recorded_subject_centre(synthetic):
    frame, _ = synthetic
    thirds = np.array([[32.0, 32.0], [64.0, 32.0], [32.0, 64.0], [64.0, 64.0]])  # 96 px image
    distance = np.min(np.hypot(frame["subject_x"].to_numpy()[:, None] - thirds[:, 0],
                               frame["subject_y"].to_numpy()[:, None] - thirds[:, 1]), axis=1)
    assert np.allclose(frame["placement"], np.clip(1 - distance / 24.0, 0, 1))
    assert placement_score(np.array([32.0, 64.0]), 96) == 1.0 and placement_score(np.array([0.0, 0.0]), 96) == 0.0
    radius = frame["subject_radius"]
    assert radius.between(0.14 * 96, 0.2 * 96).all()
    assert (frame["subject_x"] - radius >= 1).all() and (frame["subject_x"] + radius <= 95).all()


def test_background_tells_nothing_about_the_score(synthetic):
    frame, _ = synthetic
    background = np.array([_background_statistics(row.path, (row.subject_x, row.subject_y), row.subject_radius)
                           for row in frame.itertuples()])
    assert background[:, 1].std() > 0.02 and background[:, 2].std() > 0.005  # the clutter does vary
    for column, name in enumerate(["mean luma", "luma std", "mean |Laplacian|", "chroma"]):
        assert abs(stats.spearmanr(background[:, column], frame["true_score"])[0]) < 0.2, name


def test_global_statistics_are_near_chance_the_subject_gives_the_score(synthetic, measured):
    from sklearn.linear_model import LinearRegression

    from iaa_lib.training.baselines import statistics_baseline

    frame, _ = synthetic
    train, test = slice(0, 140), slice(140, N)
    mos = frame["mos"].to_numpy()
    on_subject = LinearRegression().fit(measured[train], mos[train]).predict(measured[test])
    assert stats.spearmanr(on_subject, mos[test])[0] > 0.75
    global_statistics = statistics_baseline(frame.iloc[train], frame.iloc[test])
    assert abs(stats.spearmanr(global_statistics, mos[test])[0]) < 0.3
    shuffled = np.random.default_rng(0).permutation(mos)
    chance = LinearRegression().fit(measured[train], shuffled[train]).predict(measured[test])
    assert abs(stats.spearmanr(chance, shuffled[test])[0]) < 0.35


def test_generator_version_is_part_of_the_cache_key(tmp_path, monkeypatch):
    from iaa_lib.data import labelled_sets

    first = labelled_sets.cached_synthetic(3, tmp_path, image_size=32, seed=1)
    assert all(f"generator_v{GENERATOR_VERSION}" in p for p in first["path"])
    monkeypatch.setattr(labelled_sets, "GENERATOR_VERSION", GENERATOR_VERSION + 1)
    bumped = labelled_sets.cached_synthetic(3, tmp_path, image_size=32, seed=1)
    assert all(f"generator_v{GENERATOR_VERSION + 1}" in p for p in bumped["path"])
    assert set(first["path"]).isdisjoint(bumped["path"])


def test_synthetic_frame_feeds_the_dataset(synthetic):
    frame, _ = synthetic
    item = AestheticDataset(frame.head(3), transform=eval_transform(32))[2]
    assert item["image"].shape == (3, 32, 32) and item["image_id"] == frame["image_id"].iloc[2]


def test_true_score_function_endpoints():
    assert true_score({f: 0.0 for f in FACTORS}) == pytest.approx(1.0)
    assert true_score({f: 1.0 for f in FACTORS}) == pytest.approx(10.0)
