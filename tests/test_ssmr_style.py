"""Style descriptor (Gram matrices) and the style-varied set: invariance to content shifts, sensitivity to style."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from iaa_lib.data.sample import load_ava_sample
from iaa_lib.ssmr.stylize import STYLE_NAMES, make_stylized, split_by_content
from iaa_lib.data.transforms import eval_transform
from iaa_lib.blocks.backbones import create_backbone
from iaa_lib.ssmr.pipeline import prepare_references
from iaa_lib.ssmr.style import StyleEncoder, adain_descriptor, gram_descriptor, gram_matrix, resolve_layer_names

N_CONTENTS = 12


def test_gram_matrix_hand_value_and_shift_invariance():
    fmap = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]])  # (1, 2, 2, 2)
    expected = torch.tensor([[6.0, 2.0], [2.0, 2.0]]) / (2 * 2 * 2)
    assert torch.allclose(gram_matrix(fmap)[0], expected)
    big = torch.randn(2, 5, 9, 7)
    assert torch.allclose(gram_matrix(big), gram_matrix(torch.roll(big, shifts=(3, 2), dims=(2, 3))), atol=1e-6)
    vectors = gram_descriptor([big, torch.randn(2, 3, 4, 4)])
    assert vectors.shape == (2, 15 + 6) and torch.allclose(vectors.norm(dim=1), torch.ones(2))
    assert torch.allclose(adain_descriptor([big]).norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="B, C, H, W"):
        gram_matrix(torch.randn(3, 4))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """12 sample photos x 5 styles, the lite0 backbone and a 112-px transform."""
    torch.set_num_threads(1)
    frame = make_stylized(tmp_path_factory.mktemp("stylized"), max_side=128, limit=N_CONTENTS)
    backbone = create_backbone("timm:tf_efficientnet_lite0", weights="imagenet")
    return frame, backbone, eval_transform(112, backbone.mean, backbone.std)


def test_stylized_frame_columns_scores_and_content_split(rendered):
    frame, _, _ = rendered
    assert len(frame) == N_CONTENTS * len(STYLE_NAMES)
    assert {"image_id", "content_id", "style", "mos", "path"} <= set(frame.columns)
    sample, _ = load_ava_sample()
    source_mos = dict(zip(sample["image_id"].astype(str), sample["mos"]))
    assert np.allclose(frame["mos"], frame["content_id"].map(source_mos))
    contents = sorted(frame["content_id"].unique())
    splits = split_by_content(frame, {"train": contents[:5], "test": contents[5:]})
    content_of = dict(zip(frame["image_id"], frame["content_id"]))
    assert {content_of[i] for i in splits["train"]}.isdisjoint({content_of[i] for i in splits["test"]})
    with pytest.raises(ValueError, match="in no split"):
        split_by_content(frame, {"train": contents[:5]})


def _shifted_crops(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Two 85 % windows of the same rendering, from opposite corners (a translation of the content)."""
    w, h = image.size
    cw, ch = int(0.85 * w), int(0.85 * h)
    return image.crop((0, 0, cw, ch)), image.crop((w - cw, h - ch, w, h))


def test_style_descriptor_ignores_translation_but_not_style(rendered):
    frame, backbone, transform = rendered
    encoder = StyleEncoder(backbone)
    crops = [_shifted_crops(Image.open(path).convert("RGB")) for path in frame["path"]]
    left = encoder(torch.stack([transform(pair[0]) for pair in crops]))
    right = encoder(torch.stack([transform(pair[1]) for pair in crops]))
    distances = torch.cdist(left, right).numpy()  # [i, j]: left window of rendering i vs right window of j
    content = frame["content_id"].to_numpy()
    same_content = content[:, None] == content[None, :]
    hits = []
    for i in range(len(frame)):
        other_styles = same_content[i].copy()
        other_styles[i] = False
        hits.append(distances[i, i] < distances[i, other_styles].min())
    assert np.mean(hits) >= 0.9, f"shifted copy closer than every other style in only {np.mean(hits):.0%} of cases"


def test_style_retrieval_finds_style_semantic_finds_content(rendered):
    frame, backbone, transform = rendered
    encoder = StyleEncoder(backbone, with_pooled=True)
    images = torch.stack([transform(Image.open(p).convert("RGB")) for p in frame["path"]])
    both = encoder(images)
    semantic, style = both[:, : backbone.dim], both[:, backbone.dim :]
    content, styles = frame["content_id"].to_numpy(), frame["style"].to_numpy()
    other_content = content[:, None] != content[None, :]

    def same_style_rate(vectors: torch.Tensor) -> float:
        distances = torch.cdist(vectors, vectors).numpy()
        distances[~other_content] = np.inf  # as for held-out queries: the same photo is never a candidate
        top = np.argsort(distances, axis=1)[:, :4]
        return float((styles[top] == styles[:, None]).mean())

    style_rate, semantic_rate = same_style_rate(style), same_style_rate(semantic)
    print(f"same-style rate of the top-4: style {style_rate:.2f}, semantic {semantic_rate:.2f} (chance 0.20)")
    assert style_rate >= 0.5 and style_rate > semantic_rate + 0.15, (style_rate, semantic_rate)
    distances = torch.cdist(semantic, semantic).fill_diagonal_(float("inf"))
    assert (content[distances.argmin(dim=1).numpy()] == content).mean() >= 0.8  # semantic: same photo, other style


def test_layer_names_resolve_to_shallowest_match(rendered):
    _, backbone, _ = rendered
    assert resolve_layer_names(backbone, ["bn1", "blocks.1"]) == ["model.bn1", "model.blocks.1"]
    with pytest.raises(ValueError, match="matches 0 modules"):
        resolve_layer_names(backbone, ["no_such_layer"])


def test_one_pass_and_separate_style_backbone_give_the_same_features(rendered, tmp_path):
    frame, backbone, _ = rendered
    frame = frame.iloc[:10]
    contents = sorted(frame["content_id"].unique())
    splits = split_by_content(frame, {"train": contents[:1], "test": contents[1:]})
    one_pass = prepare_references(frame, splits, backbone, "imagenet", 96, tmp_path / "a")
    separate = prepare_references(frame, splits, backbone, "imagenet", 96, tmp_path / "b", style_backbone=backbone,
                                  style_weights="imagenet")
    assert torch.allclose(one_pass.style.features, separate.style.features, atol=1e-5)
    assert torch.allclose(one_pass.semantic.features, separate.semantic.features, atol=1e-5)
    assert one_pass.semantic.dim == backbone.dim and one_pass.style.dim == 300 + 820 + 3240 + 528
