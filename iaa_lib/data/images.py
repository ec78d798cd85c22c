"""Robust image loading: any common file -> 8-bit RGB PIL image in display orientation, or ImageLoadError."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_DIRECT_MODES = {"RGB", "L", "1", "CMYK", "YCbCr", "RGBX"}
WHITE = (255, 255, 255)


class ImageLoadError(OSError):
    """An image file that is missing, truncated, corrupt or in an unsupported mode; the message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot load image {self.path}: {reason}")


def _composite_on_white(image: Image.Image) -> Image.Image:
    """RGB image of an image with alpha, composited over a white background."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    """RGB image of a 16-bit grey image (modes I;16* and I, read as 0..65535), scaled to 0..255."""
    values = np.asarray(image, dtype=np.float64)
    grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB version of a decoded image: grey, palette (incl. transparency), alpha (over white), CMYK, 16-bit."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        return _composite_on_white(image) if "transparency" in image.info else image.convert("RGB")
    if mode in _ALPHA_MODES:
        return _composite_on_white(image)
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image)
    if mode in _DIRECT_MODES:
        return image.convert("RGB")
    raise ValueError(f"unsupported image mode {mode!r}")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Fully decoded 8-bit RGB PIL image with EXIF orientation applied; ImageLoadError naming the file otherwise.

    Truncated files are errors (PIL's LOAD_TRUNCATED_IMAGES is never enabled here).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(path, "file not found" if not path.exists() else "not a regular file")
    try:
        with Image.open(path) as image:
            image.load()
            oriented = ImageOps.exif_transpose(image)
            return to_rgb(oriented)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageLoadError(path, f"decompression bomb guard: {error}") from error
    except Exception as error:  # PIL decoders raise assorted types (OSError, SyntaxError, struct.error, ...) on bad data
        raise ImageLoadError(path, f"{type(error).__name__}: {error}") from error


def content_hash(path: str | os.PathLike) -> str:
    """sha256 hex digest of the file's bytes (catches byte-identical copies, not re-encoded ones)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
