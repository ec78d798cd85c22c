"""Synthetic aesthetic dataset with a known ground truth, for tests and learning checks (generator version 2).

Each image is a subject (a two-tone striped disc or square) on a cluttered background. Four factors, each drawn
uniformly in [0, 1], control the subject only:

* sharpness:     the subject (its layer and its outline) is blurred with Gaussian sigma = (1 - sharpness) * 2.5 px
                 at 96 px (scaled with image size);
* contrast:      the subject's luma deviations (its two halves +-HALF_STEP, its stripes +-STRIPE_AMPLITUDE) are
                 scaled by 0.15 + 0.85 * contrast;
* colourfulness: the subject's chroma (YCbCr) amplitude = 0.15 * colourfulness;
* placement:     1 - (distance of the subject centre to the nearest rule-of-thirds point) / (image size / 4),
                 clipped to [0, 1] (measured after the subject is kept inside the frame).

The background is drawn independently of the factors: a base colour, 6 to 14 ellipses and rectangles of
random colour (chroma up to BACKGROUND_CHROMA; 70% of them striped at a random period and
amplitude), a random blur (sigma = u^2 times the subject's largest, u ~ U(0, 1)) and luma noise of random amplitude, so its sharpness,
contrast and colourfulness vary over the same ranges as the subject's while telling nothing about the score.
Global image statistics (`iaa_lib.training.baselines`) are dominated by the background and therefore near chance;
a model must find the subject and judge it.

The latent score is ``true_score = 1 + 9 * sum_f FACTOR_WEIGHTS[f] * factor_f`` (1..10). Votes are a
multinomial sample (100..200 voters) from a normal(true_score, sigma ~ U(1.2, 1.8)) discretised to the
bins 1..10 (end bins take the tails), so ``mos`` (from the votes) is a noisy, centre-shrunk version of
``true_score``, as for real AVA images. Comments: one short synthetic critique per attribute of
COMMENT_ATTRIBUTES, describing the factors. GENERATOR_VERSION names this design: every cache of generated
images keys on it (`iaa_lib.data.labelled_sets.cached_synthetic`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage, stats

from iaa_lib.data.labels import VOTE_COLUMNS, votes_to_frame

GENERATOR_VERSION = 2  # bump whenever the rendered images or labels change for the same parameters
FACTORS = ("sharpness", "contrast", "colourfulness", "placement")
FACTOR_WEIGHTS = {"sharpness": 0.3, "contrast": 0.25, "colourfulness": 0.25, "placement": 0.2}
COMMENT_ATTRIBUTES = ("colour_and_light", "composition", "depth_and_focus", "general")
IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg"}
MAX_BLUR_SIGMA_AT_96 = 2.5
MIN_CONTRAST_GAIN = 0.15
MAX_CHROMA = 0.15
HALF_STEP = 0.12  # luma offset of each half of the subject before the contrast gain
STRIPE_AMPLITUDE = 0.1  # luma amplitude of the stripes on the subject (they carry fine detail for the blur)
SUBJECT_RADIUS = (0.14, 0.2)  # subject radius range, fraction of the image size
CLUTTER_SHAPES = (6, 15)  # background shapes, low (inclusive) and high (exclusive)
BACKGROUND_CHROMA = 0.3  # largest chroma amplitude of the background's colours
MAX_NOISE = 0.08  # largest standard deviation of the background's luma noise
TEXTURED_FRACTION = 0.7  # chance that a background shape carries stripes
MAX_TEXTURE = 0.15  # largest luma amplitude of a background shape's stripes
INNER_FRACTION = 0.8  # measure_factors reads the disc of INNER_FRACTION * radius (inside both subject shapes)
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


def _to_rgb(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """RGB [H, W, 3] of YCbCr planes (full-range, chroma centred on 0)."""
    return np.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], axis=-1)


def _blur(array: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the two spatial axes of an [H, W] or [H, W, C] array (sigma in px; 0 leaves it)."""
    if sigma <= 0:
        return array
    return ndimage.gaussian_filter(array, sigma=(sigma, sigma, 0)[:array.ndim], mode="nearest")


def _background(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Score-independent clutter, RGB float [size, size, 3]: base colour, flat shapes, luma noise, random blur."""
    luma = np.full((size, size), rng.uniform(0.25, 0.75))
    cb, cr = (np.full((size, size), c) for c in _chroma(rng.uniform(0, 2 * np.pi), rng.uniform(0, BACKGROUND_CHROMA)))
    for _ in range(rng.integers(*CLUTTER_SHAPES)):
        cx, cy = rng.uniform(0, size, 2)
        half_w, half_h = rng.uniform(0.04, 0.25, 2) * size
        if rng.random() < 0.5:
            shape = ((xx - cx) / half_w) ** 2 + ((yy - cy) / half_h) ** 2 <= 1.0
        else:
            shape = (np.abs(xx - cx) <= half_w) & (np.abs(yy - cy) <= half_h)
        luma[shape] = rng.uniform(0.1, 0.9)
        if rng.random() < TEXTURED_FRACTION:
            period, direction = rng.uniform(2.0, 8.0) * size / 96.0, rng.uniform(0, np.pi)
            phase = (xx * np.cos(direction) + yy * np.sin(direction))[shape] / period
            luma[shape] += rng.uniform(0, MAX_TEXTURE) * np.sign(np.sin(2 * np.pi * phase))
        cb[shape], cr[shape] = _chroma(rng.uniform(0, 2 * np.pi), rng.uniform(0, BACKGROUND_CHROMA))
    rgb = _blur(_to_rgb(luma, cb, cr), rng.uniform(0, 1) ** 2 * MAX_BLUR_SIGMA_AT_96 * size / 96.0)
    return rgb + rng.uniform(0, MAX_NOISE) * rng.standard_normal((size, size, 1))


def _render(rng: np.random.Generator, size: int, factors: dict[str, float], yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, dict]:
    """(uint8 [size, size, 3] image, subject geometry: placement, subject_x, subject_y, subject_radius in px,
    subject_shape) for drawn sharpness/contrast/colourfulness and target placement."""
    background = _background(rng, size, yy, xx)
    shape = "disc" if rng.random() < 0.5 else "square"
    radius = rng.uniform(*SUBJECT_RADIUS) * size
    thirds_point = _thirds_points(size)[rng.integers(4)]
    angle = rng.uniform(0, 2 * np.pi)
    offset = (1.0 - factors["placement"]) * (size / 4.0)
    centre = np.clip(thirds_point + offset * np.array([np.cos(angle), np.sin(angle)]), radius + 1, size - radius - 1)
    base_luma = rng.uniform(0.3, 0.7)
    split_angle, stripe_angle = rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
    stripe_period = rng.uniform(3.0, 5.0) * size / 96.0
    hue = rng.uniform(0, 2 * np.pi)

    dx, dy = xx - centre[0], yy - centre[1]
    inside = dx**2 + dy**2 <= radius**2 if shape == "disc" else (np.abs(dx) <= radius * 0.9) & (np.abs(dy) <= radius * 0.9)
    halves = HALF_STEP * np.sign(dx * np.cos(split_angle) + dy * np.sin(split_angle))
    stripes = STRIPE_AMPLITUDE * np.sign(np.sin(2 * np.pi * (dx * np.cos(stripe_angle) + dy * np.sin(stripe_angle)) / stripe_period))
    gain = MIN_CONTRAST_GAIN + (1.0 - MIN_CONTRAST_GAIN) * factors["contrast"]
    cb, cr = _chroma(hue, MAX_CHROMA * factors["colourfulness"])
    subject = _to_rgb(base_luma + gain * (halves + stripes), np.full_like(dx, cb), np.full_like(dx, cr))
    sigma = (1.0 - factors["sharpness"]) * MAX_BLUR_SIGMA_AT_96 * size / 96.0
    alpha = _blur(inside.astype(np.float64), sigma)[..., None]
    rgb = background * (1.0 - alpha) + _blur(subject * inside[..., None], sigma)
    pixels = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    geometry = {"placement": placement_score(centre, size), "subject_x": float(centre[0]), "subject_y": float(centre[1]),
                "subject_radius": float(radius), "subject_shape": shape}
    return pixels, geometry


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
    the FACTORS columns (values in [0, 1]), subject_x, subject_y, subject_radius (px, centre from the top-left
    corner), subject_shape, comments (list of 4 str in COMMENT_ATTRIBUTES order), path.
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
        pixels, geometry = _render(rng, image_size, factors, yy, xx)
        factors["placement"] = geometry.pop("placement")
        score = float(true_score(factors))
        image_id = f"syn{seed:04d}_{index:05d}"
        path = out_dir / f"{image_id}{IMAGE_FORMATS[image_format]}"
        Image.fromarray(pixels, mode="RGB").save(path, **({"quality": 95} if image_format == "jpg" else {}))
        votes.append(_vote_histogram(rng, score))
        rows.append({"image_id": image_id, "true_score": score, **factors, **geometry,
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


def measure_factors(image: Image.Image | np.ndarray, centre_xy: tuple[float, float], radius: float) -> dict[str, float]:
    """Pixel measurements of the four FACTORS on the subject at centre_xy (px) of the given radius (px), raw units.

    Read inside the disc of INNER_FRACTION * radius: sharpness = mean |Laplacian| / mean |Sobel gradient| of luma,
    contrast = luma spread between the 1st and 99th percentiles, colourfulness = mean chroma magnitude
    hypot(mean(R - G), mean((R + G) / 2 - B)) on the 0..255 scale; placement = placement_score(centre_xy)."""
    rgb, luma = _rgb_and_luma(image)
    yy, xx = np.mgrid[0:luma.shape[0], 0:luma.shape[1]] + 0.5
    inner = (xx - centre_xy[0]) ** 2 + (yy - centre_xy[1]) ** 2 <= (INNER_FRACTION * radius) ** 2
    if inner.sum() < 9:
        raise ValueError(f"measure_factors: the subject disc (centre {centre_xy}, radius {radius} px) covers "
                         f"{int(inner.sum())} pixels of the {luma.shape} image; need at least 9")
    laplacian = np.abs(ndimage.laplace(luma, mode="nearest"))[inner].mean()
    gradient = np.hypot(ndimage.sobel(luma, 0, mode="nearest"), ndimage.sobel(luma, 1, mode="nearest"))[inner].mean()
    low, high = np.percentile(luma[inner], [1, 99])
    rg = 255.0 * (rgb[..., 0] - rgb[..., 1])[inner]
    yb = 255.0 * (0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2])[inner]
    return {"sharpness": float(laplacian / (gradient + 1e-8)), "contrast": float(high - low),
            "colourfulness": float(np.hypot(rg.mean(), yb.mean())), "placement": placement_score(np.asarray(centre_xy), min(luma.shape))}
