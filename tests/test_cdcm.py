"""CDCM-Net: memory addressing and losses (hand-computed), stop-gradients, confidence losses, fusion, missing modality."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from iaa_lib.cdcm.model import (
    CDCMNet, EncoderBlock, ImageTokens, KeyValueMemory, cdcm_main_loss, sum_normalise,
)

TINY = dict(dim=16, visual_dim=24, text_dim=12, n_slot=8, heads=2, mlp_dim=32, image_depth=1, text_depth=1,
            fusion_depth=1, dropout=0.0, memory_dropout=0.0)


def tiny(variant="textbook", modality="recalled", **kw):
    torch.manual_seed(0)
    return CDCMNet("smoke", variant=variant, modality=modality, **{**TINY, **kw})


def batch(b=3, n=5, t=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[0, 2:] = False
    mask[-1] = False  # an image without comments
    return dict(visual_tokens=torch.randn(b, n, 24, generator=g), comment_features=torch.randn(b, t, 12, generator=g),
                comment_mask=mask, dist=torch.softmax(torch.randn(b, 10, generator=g), -1))


# ------------------------------------------------------------------------------------------ memory
def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_cos(a, b):
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)) @ (b / np.linalg.norm(b, axis=-1, keepdims=True)).T


def _identity_memory(radius=2.0):
    memory = KeyValueMemory(n_slot=3, dim=2, radius=radius, dropout=0.0)
    with torch.no_grad():
        memory.key.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        memory.value.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        for layer in (memory.query_proj, memory.text_query_proj):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    return memory


def test_addressing_rows_sum_to_one():
    memory = KeyValueMemory(n_slot=7, dim=6, radius=16.0, dropout=0.0)
    out = memory(torch.randn(2, 5, 6), torch.randn(2, 5, 6))
    for name in ("address", "value_address"):
        assert out[name].shape == (2, 5, 7)
        assert torch.all(out[name] >= 0)
        torch.testing.assert_close(out[name].sum(-1), torch.ones(2, 5))


def test_memory_losses_match_hand_computation():
    memory = _identity_memory(radius=2.0)
    visual = np.array([[1.0, 0.0], [1.0, 1.0]])
    text = np.array([[0.0, 3.0], [2.0, 1.0]])
    out = memory(torch.tensor(visual, dtype=torch.float32)[None], torch.tensor(text, dtype=torch.float32)[None])
    K = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    V = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    alpha = _np_softmax(2.0 * _np_cos(visual, K))
    beta = _np_softmax(2.0 * _np_cos(text, V))
    # first row: cos(v, K) = (1, 0, -1) -> alpha = e^(2,0,-2) / sum
    np.testing.assert_allclose(alpha[0], np.exp([2, 0, -2]) / np.exp([2, 0, -2]).sum(), rtol=1e-6)
    rec = np.mean((beta @ V - text) ** 2)
    kl = np.mean(np.sum(beta * (np.log(beta) - np.log(alpha)), axis=-1))
    np.testing.assert_allclose(out["address"][0].detach().numpy(), alpha, rtol=1e-5)
    np.testing.assert_allclose(out["readout"][0].detach().numpy(), alpha @ V, rtol=1e-5)
    np.testing.assert_allclose(out["rec_loss"].item(), rec, rtol=1e-5)
    np.testing.assert_allclose(out["add_loss"].item(), kl, rtol=1e-5)
    # torch's kl_div(log alpha, beta, 'batchmean') over the rows is what the released code computes
    reference = nn.functional.kl_div(torch.tensor(np.log(alpha)), torch.tensor(beta), reduction="batchmean")
    np.testing.assert_allclose(out["add_loss"].item(), reference.item(), rtol=1e-5)


def test_masked_rows_are_dropped_from_memory_losses():
    memory = _identity_memory()
    visual, text = torch.randn(1, 3, 2), torch.randn(1, 3, 2)
    mask = torch.tensor([[True, True, False]])
    masked = memory(visual, text, mask)
    first_two = memory(visual[:, :2], text[:, :2])
    torch.testing.assert_close(masked["rec_loss"], first_two["rec_loss"])
    torch.testing.assert_close(masked["add_loss"], first_two["add_loss"])
    unmasked = memory(visual, text)
    assert not torch.isclose(unmasked["rec_loss"], masked["rec_loss"])


def _grads(memory, loss):
    memory.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {name: 0.0 if p.grad is None else p.grad.abs().sum().item() for name, p in memory.named_parameters()}


def test_stop_gradients_route_each_loss_to_its_parameters():
    torch.manual_seed(0)
    memory = KeyValueMemory(n_slot=6, dim=4, radius=16.0, dropout=0.0)
    out = memory(torch.randn(2, 3, 4), torch.randn(2, 3, 4, requires_grad=True))
    rec = _grads(memory, out["rec_loss"])
    add = _grads(memory, out["add_loss"])
    recall = _grads(memory, out["recalled"].pow(2).sum())
    assert rec["value"] > 0 and rec["text_query_proj.weight"] > 0
    assert rec["key"] == 0 and rec["query_proj.weight"] == 0
    assert add["key"] > 0 and add["query_proj.weight"] > 0
    assert add["value"] == 0 and add["text_query_proj.weight"] == 0
    assert recall["key"] > 0 and recall["recall_proj.weight"] > 0
    assert recall["value"] == 0 and recall["text_query_proj.weight"] == 0


# ------------------------------------------------------------------------------------------ heads and losses
def test_sum_normalise_guard_keeps_all_zero_rows_finite():
    out = sum_normalise(torch.tensor([[0.0, 0.0, 0.0], [1.0, 3.0, 0.0]]))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], torch.tensor([0.25, 0.75, 0.0]))


def _emd1_scipy(p, y):
    bins = np.arange(1, 11)
    return scipy.stats.wasserstein_distance(bins, bins, p, y) / 10


@pytest.mark.parametrize("variant", ["textbook", "as_published"])
def test_confidence_loss_matches_hand_computation(variant):
    model = tiny(variant)
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(torch.randn(4, 10, generator=g), -1)
    y = torch.softmax(torch.randn(4, 10, generator=g), -1)
    c = torch.tensor([0.9, 0.0, 1.3, 0.5])
    emd1 = np.array([_emd1_scipy(a, b) for a, b in zip(p.numpy(), y.numpy())])
    gaps_sq = (np.cumsum(p.numpy() - y.numpy(), -1)) ** 2
    if variant == "as_published":
        expected = np.mean((c.numpy() - (1 - emd1.mean())) ** 2) + np.sqrt(gaps_sq.mean())
    else:
        expected = np.mean((c.numpy() - (1 - emd1)) ** 2) + np.mean(np.sqrt(gaps_sq.mean(-1)))
    np.testing.assert_allclose(model.confidence_loss(c, p, y).item(), expected, rtol=1e-5)


def test_confidence_target_is_detached_only_in_textbook():
    g = torch.Generator().manual_seed(4)
    logits, y = torch.randn(3, 10, generator=g), torch.softmax(torch.randn(3, 10, generator=g), -1)
    c = torch.tensor([0.2, 0.4, 0.1])
    for variant, should_match in (("textbook", True), ("as_published", False)):
        model = tiny(variant)
        p = torch.softmax(logits.clone().requires_grad_(True), -1)
        full, = torch.autograd.grad(model.confidence_loss(c, p, y), p)
        emd2_only, = torch.autograd.grad(model._emd(p, y, r=2), p)
        assert torch.allclose(full, emd2_only) is should_match


def test_main_loss_reductions():
    assert cdcm_main_loss("as_published").reduction == "batch_pooled"
    assert cdcm_main_loss("textbook").reduction == "sample"
    assert cdcm_main_loss().r == 1
    with pytest.raises(ValueError, match="variant"):
        cdcm_main_loss("paper")


# ------------------------------------------------------------------------------------------ model
def test_full_config_parameter_counts_match_spec():
    with torch.device("meta"):
        model = CDCMNet("full")
    total = sum(p.numel() for p in model.parameters())
    memory = sum(p.numel() for p in model.memory.parameters())
    assert memory == 1_574_400
    assert total - memory == 25_777_696  # MMDF without the unused FeatureInforEncoder
    assert sum(p.numel() for p in EncoderBlock(512, 16, 1024, 0.5).parameters()) == 2_102_784
    assert model.cfg["n_slot"] == 512 and model.cfg["radius"] == 16.0 and model.cfg["fusion_depth"] == 6


@pytest.mark.parametrize("variant", ["textbook", "as_published"])
@pytest.mark.parametrize("modality", ["recalled", "real", "image_only"])
def test_shapes_and_valid_distributions(variant, modality):
    model = tiny(variant, modality).train()
    out = model(**batch())
    assert out["pred"].shape == (3, 10)
    assert torch.all(out["pred"] >= 0)
    torch.testing.assert_close(out["pred"].sum(-1), torch.ones(3), atol=1e-5, rtol=0)
    assert out["aux_loss"].ndim == 0 and torch.isfinite(out["aux_loss"])
    if modality != "image_only":
        assert out["confidence"].shape == (3, 2) and torch.all(out["confidence"] >= 0)
        assert out["modality_pred"].shape == (3, 2, 10)
    if modality == "recalled":
        assert out["address"].shape == (3, 5, 8)
        assert out["recalled_text"].shape == (3, 5, 16) and out["memory_readout"].shape == (3, 5, 16)


def test_image_only_inference_never_reads_comments():
    model = tiny().eval()
    data = batch()
    with torch.no_grad():
        images_only = model(visual_tokens=data["visual_tokens"])["pred"]
        with_comments = model(**data)["pred"]
        poisoned = model(visual_tokens=data["visual_tokens"], comment_features=torch.full_like(data["comment_features"], float("nan")),
                         comment_mask=data["comment_mask"], dist=torch.full_like(data["dist"], float("nan")))["pred"]
    torch.testing.assert_close(images_only, with_comments, rtol=0, atol=0)
    torch.testing.assert_close(images_only, poisoned, rtol=0, atol=0)
    assert torch.isfinite(images_only).all()


def test_full_modality_variant_reads_comments_at_test_time():
    model = tiny(modality="real").eval()
    data = batch()
    with torch.no_grad():
        a = model(**data)["pred"]
        b = model(**{**data, "comment_features": data["comment_features"] + 1.0})["pred"]
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="comment_features"):
        model(visual_tokens=data["visual_tokens"])


def test_training_without_comments_skips_memory_losses_but_needs_dist():
    model = tiny().train()
    data = batch()
    out = model(visual_tokens=data["visual_tokens"], dist=data["dist"])
    assert "rec_loss" not in out and torch.isfinite(out["aux_loss"])
    with pytest.raises(ValueError, match="dist"):
        model(visual_tokens=data["visual_tokens"])


def test_gradients_reach_every_trained_part():
    model = tiny().train()
    data = batch(b=6)
    with torch.no_grad():  # positive confidences so the fusion gradient reaches both modality encoders
        for head in model.modality_confidence.values():
            head.bias.fill_(1.0)
    out = model(**data)
    (cdcm_main_loss()(out["pred"], data["dist"]) + out["aux_loss"]).backward()
    for name in ("memory.key", "memory.value", "memory.query_proj.weight", "memory.text_query_proj.weight",
                 "memory.recall_proj.weight", "visual_adapter.1.weight", "image_encoder.blocks.0.fc1.weight",
                 "text_encoder.blocks.0.query.weight", "modality_classifier.image.weight",
                 "modality_classifier.text.weight", "modality_confidence.text.weight",
                 "fusion_encoder.blocks.0.fc2.weight", "head_hidden.weight", "head_out.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_textbook_padding_rows_do_not_change_real_modality_prediction():
    model = tiny(modality="real").eval()
    data = batch()
    padded = {**data, "comment_features": data["comment_features"].clone()}
    padded["comment_features"][0, 3] = 100.0  # a padding row (mask False)
    with torch.no_grad():
        torch.testing.assert_close(model(**data)["pred"], model(**padded)["pred"])


def test_bf16_autocast_forward_is_finite():
    model = tiny().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch())
    assert torch.isfinite(out["pred"]).all() and torch.isfinite(out["aux_loss"])


@pytest.mark.parametrize("bad, match", [
    (dict(visual_tokens=torch.randn(3, 5, 7)), "visual_tokens"),
    (dict(comment_features=torch.randn(3, 4, 5)), "comment_features"),
    (dict(comment_mask=torch.ones(3, 2, dtype=torch.bool)), "comment_mask"),
    (dict(dist=torch.ones(3, 7)), "dist"),
])
def test_bad_inputs_raise_clear_errors(bad, match):
    model = tiny().train()
    with pytest.raises(ValueError, match=match):
        model(**{**batch(), **bad})


def test_bad_config_raises():
    with pytest.raises(ValueError, match="config"):
        CDCMNet("huge")
    with pytest.raises(ValueError, match="unknown config key"):
        CDCMNet("smoke", n_slots=3)
    with pytest.raises(ValueError, match="variant"):
        CDCMNet("smoke", variant="paper")


# ------------------------------------------------------------------------------------------ frozen tokens
def test_clip_tokens_are_projected_and_token0_is_clips_embedding():
    from open_clip.transformer import VisionTransformer

    torch.manual_seed(0)
    visual = VisionTransformer(image_size=32, patch_size=8, width=32, layers=1, heads=2, mlp_ratio=2.0,
                               output_dim=16).eval()
    images = torch.randn(2, 3, 32, 32)
    tokens = ImageTokens(visual)(images)
    assert tokens.shape == (2, 1 + 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(tokens[:, 0], visual(images), rtol=1e-5, atol=1e-5)


def test_cnn_tokens_are_global_mean_then_cells():
    class MapNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 4, stride=4)

        def forward_features(self, x):
            return self.conv(x)

    net = MapNet()
    images = torch.randn(2, 3, 12, 12)
    tokens = ImageTokens(net)(images)
    cells = net.conv(images).flatten(2).transpose(1, 2)
    assert tokens.shape == (2, 10, 5)
    torch.testing.assert_close(tokens[:, 1:], cells.detach())
    torch.testing.assert_close(tokens[:, 0], cells.mean(1).detach())
    assert not any(p.requires_grad for p in ImageTokens(net).parameters())


def test_model_with_attached_token_encoder_takes_images():
    from open_clip.transformer import VisionTransformer

    visual = VisionTransformer(image_size=32, patch_size=8, width=32, layers=1, heads=2, mlp_ratio=2.0, output_dim=24)
    model = CDCMNet("smoke", token_encoder=ImageTokens(visual), **TINY).eval()
    assert model.input_keys[0] == "image"
    assert model(image=torch.randn(2, 3, 32, 32))["pred"].shape == (2, 10)
    assert "visual_tokens" in tiny().input_keys and "dist" in tiny().input_keys


def test_value_memory_starts_at_the_given_text_scale():
    from iaa_lib.cdcm.model import CDCMNet

    torch.manual_seed(0)
    model = CDCMNet("smoke", value_init_std=0.125)
    assert abs(float(model.memory.value.detach().std()) - 0.125) < 0.01  # 32 x 64 entries: std within ~2 %
    assert abs(float(model.memory.key.detach().std()) - 0.5) < 0.04
    assert model.model_config["value_init_std"] == 0.125


def test_recall_works_when_text_dim_equals_dim():
    from iaa_lib.cdcm.data import recall_similarity
    from iaa_lib.cdcm.model import CDCMNet

    model = CDCMNet("smoke", text_dim=64)
    assert model.text_projection is None
    sentences = [["a b", "c"], ["d"], ["e"]]
    table = {s: torch.randn(64) for row in sentences for s in row}
    cache = type("Cache", (), {"features": lambda self, texts: torch.stack([table[t] for t in texts])})()
    frame = __import__("pandas").DataFrame({"image_id": ["x", "y", "z"]})
    inputs = dict(frame=frame, tokens=torch.randn(3, 17, 1280), sentences=sentences, cache=cache)
    bank, similarity = recall_similarity(model, inputs, ["x", "y"], ["z"])
    assert bank == ["a b", "c", "d"] and similarity.shape == (1, 17, 3)
    readout = model.eval()(visual_tokens=inputs["tokens"][2:])["memory_readout"]
    expected = torch.nn.functional.cosine_similarity(readout[0, 0, None], torch.stack([table[b] for b in bank]))
    assert torch.allclose(similarity[0, 0], expected, atol=1e-5)


def test_min_sentences_filter_drops_short_comment_lists():
    from iaa_lib.cdcm.data import with_min_sentences

    comments = {"a": ["One. Two. Three."], "b": ["One."], "c": ["One. Two.", "Three. Four. Five."]}
    splits = {"train": ["a", "b", "c"], "test": ["c"]}
    assert with_min_sentences(splits, comments, 3) == {"train": ["a", "c"], "test": ["c"]}
    assert with_min_sentences(splits, comments, 0) == splits
    with pytest.raises(ValueError, match="empties"):
        with_min_sentences({"train": ["b"]}, comments, 5)


def test_clip_profile_uses_centre_crop_and_smoke_squashes():
    from iaa_lib.cdcm.model import ENCODERS

    assert ENCODERS["full"]["resize"] == "center_crop" and ENCODERS["smoke"]["resize"] == "squash"
    assert ENCODERS["full"]["min_sentences"] == 5 and ENCODERS["smoke"]["min_sentences"] == 0
