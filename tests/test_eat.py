"""EAT: parameter counts, named variants, heads, the as-published loss, batch dependence, determinism."""
from __future__ import annotations

import math

import pytest
import torch

from iaa_lib.losses import emd_loss
from iaa_lib.eat.dat import DAT
from iaa_lib.book.bench import count_parameters as parameter_counts
from iaa_lib.eat.model import EAT, EAT_VARIANTS, eat_loss


def count_parameters(model) -> int:
    return parameter_counts(model)[0]


def test_full_parameter_counts_match_the_official_model():
    with torch.device("meta"):
        ava = EAT("full", variant="eat_as_published")
        tad = EAT("full", variant="eat_as_published", head="scalar")
        textbook = EAT("full", variant="eat_textbook")
        plain = DAT("base", head="raw10")
    assert count_parameters(ava) == 86_878_166
    assert count_parameters(tad) == 86_868_941
    assert count_parameters(textbook) == 86_878_166  # softmax adds no parameters
    assert count_parameters(ava) - count_parameters(plain) == 9 * (2 * 512 + 2) + (2 * 1024 + 2) == 11_284


def test_full_per_part_counts():
    with torch.device("meta"):
        model = EAT("full", variant="eat_as_published")
    parts = [count_parameters(m) for m in (model.patch_proj, *model.stages, model.down_projs)]
    head = count_parameters(model.cls_norm) + count_parameters(model.cls_head)
    assert parts + [head] == [6_528, 397_896, 1_582_224, 56_916_018, 25_207_106, 2_756_096, 12_298]
    assert [n for n, _ in model.deformable_blocks()] == [f"stages.2.attns.{j}" for j in range(1, 18, 2)] + ["stages.3.attns.1"]


@pytest.mark.parametrize("variant", sorted(EAT_VARIANTS))
def test_variant_switches(variant):
    model = EAT("smoke", variant=variant)
    spec = EAT_VARIANTS[variant]
    assert model.head == spec["head"]
    for _, block in model.deformable_blocks():
        assert (block.reference, block.offset_mask, block.mask_ratio, block.mask_direction) == (
            spec["reference"], "sign_agree", 0.25, "outward")
    assert eat_loss(variant).reduction == spec["loss_reduction"] and eat_loss(variant).r == 2
    assert EAT("smoke").variant == "eat_textbook"  # the default is the correct version


def test_heads_output_shapes_and_validity():
    torch.manual_seed(0)
    x = torch.randn(3, 3, 64, 64)
    textbook = EAT("smoke", variant="eat_textbook").eval()(x)["pred"]
    assert textbook.shape == (3, 10) and (textbook >= 0).all()
    assert torch.allclose(textbook.sum(-1), torch.ones(3), atol=1e-5)
    raw = EAT("smoke", variant="eat_as_published").eval()(x)["pred"]
    assert raw.shape == (3, 10) and not torch.allclose(raw.sum(-1), torch.ones(3), atol=1e-3)
    assert EAT("smoke", head="scalar").eval()(x)["pred"].shape == (3,)


def test_learned_references_are_inside_the_map_and_differ_from_the_grid():
    torch.manual_seed(0)
    out = EAT("smoke").eval()(torch.randn(2, 3, 64, 64))
    grid_out = DAT("smoke").eval()(torch.randn(2, 3, 64, 64))
    for ref, grid in zip(out["references"], grid_out["references"]):
        assert ref.abs().max() < 1
        assert not torch.allclose(ref, grid, atol=1e-2)


def test_batch_pooled_loss_hand_values():
    pred = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # CDF gaps: sample 1 (1, 0), sample 2 (0, 0)
    assert eat_loss("eat_as_published")(pred, target).item() == pytest.approx(math.sqrt(1 / 4))
    assert eat_loss("eat_textbook")(pred, target).item() == pytest.approx((math.sqrt(1 / 2) + 0) / 2)
    raw = torch.tensor([[0.5, 0.9, -0.2]])  # EAT feeds raw outputs: gaps (0.5, 1.4, 0.2) - (0.2, 0.5, 1.0) cumsums
    target = torch.tensor([[0.2, 0.3, 0.5]])
    gaps = torch.tensor([0.3, 0.9, 0.2])
    assert emd_loss(raw, target, r=2, reduction="batch_pooled").item() == pytest.approx(math.sqrt((gaps**2).mean().item()))


def _score_of_first(model, companions: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    return model(torch.cat([first, companions]))["pred"][0]


def test_batch_dependence_appears_with_batch_mean_and_disappears_per_sample():
    torch.manual_seed(0)
    image = torch.randn(1, 3, 64, 64)
    calm, busy = torch.zeros(3, 3, 64, 64), 3 * torch.randn(3, 3, 64, 64)
    for variant, depends in (("eat_as_published", True), ("eat_textbook", False)):
        torch.manual_seed(1)
        model = EAT("smoke", variant=variant).eval()
        with torch.no_grad():
            a, b = _score_of_first(model, calm, image), _score_of_first(model, busy, image)
            alone = model(image)["pred"][0]
        if depends:
            assert (a - b).abs().max() > 1e-4
        else:
            assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, alone, atol=1e-5)


def test_evaluation_is_deterministic():
    torch.manual_seed(0)
    model = EAT("smoke", variant="eat_as_published").eval()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        first, second = model(x)["pred"], model(x)["pred"]
        permuted = model(x.flip(0))["pred"].flip(0)
    assert torch.equal(first, second)
    assert torch.allclose(first, permuted, atol=1e-5)  # the batch mean is order-free within one batch


def test_gradients_reach_offset_network_and_references():
    torch.manual_seed(0)
    model = EAT("smoke", variant="eat_as_published")
    x = torch.randn(4, 3, 64, 64)
    target = torch.softmax(torch.randn(4, 10), -1)
    eat_loss("eat_as_published")(model(x)["pred"], target).backward()
    for _, block in model.deformable_blocks():
        assert block.conv_offset[0].weight.grad.abs().sum() > 0
        assert block.conv_offset[3].weight.grad.abs().sum() > 0
        assert block.ref_point14.weight.grad.abs().sum() > 0


def test_bad_config_errors():
    with pytest.raises(ValueError, match="variant"):
        EAT("smoke", variant="eat_v2")
    with pytest.raises(ValueError, match="config"):
        EAT("base")
    with pytest.raises(ValueError, match="head"):
        EAT("smoke", head="logits")
