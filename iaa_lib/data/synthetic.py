"""Synthetic aesthetic dataset with a known ground truth, for tests and learning checks.

Each image is a striped disc or square (the subject) on a flat background. Four factors, each drawn
uniformly in [0, 1], control what the image looks like:

* sharpness:     Gaussian blur sigma = (1 - sharpness) * 2.5 px at 96 px (scaled with image size);
* contrast:      luma deviations from the image mean are scaled by 0.15 + 0.85 * contrast;
* colourfulness: chroma (YCbCr) amplitude of subject and background = 0.15 * colourfulness;
* placement:     1 - (distance of the subject centre to the nearest rule-of-thirds point) / (image size / 4),
                 clipped to [0, 1] (measured after the subject is kept inside the frame).

The latent score is ``true_score = 1 + 9 * sum_f FACTOR_WEIGHTS[f] * factor_f`` (1..10). Votes are a
multinomial sample (100..200 voters) from a normal(true_score, sigma ~ U(1.2, 1.8)) discretised to the
bins 1..10 (end bins take the tails), so ``mos`` (from the votes) is a noisy, centre-shrunk version of
``true_score``, as for real AVA images. Comments: one short synthetic critique per attribute of
COMMENT_ATTRIBUTES, describing the factors.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage, stats

from iaa_lib.data.labels import VOTE_COLUMNS, votes_to_frame

FACTORS = ("sharpness", "contrast", "colourfulness", "placement")
FACTOR_WEIGHTS = {"sharpness": 0.3, "contrast": 0.25, "colourfulness": 0.25, "placement": 0.2}
COMMENT_ATTRIBUTES = ("colour_and_light", "composition", "depth_and_focus", "general")
IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg"}
MAX_BLUR_SIGMA_AT_96 = 2.5
MIN_CONTRAST_GAIN = 0.15
MAX_CHROMA = 0.15
LUMA_STEP = 0.25  # subject-background luma difference before the contrast gain
STRIPE_AMPLITUDE = 0.08  # luma amplitude of the stripes on the subject (they carry fine detail for the blur)
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def true_score(factors: dict[str, float] | pd.DataFrame) -> float | pd.Series:
    """Latent aesthetic score on 1..10: 1 + 9 * weighted sum of the factors (weights FACTOR_WEIGHTS, sum 1)."""
    return 1.0 + 9.0 * sum(weight * factors[name] for name, weight in FACTOR_WEIGHTS.items())


def _thirds_points(size: int) -> np.ndarray:
    """The four rule-of-thirds intersections (x, y) in pixel coordinates of a size x size image."""
    a, b = size / 3.0, 2.0 * size / 3.0
    return np.array([[a, a], [b, a], [a, b], [b, b]])


def placement_score(centre_xy: np.ndarray, size: int) -> float:
    """1 - distance of centre_xy to the nearest thirds point / (size / 4), clipped to [0, 1]."""
    distance = np.min(np.linalg.norm(_thirds_points(size) - np.asarray(centre_xy, dtype=np.float64), axis=1))
    return float(np.clip(1.0 - distance / (size / 4.0), 0.0, 1.0))


def _chroma(hue: float, amplitude: float) -> np.ndarray:
    """(Cb, Cr) of a hue angle (radians) at the given amplitude."""
    return amplitude * np.array([np.cos(hue), np.sin(hue)])


def _render(rng: np.random.Generator, size: int, factors: dict[str, float], yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, float, str]:
    """(uint8 [size, size, 3] image, measured placement, shape) for drawn sharpness/contrast/colourfulness and target placement."""
    background_luma = rng.uniform(0.35, 0.65)
    subject_luma = background_luma + rng.choice([-1.0, 1.0]) * LUMA_STEP
    background_hue = rng.uniform(0, 2 * np.pi)
    subject_hue = background_hue + rng.uniform(0.5 * np.pi, 1.5 * np.pi)
    shape = "disc" if rng.random() < 0.5 else "square"
    radius = rng.uniform(0.12, 0.18) * size
    thirds_point = _thirds_points(size)[rng.integers(4)]
    angle = rng.uniform(0, 2 * np.pi)
    offset = (1.0 - factors["placement"]) * (size / 4.0)
    centre = np.clip(thirds_point + offset * np.array([np.cos(angle), np.sin(angle)]), radius + 1, size - radius - 1)
    stripe_period = rng.uniform(3.0, 5.0) * size / 96.0
    stripe_angle = rng.uniform(0, np.pi)

    dx, dy = xx - centre[0], yy - centre[1]
    inside = dx**2 + dy**2 <= radius**2 if shape == "disc" else (np.abs(dx) <= radius * 0.9) & (np.abs(dy) <= radius * 0.9)
    stripes = STRIPE_AMPLITUDE * np.sign(np.sin(2 * np.pi * (dx * np.cos(stripe_angle) + dy * np.sin(stripe_angle)) / stripe_period))
    luma = np.where(inside, subject_luma + stripes, background_luma)
    gain = MIN_CONTRAST_GAIN + (1.0 - MIN_CONTRAST_GAIN) * factors["contrast"]
    luma = luma.mean() + gain * (luma - luma.mean())
    amplitude = MAX_CHROMA * factors["colourfulness"]
    cb = np.where(inside, _chroma(subject_hue, amplitude)[0], _chroma(background_hue, amplitude)[0])
    cr = np.where(inside, _chroma(subject_hue, amplitude)[1], _chroma(background_hue, amplitude)[1])
    rgb = np.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], axis=-1)
    sigma = (1.0 - factors["sharpness"]) * MAX_BLUR_SIGMA_AT_96 * size / 96.0
    if sigma > 0:
        rgb = ndimage.gaussian_filter(rgb, sigma=(sigma, sigma, 0), mode="nearest")
    pixels = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return pixels, placement_score(centre, size), shape


def _vote_histogram(rng: np.random.Generator, score: float) -> np.ndarray:
    """10 vote counts: multinomial(100..200 votes) over normal(score, sigma ~ U(1.2, 1.8)) discretised to bins 1..10."""
    sigma = rng.uniform(1.2, 1.8)
    edges = np.concatenate([[-np.inf], np.arange(1.5, 10.5, 1.0), [np.inf]])
    probabilities = np.diff(stats.norm.cdf(edges, loc=score, scale=sigma))
    return rng.multinomial(int(rng.integers(100, 201)), probabilities / probabilities.sum())


def _level(value: float) -> int:
    """0 (low, < 1/3), 1 (middle) or 2 (high, > 2/3) of a factor in [0, 1]."""
    return int(value > 1 / 3) + int(value > 2 / 3)


_COLOUR_PHRASES = (
    ("The colours are washed out, almost grey.", "Very muted colours, nearly monochrome."),
    ("The colours are pleasant but a little subdued.", "Moderate colour, could be more saturated."),
    ("Vivid, saturated colours that pop.", "Rich, strong colours."),
)
_CONTRAST_PHRASES = (
    ("The light is flat and the contrast is very low.", "Dull, low-contrast tones."),
    ("The contrast is acceptable.", "Tones are reasonably separated."),
    ("Strong contrast makes the subject stand out.", "Punchy contrast between subject and background."),
)
_COMPOSITION_PHRASES = (
    ("The subject is awkwardly placed, far from the thirds.", "Placement of the subject feels off balance."),
    ("The subject is near a thirds line but not quite on it.", "Composition is okay, placement could be more deliberate."),
    ("The subject sits right on a rule-of-thirds point.", "Nicely balanced composition with the subject on a thirds point."),
)
_FOCUS_PHRASES = (
    ("Everything is blurry, nothing is in focus.", "Badly out of focus, the detail is lost."),
    ("Focus is a little soft.", "Slightly soft, the stripes lose some crispness."),
    ("Tack sharp, the fine stripes are crisp.", "Crisp focus with clear detail."),
)
_GENERAL_PHRASES = (
    ("A weak image overall.", "This one does not work for me."),
    ("An average image with some strengths.", "Decent, but nothing special."),
    ("A strong image overall, well done.", "Excellent work, one of my favourites."),
)


def _comments(rng: np.random.Generator, factors: dict[str, float], score: float) -> list[str]:
    """One critique per COMMENT_ATTRIBUTES entry, describing the factor levels (phrasing drawn from rng)."""
    pick = lambda phrases, value: phrases[_level(value)][rng.integers(2)]  # noqa: E731
    return [
        f"{pick(_COLOUR_PHRASES, factors['colourfulness'])} {pick(_CONTRAST_PHRASES, factors['contrast'])}",
        pick(_COMPOSITION_PHRASES, factors["placement"]),
        pick(_FOCUS_PHRASES, factors["sharpness"]),
        pick(_GENERAL_PHRASES, (score - 1.0) / 9.0),
    ]


def make_synthetic(
    n: int, out_dir: str | os.PathLike, image_size: int = 96, seed: int = 0, image_format: str = "png"
) -> pd.DataFrame:
    """Write n synthetic images to out_dir and return their label frame (deterministic per seed).

    Columns: image_id, mos, dist_1..10, std, n_votes (from sampled votes, 1..10 scale), true_score (latent),
    the FACTORS columns (values in [0, 1]), subject_shape, comments (list of 4 str in COMMENT_ATTRIBUTES order), path.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if int(image_size) != image_size or image_size < 32:
        raise ValueError(f"image_size must be an int >= 32 pixels, got {image_size!r}")
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {list(IMAGE_FORMATS)}, got {image_format!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float64) + 0.5
    rows, votes = [], []
    for index in range(n):
        factors = {name: float(rng.uniform()) for name in FACTORS}
        pixels, factors["placement"], shape = _render(rng, image_size, factors, yy, xx)
        score = float(true_score(factors))
        image_id = f"syn{seed:04d}_{index:05d}"
        path = out_dir / f"{image_id}{IMAGE_FORMATS[image_format]}"
        Image.fromarray(pixels, mode="RGB").save(path, **({"quality": 95} if image_format == "jpg" else {}))
        votes.append(_vote_histogram(rng, score))
        rows.append({"image_id": image_id, "true_score": score, **factors, "subject_shape": shape,
                     "comments": _comments(rng, factors, score), "path": str(path.resolve())})
    table = pd.DataFrame(rows)
    table[VOTE_COLUMNS] = np.array(votes)
    return votes_to_frame(table, source=f"make_synthetic(seed={seed})")


def _rgb_and_luma(image: Image.Image | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(RGB float array in [0, 1] of shape [H, W, 3], its luma [H, W]) of a PIL image or a uint8/float array."""
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"measure_factors needs an RGB image [H, W, 3], got shape {rgb.shape}")
    rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    return rgb, rgb @ LUMA_WEIGHTS


def _sharpness(luma: np.ndarray) -> float:
    """Mean |Laplacian| / mean |Sobel gradient| of a luma array."""
    laplacian = np.abs(ndimage.laplace(luma, mode="nearest")).mean()
    gradient = np.hypot(ndimage.sobel(luma, 0, mode="nearest"), ndimage.sobel(luma, 1, mode="nearest")).mean()
    return float(laplacian / (gradient + 1e-8))


def _contrast(luma: np.ndarray) -> float:
    """Luma spread between the 1st and 99th percentiles."""
    low, high = np.percentile(luma, [1, 99])
    return float(high - low)


def _colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness of an RGB array in [0, 1], on the 0..255 scale."""
    rg = 255.0 * (rgb[..., 0] - rgb[..., 1])
    yb = 255.0 * (0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2])
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _placement(luma: np.ndarray) -> float:
    """placement_score of the centroid of the pixels whose luma is far from the median (the background)."""
    background = np.median(luma)
    low, high = np.percentile(luma, [1, 99])
    extreme = high if high - background >= background - low else low
    mask = np.abs(luma - background) > 0.5 * abs(extreme - background)
    if not mask.any():
        return 0.0
    ys, xs = np.nonzero(mask)
    return placement_score(np.array([xs.mean() + 0.5, ys.mean() + 0.5]), min(luma.shape))


def measure_factors(image: Image.Image | np.ndarray) -> dict[str, float]:
    """Pixel measurements of the four FACTORS (raw units, monotone in the true factors)."""
    rgb, luma = _rgb_and_luma(image)
    return {"sharpness": _sharpness(luma), "contrast": _contrast(luma), "colourfulness": _colourfulness(rgb), "placement": _placement(luma)}
