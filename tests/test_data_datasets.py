"""Transforms, AestheticDataset (errors, skip report, cache) and the embedded sample data."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from iaa_lib.data.datasets import AestheticDataset
from iaa_lib.data.images import ImageLoadError
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.data.sample import load_ava_sample, load_dpc_comments, load_sample_comments, sample_splits
from iaa_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from iaa_lib.paths import DATA_DIR


@pytest.fixture(scope="module")
def sample():
    return load_ava_sample()


def _card(width: int = 60, height: int = 30) -> Image.Image:
    """Asymmetric RGB gradient image for geometry checks."""
    xs = np.linspace(0, 255, width, dtype=np.float64)[None, :, None]
    ys = np.linspace(0, 255, height, dtype=np.float64)[:, None, None]
    return Image.fromarray(np.concatenate([xs + 0 * ys, ys + 0 * xs, 255 - xs + 0 * ys], axis=2).astype(np.uint8))


def test_eval_transform_is_a_pinned_bicubic_squash_then_normalise():
    image = _card()
    out = eval_transform(16)(image)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32
    expected = np.asarray(image.resize((16, 16), Image.Resampling.BICUBIC), np.float32) / 255.0
    expected = (expected - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    assert torch.allclose(out, torch.from_numpy(expected).permute(2, 0, 1), atol=1e-5)
    assert torch.equal(out, eval_transform(16)(image))


def test_center_crop_keeps_aspect_and_crops_the_middle():
    image = _card(60, 30)
    out = eval_transform(16, mean=(0, 0, 0), std=(1, 1, 1), resize="center_crop")(image)
    expected = np.asarray(image.resize((32, 16), Image.Resampling.BICUBIC).crop((8, 0, 24, 16)), np.float32) / 255.0
    assert torch.allclose(out, torch.from_numpy(expected).permute(2, 0, 1), atol=1e-5)
    assert not torch.allclose(out, eval_transform(16, mean=(0, 0, 0), std=(1, 1, 1))(image), atol=1e-2)


def test_train_transform_augments_and_reduces_to_eval_without_augmentation():
    image = _card()
    torch.manual_seed(0)
    flips = {bool(torch.equal(train_transform(16)(image), eval_transform(16)(image))) for _ in range(20)}
    assert flips == {True, False}
    flipped = eval_transform(16)(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    torch.manual_seed(0)
    outputs = [train_transform(16)(image) for _ in range(20)]
    assert all(torch.allclose(o, flipped, atol=1e-5) or torch.equal(o, eval_transform(16)(image)) for o in outputs)
    assert torch.equal(train_transform(16, hflip=False)(image), eval_transform(16)(image))
    crops = {train_transform(16, hflip=False, random_crop=True)(image).sum().item() for _ in range(10)}
    assert len(crops) > 1 and train_transform(16, random_crop=True)(image).shape == (3, 16, 16)


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"resize": "letterbox"}, {"std": (0, 1, 1)}])
def test_transforms_reject_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        eval_transform(**kwargs)


def test_embedded_sample_loads_with_sane_statistics(sample):
    frame, image_dir = sample
    assert len(frame) == 77 and frame["image_id"].is_unique
    assert all((image_dir / f"{i}.jpg").is_file() for i in frame["image_id"])
    assert len(list(image_dir.glob("*.jpg"))) == 77
    assert frame["mos"].min() == pytest.approx(3.478, abs=1e-3) and frame["mos"].max() == pytest.approx(7.162, abs=1e-3)
    assert frame["mos"].median() == pytest.approx(5.46, abs=0.01)
    assert frame["n_votes"].between(123, 224).all() and frame["std"].between(0.5, 3.0).all()
    assert np.allclose(frame[DIST_COLUMNS].sum(axis=1), 1.0)


def test_sample_comments_and_dpc_comments(sample):
    comments = load_sample_comments()
    assert len(comments) == 16 and set(comments) <= set(sample[0]["image_id"])
    assert all(texts and all(isinstance(t, str) and t for t in texts) for texts in comments.values())
    dpc = load_dpc_comments()
    assert len(dpc) == 13_432 and all(not k.endswith(".jpg") for k in dpc)
    assert all(dpc[i] == texts for i, texts in comments.items())


def test_sample_errors_name_missing_files_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="AVA sample folder not found: .*git checkout"):
        load_ava_sample(tmp_path / "absent")
    copy = tmp_path / "ava_sample"
    shutil.copytree(DATA_DIR / "ava_sample", copy)
    (copy / "images" / "42040.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 AVA sample image\\(s\\) missing .*42040"):
        load_ava_sample(copy)
    (copy / "splits.csv").unlink()
    with pytest.raises(FileNotFoundError, match="write_sample_splits"):
        sample_splits(copy)
    (copy / "comments.jsonl").write_text('{"image_id": 1}\n')
    with pytest.raises(ValueError, match="line 1"):
        load_sample_comments(copy)
    bad_json = tmp_path / "dpc.json"
    bad_json.write_text(json.dumps({"1.jpg": "not a list"}))
    with pytest.raises(ValueError, match="list of strings"):
        load_dpc_comments(bad_json)


def test_dataset_items_and_batches(sample):
    frame, image_dir = sample
    dataset = AestheticDataset(frame.head(6), image_dir, transform=eval_transform(32))
    item = dataset[0]
    assert set(item) == {"image", "mos", "dist", "image_id"}
    assert item["image"].shape == (3, 32, 32) and item["mos"].dtype == torch.float32 and item["mos"].ndim == 0
    assert item["dist"].shape == (10,) and item["dist"].sum().item() == pytest.approx(1.0, abs=1e-6)
    assert item["image_id"] == frame["image_id"].iloc[0]
    assert item["mos"].item() == pytest.approx(frame["mos"].iloc[0], rel=1e-6)
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["dist"].shape == (4, 10) and len(batch["image_id"]) == 4
    no_dist = AestheticDataset(frame.head(2)[["image_id", "mos"]], image_dir, transform=eval_transform(32))
    assert "dist" not in no_dist[0]


def test_dataset_default_transform_is_eval_224(sample):
    frame, image_dir = sample
    assert AestheticDataset(frame.head(1), image_dir)[0]["image"].shape == (3, 224, 224)


def test_dataset_image_dir_and_path_column(sample, tmp_path):
    frame, image_dir = sample
    with pytest.raises(FileNotFoundError, match="image directory not found: .*no_such_dir"):
        AestheticDataset(frame, tmp_path / "no_such_dir")
    with pytest.raises(ValueError, match="image_dir"):
        AestheticDataset(frame)
    moved = shutil.copyfile(image_dir / "42039.jpg", tmp_path / "renamed.png")
    with_path = frame.head(1).assign(path=str(moved))
    dataset = AestheticDataset(with_path, tmp_path / "ignored_because_of_path_column", transform=eval_transform(8))
    assert dataset.paths == [moved]
    assert torch.equal(dataset[0]["image"], AestheticDataset(frame.head(1), image_dir, transform=eval_transform(8))[0]["image"])


def test_dataset_rejects_bad_frames(sample):
    frame, image_dir = sample
    with pytest.raises(ValueError, match="dist_1..dist_10"):
        AestheticDataset(frame.drop(columns="dist_3"), image_dir)
    with pytest.raises(ValueError, match="mos"):
        AestheticDataset(frame.assign(mos=np.nan), image_dir)
    with pytest.raises(ValueError, match="missing column"):
        AestheticDataset(frame.drop(columns="mos"), image_dir)
    with pytest.raises(ValueError, match="on_error"):
        AestheticDataset(frame, image_dir, on_error="ignore")


@pytest.fixture()
def broken_dir(sample, tmp_path):
    """Image folder: 3 good sample images, one missing, one truncated, one corrupt."""
    frame, image_dir = sample
    ids = frame["image_id"].head(6).tolist()
    for image_id in ids[:3]:
        shutil.copyfile(image_dir / f"{image_id}.jpg", tmp_path / f"{image_id}.jpg")
    data = (image_dir / f"{ids[4]}.jpg").read_bytes()
    (tmp_path / f"{ids[4]}.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / f"{ids[5]}.jpg").write_bytes(b"garbage" * 100)
    return frame.head(6), tmp_path, ids


def test_raise_mode_names_missing_and_unreadable_files(broken_dir):
    frame, folder, ids = broken_dir
    with pytest.raises(ImageLoadError, match=f"1 of 6 image file\\(s\\) missing.*{ids[3]}.jpg"):
        AestheticDataset(frame, folder)
    dataset = AestheticDataset(frame.drop(index=3), folder, transform=eval_transform(8))
    dataset[0]
    with pytest.raises(ImageLoadError, match=f"{ids[4]}.jpg"):
        dataset[3]


def test_skip_mode_reports_every_skipped_image(broken_dir):
    frame, folder, ids = broken_dir
    with pytest.warns(UserWarning, match="skipped 3 of 6") as record:
        dataset = AestheticDataset(frame, folder, transform=eval_transform(8), on_error="skip")
    message = str(record[0].message)
    assert all(i in message for i in ids[3:])
    assert len(dataset) == 3 and dataset.frame["image_id"].tolist() == ids[:3]
    assert [s[0] for s in dataset.skipped] == ids[3:]
    assert "file not found" in dataset.skipped[0][2] and dataset.skipped[1][1].endswith(f"{ids[4]}.jpg")
    assert [dataset[k]["image_id"] for k in range(3)] == ids[:3]


def test_skip_mode_on_clean_data_skips_nothing_silently(sample):
    frame, image_dir = sample
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = AestheticDataset(frame.head(4), image_dir, transform=eval_transform(8), on_error="skip")
    assert dataset.skipped == [] and len(dataset) == 4


def test_cache_keeps_decoded_images(sample):
    frame, image_dir = sample
    dataset = AestheticDataset(frame.head(3), image_dir, transform=eval_transform(8), cache_images=True, cache_max_side=64)
    first = dataset.image(1)
    assert dataset.image(1) is first and max(first.size) == 64
    plain = AestheticDataset(frame.head(3), image_dir, transform=eval_transform(8))
    assert plain.image(1) is not plain.image(1) and max(plain.image(1).size) == 512
    skip_cached = AestheticDataset(frame.head(2), image_dir, transform=eval_transform(8), on_error="skip", cache_images=True)
    assert len(skip_cached._cache) == 2


def test_an_in_memory_set_is_fingerprinted_by_its_images_bytes_not_their_folder(sample, tmp_path):
    frame, image_dir = sample
    frame = frame.head(3)
    copy = tmp_path / "copy"
    shutil.copytree(image_dir, copy, ignore=lambda _, names: [n for n in names if n[:-4] not in set(frame["image_id"])])
    original, copied = (AestheticDataset(frame, d, eval_transform(16), cache_images=True) for d in (image_dir, copy))
    assert original.fingerprint() == copied.fingerprint()  # the same images in another run folder
    on_disk = [AestheticDataset(frame, d, eval_transform(16)) for d in (image_dir, copy)]
    assert on_disk[0].fingerprint() != on_disk[1].fingerprint()  # full-AVA sets: counted by their paths
    first = copy / f"{frame['image_id'].iloc[0]}.jpg"
    _card().save(first)
    assert AestheticDataset(frame, copy, eval_transform(16), cache_images=True).fingerprint() != original.fingerprint()
