"""Robust image loading: orientation, colour modes, bit depth, and broken files."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from iaa_lib.data.images import ImageLoadError, content_hash, load_rgb
from iaa_lib.paths import DATA_DIR

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _left_red_right_blue(width: int = 40, height: int = 20) -> Image.Image:
    """RGB test card: left half red, right half blue."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    return Image.fromarray(pixels)


def test_exif_orientation_is_applied(tmp_path):
    # Orientation 6: stored column 0 is the displayed top row, so the red left half ends up on top.
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    _left_red_right_blue().save(path, exif=exif, quality=100)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (20, 40)
    top, bottom = np.asarray(image)[5, 10], np.asarray(image)[35, 10]
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_image_without_orientation_keeps_its_pixels(tmp_path):
    path = tmp_path / "plain.png"
    _left_red_right_blue().save(path)
    assert np.array_equal(np.asarray(load_rgb(path)), np.asarray(_left_red_right_blue()))


def test_grayscale_becomes_rgb_with_equal_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) * 5, mode="L").save(path)
    pixels = np.asarray(load_rgb(path))
    assert pixels.shape == (6, 8, 3)
    assert np.array_equal(pixels[..., 0], pixels[..., 2]) and pixels[5, 7, 0] == 47 * 5


def test_palette_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (4, 2))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putdata([0, 0, 1, 1, 0, 0, 1, 1])
    plain, transparent = tmp_path / "p.png", tmp_path / "pt.png"
    palette.save(plain)
    palette.save(transparent, transparency=1)  # palette index 1 (blue) is transparent
    assert tuple(np.asarray(load_rgb(plain))[0, 3]) == BLUE
    loaded = np.asarray(load_rgb(transparent))
    assert tuple(loaded[0, 0]) == RED and tuple(loaded[0, 3]) == WHITE


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[0, 1] = (0, 0, 255, 255)  # opaque blue stays blue
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.array([[[0, 0], [200, 255]]], np.uint8), mode="LA").save(tmp_path / "la.png")
    pixels = np.asarray(load_rgb(tmp_path / "a.png"))
    assert tuple(pixels[0, 0]) == WHITE and tuple(pixels[0, 1]) == BLUE
    assert abs(int(pixels[0, 2, 0]) - 127) <= 1
    assert [tuple(p) for p in np.asarray(load_rgb(tmp_path / "la.png"))[0]] == [WHITE, (200, 200, 200)]


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_cmyk_becomes_rgb(tmp_path, suffix):
    path = tmp_path / f"cmyk{suffix}"
    Image.new("CMYK", (8, 6), (255, 0, 0, 0)).save(path)  # pure cyan
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (8, 6)
    assert np.abs(np.asarray(image)[3, 3].astype(int) - (0, 255, 255)).max() <= 2


@pytest.mark.parametrize("suffix, dtype", [(".png", np.uint16), (".tif", np.uint16), (".tif", np.int32)])
def test_sixteen_bit_grey_is_scaled_to_eight_bit(tmp_path, suffix, dtype):
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(np.array([[0, 257 * 128, 65535]], dtype=dtype)).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    pixels = np.asarray(load_rgb(path))
    assert pixels.dtype == np.uint8 and pixels[0, :, 1].tolist() == [0, 128, 255]


def _truncated_jpeg(path):
    """A valid JPEG cut in half."""
    full = path.with_name("full.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full)
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])


@pytest.mark.parametrize("case", ["missing", "truncated", "corrupt", "text", "directory"])
def test_broken_files_raise_image_load_error_naming_the_file(tmp_path, case):
    path = tmp_path / f"{case}.jpg"
    if case == "truncated":
        _truncated_jpeg(path)
    elif case == "corrupt":
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    elif case == "text":
        path.write_text("not an image")
    elif case == "directory":
        path.mkdir()
    with pytest.raises(ImageLoadError) as error:
        load_rgb(path)
    assert str(path) in str(error.value) and error.value.path == path


def test_content_hash_is_sha256_of_the_bytes(tmp_path):
    source = DATA_DIR / "ava_sample" / "images" / "42039.jpg"
    copy = tmp_path / "copy.jpg"
    shutil.copyfile(source, copy)
    assert content_hash(source) == hashlib.sha256(source.read_bytes()).hexdigest() == content_hash(copy)
    assert content_hash(DATA_DIR / "ava_sample" / "images" / "42040.jpg") != content_hash(source)


def test_every_sample_image_loads_as_rgb():
    paths = sorted((DATA_DIR / "ava_sample" / "images").glob("*.jpg"))
    assert len(paths) == 77
    for path in paths:
        image = load_rgb(path)
        assert image.mode == "RGB" and max(image.size) <= 512 and min(image.size) > 100
