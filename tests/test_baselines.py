"""Image-statistics baseline: hand-worked statistics, ridge against scikit-learn, the frame-level baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iaa_lib.training.baselines import (
    STATISTICS,
    image_statistics,
    ridge_fit_predict,
    statistics_baseline,
    statistics_of,
)


def named(values: np.ndarray) -> dict[str, float]:
    return dict(zip(STATISTICS, values))


def step_image() -> np.ndarray:
    """8 x 8 grey image: columns 0-3 black, 4-7 white."""
    rgb = np.zeros((8, 8, 3))
    rgb[:, 4:] = 1.0
    return rgb


def test_statistics_of_a_flat_grey_image():
    assert named(statistics_of(np.full((8, 8, 3), 0.5))) == pytest.approx(
        {"laplacian_variance": 0, "mean_abs_laplacian": 0, "rms_contrast": 0, "colourfulness": 0, "mean_luma": 0.5,
         "edge_density": 0})


def test_statistics_of_a_step_edge_worked_by_hand():
    # Laplacian: +1 in column 3, -1 in column 4, 0 elsewhere -> mean |L| = 2/8, var = 2/8 - 0.
    # Sobel / 8 is 0.5 in columns 3 and 4 (a step of 1 seen over two pixels), 0 elsewhere -> 2/8 are edges.
    assert named(statistics_of(step_image())) == pytest.approx(
        {"laplacian_variance": 0.25, "mean_abs_laplacian": 0.25, "rms_contrast": 0.5, "colourfulness": 0,
         "mean_luma": 0.5, "edge_density": 0.25})


def test_colourfulness_of_pure_red():
    red = np.zeros((4, 4, 3))
    red[..., 0] = 1.0
    # rg = 255, yb = 127.5 everywhere: no spread, so only 0.3 * the mean chroma remains.
    assert named(statistics_of(red))["colourfulness"] == pytest.approx(0.3 * np.hypot(255.0, 127.5))


def test_image_statistics_read_files_and_shrink_large_ones(tmp_path):
    Image.fromarray((step_image() * 255).astype(np.uint8)).save(tmp_path / "step.png")
    Image.fromarray(np.full((600, 300, 3), 128, np.uint8)).save(tmp_path / "big.png")
    table = image_statistics([tmp_path / "step.png", tmp_path / "big.png"], max_side=64)
    assert table.shape == (2, len(STATISTICS))
    assert table[0] == pytest.approx(statistics_of(step_image()))
    assert named(table[1])["mean_luma"] == pytest.approx(128 / 255)
    with pytest.raises(ValueError):
        image_statistics([])


def test_ridge_matches_scikit_learn_on_standardised_features():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)) * [1, 10, 0.1, 3, 1] + 2.0
    y = x @ [1.0, -0.2, 4.0, 0.0, 0.5] + rng.normal(size=40)
    test = rng.normal(size=(7, 5))
    mean, std = x.mean(axis=0), x.std(axis=0)
    expected = Ridge(alpha=3.0).fit((x - mean) / std, y).predict((test - mean) / std)
    assert ridge_fit_predict(x, y, test, alpha=3.0) == pytest.approx(expected, abs=1e-10)


def test_statistics_baseline_ranks_a_statistic_it_can_see(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for k in range(30):  # mos = brightness: the baseline's mean_luma sees it
        level = rng.uniform(0.1, 0.9)
        Image.fromarray(np.full((16, 16, 3), round(level * 255), np.uint8)).save(tmp_path / f"{k}.jpg")
        rows.append({"image_id": str(k), "mos": 1 + 9 * level})
    frame = pd.DataFrame(rows)
    predicted = statistics_baseline(frame.iloc[:20], frame.iloc[20:], image_dir=tmp_path)
    assert predicted.shape == (10,)
    assert np.corrcoef(predicted, frame["mos"].iloc[20:])[0, 1] > 0.99
    with pytest.raises(ValueError, match="image_dir"):
        statistics_baseline(frame.iloc[:20], frame.iloc[20:])
