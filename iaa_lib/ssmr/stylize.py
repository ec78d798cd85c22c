"""A style-varied demo set: real AVA sample photos re-rendered in a few styles with classical image operations.

Each of the 77 embedded AVA photographs is written once per style (the unchanged photo plus four renderings),
so the same content appears in several styles and the same style over many contents: semantic retrieval
should find the same content in other styles, style retrieval the same style over other contents.
This set only demonstrates the SSMR pipeline: it is not an artistic-aesthetics dataset, and its scores are
not judgements of the renderings.

Scores [design]: every rendering carries the real AVA mean score (1-10) and vote distribution of its
source photograph, so a model can be trained and evaluated on it. Because renderings of one photo share a
score, splits must be made by `content_id` (see `split_by_content`) or the score leaks across the split.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from iaa_lib.files import atomic_write_json, atomic_write_text

STYLE_NAMES: tuple[str, ...] = ("photo", "posterise", "pencil", "oil", "grade")


def _as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def _to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def render_photo(image: Image.Image) -> Image.Image:
    """The unchanged photograph."""
    return image.copy()


def render_posterise(image: Image.Image) -> Image.Image:
    """Poster look: boosted saturation and contrast, 2 bits per channel, slightly smoothed flat areas."""
    vivid = ImageEnhance.Color(ImageOps.autocontrast(image, cutoff=2)).enhance(1.8)
    return ImageOps.posterize(vivid.filter(ImageFilter.MedianFilter(3)), 2)


def render_pencil(image: Image.Image) -> Image.Image:
    """Pencil sketch: colour-dodge of the grey image by its blurred negative (grey strokes on white paper)."""
    grey = ImageOps.grayscale(image)
    blurred_negative = ImageOps.invert(grey).filter(ImageFilter.GaussianBlur(radius=max(2, image.width // 60)))
    g, b = _as_array(grey), _as_array(blurred_negative)
    sketch = np.clip(g / np.maximum(1.0 - b, 1e-3), 0.0, 1.0) ** 2.2
    return _to_image(np.repeat(sketch[..., None], 3, axis=2))


def render_oil(image: Image.Image) -> Image.Image:
    """Oil-paint-like: median-smoothed half-resolution patches, 24-colour palette, enlarged, edge-accented, warm."""
    half = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BILINEAR)
    palette = half.filter(ImageFilter.MedianFilter(3)).quantize(colors=24, method=Image.Quantize.MEDIANCUT)
    strokes = palette.convert("RGB").resize(image.size, Image.Resampling.BICUBIC).filter(ImageFilter.EDGE_ENHANCE)
    return ImageEnhance.Color(strokes).enhance(1.4)


def render_grade(image: Image.Image) -> Image.Image:
    """Colour grade: teal shadows / orange highlights split-toning, lifted blacks, lower contrast."""
    rgb = _as_array(image)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    shadow_weight = (1.0 - luma)[..., None] ** 2
    highlight_weight = luma[..., None] ** 2
    teal, orange = np.array([0.0, 0.35, 0.45]), np.array([0.55, 0.3, 0.0])
    graded = 0.55 * rgb + 0.25 * luma[..., None] + 0.6 * shadow_weight * teal + 0.6 * highlight_weight * orange
    return _to_image(0.08 + 0.88 * graded)


RENDERERS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "photo": render_photo,
    "posterise": render_posterise,
    "pencil": render_pencil,
    "oil": render_oil,
    "grade": render_grade,
}


def make_stylized(
    out_dir: str | Path,
    styles: Sequence[str] = STYLE_NAMES,
    max_side: int = 192,
    limit: int | None = None,
) -> pd.DataFrame:
    """Write every sample photo in each style under out_dir; returns the label frame (cached on disk).

    Columns: image_id ("<content_id>_<style>"), content_id, style, mos (source photo's AVA mean, 1-10),
    dist_1..dist_10 (source photo's vote distribution), path (absolute image path).
    """
    from iaa_lib.data.labels import DIST_COLUMNS
    from iaa_lib.data.sample import load_ava_sample

    unknown = [s for s in styles if s not in RENDERERS]
    if unknown:
        raise ValueError(f"unknown styles {unknown}; choose from {list(RENDERERS)}")
    out_dir = Path(out_dir)
    settings = {"styles": list(styles), "max_side": max_side, "limit": limit, "version": 1}
    labels_path, settings_path = out_dir / "labels.csv", out_dir / "settings.json"
    if labels_path.exists() and settings_path.exists() and json.loads(settings_path.read_text()) == settings:
        frame = pd.read_csv(labels_path, dtype={"image_id": str, "content_id": str})
        if all(Path(p).exists() for p in frame["path"]):
            return frame

    sample, image_dir = load_ava_sample()
    sample = sample.iloc[:limit] if limit is not None else sample
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for record in sample.itertuples(index=False):
        content_id = str(record.image_id)
        source_path = getattr(record, "path", None) or Path(image_dir) / f"{content_id}.jpg"
        photo = Image.open(source_path).convert("RGB")
        photo.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        for style in styles:
            path = out_dir / "images" / f"{content_id}_{style}.jpg"
            RENDERERS[style](photo).save(path, quality=92)
            row = {"image_id": f"{content_id}_{style}", "content_id": content_id, "style": style,
                   "mos": float(record.mos), "path": str(path.resolve())}
            if all(hasattr(record, c) for c in DIST_COLUMNS):
                row.update({c: float(getattr(record, c)) for c in DIST_COLUMNS})
            rows.append(row)
    frame = pd.DataFrame(rows)
    atomic_write_text(labels_path, frame.to_csv(index=False))
    atomic_write_json(settings_path, settings)
    return frame


def split_by_content(frame: pd.DataFrame, content_splits: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Image ids per split, every rendering following its source photo's split (e.g. the sample's sample_splits())."""
    if "content_id" not in frame:
        raise ValueError("split_by_content needs a `content_id` column (a frame from make_stylized)")
    split_of = {str(c): name for name, ids in content_splits.items() for c in ids}
    missing = sorted(set(frame["content_id"].astype(str)) - set(split_of))
    if missing:
        raise ValueError(f"{len(missing)} content ids are in no split (first: {missing[0]!r}); pass splits of all source photos")
    splits: dict[str, list[str]] = {name: [] for name in content_splits}
    for image_id, content_id in zip(frame["image_id"].astype(str), frame["content_id"].astype(str)):
        splits[split_of[content_id]].append(image_id)
    return splits
