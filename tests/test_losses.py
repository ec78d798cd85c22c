"""Losses against hand-worked values, scipy and the metrics module."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from iaa_lib import losses, metrics

TOY_P = torch.tensor([[1.0, 0.0]])
TOY_Q = torch.tensor([[0.0, 1.0]])
# Two samples, K=2, CDF gaps (0.2, 0) and (0.6, 0).
PAIR_P = torch.tensor([[0.6, 0.4], [0.8, 0.2]])
PAIR_Q = torch.tensor([[0.4, 0.6], [0.2, 0.8]])


def dirichlet_pairs(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return (torch.tensor(rng.dirichlet(np.ones(10), size=n), dtype=torch.float32),
            torch.tensor(rng.dirichlet(np.ones(10), size=n), dtype=torch.float32))


def test_toy_values_k2():
    assert losses.emd_loss(TOY_P, TOY_Q, r=1).item() == pytest.approx(0.5)
    assert losses.emd_loss(TOY_P, TOY_Q, r=2).item() == pytest.approx(math.sqrt(0.5))
    # |p-q| = (1, 1): partial sums (1, 2) -> sqrt((1 + 4) / 2)
    assert losses.milnet_distance(TOY_P, TOY_Q).item() == pytest.approx(math.sqrt(2.5))
    assert losses.milnet_distance(TOY_P, TOY_Q).item() == pytest.approx(1.5811, abs=1e-4)


def test_emd1_matches_scipy_wasserstein_and_metrics():
    p, q = dirichlet_pairs()
    bins = np.arange(1, 11)
    expected = np.mean([scipy.stats.wasserstein_distance(bins, bins, p[i].numpy(), q[i].numpy()) / 10 for i in range(len(p))])
    assert losses.emd_loss(p, q, r=1).item() == pytest.approx(expected, rel=1e-5)
    assert losses.emd_loss(p, q, r=2).item() == pytest.approx(metrics.emd(p, q, r=2), rel=1e-5)


def test_sample_vs_batch_pooled_hand_example():
    sample_r2 = losses.emd_loss(PAIR_P, PAIR_Q, r=2, reduction="sample").item()
    pooled_r2 = losses.emd_loss(PAIR_P, PAIR_Q, r=2, reduction="batch_pooled").item()
    assert sample_r2 == pytest.approx((math.sqrt(0.02) + math.sqrt(0.18)) / 2, rel=1e-6)  # 0.28284
    assert pooled_r2 == pytest.approx(math.sqrt((0.04 + 0.36) / 4), rel=1e-6)  # 0.31623
    assert pooled_r2 > sample_r2
    assert losses.emd_loss(PAIR_P, PAIR_Q, r=1, reduction="sample").item() == pytest.approx(0.2, rel=1e-6)
    assert losses.emd_loss(PAIR_P, PAIR_Q, r=1, reduction="batch_pooled").item() == pytest.approx(0.2, rel=1e-6)
    torch.testing.assert_close(losses.emd_loss(PAIR_P, PAIR_Q, r=2, reduction="none"),
                               torch.tensor([math.sqrt(0.02), math.sqrt(0.18)]))


def test_sample_equals_pooled_for_r1_and_jensen_for_r2_on_random_data():
    p, q = dirichlet_pairs(seed=1)
    assert losses.emd_loss(p, q, r=1, reduction="batch_pooled").item() == pytest.approx(
        losses.emd_loss(p, q, r=1, reduction="sample").item(), rel=1e-5)
    assert losses.emd_loss(p, q, r=2, reduction="batch_pooled") > losses.emd_loss(p, q, r=2, reduction="sample")


def test_milnet_distance_upper_bounds_true_emd():
    p, q = dirichlet_pairs(n=200, seed=2)
    milnet_d = losses.milnet_distance(p, q)
    true_emd = losses.emd_loss(p, q, r=2, reduction="none")
    assert milnet_d.shape == (200,)
    assert torch.all(milnet_d >= true_emd - 1e-6)
    assert milnet_d.mean() > 2 * true_emd.mean()


@pytest.mark.parametrize("loss_fn", [
    lambda p, q: losses.emd_loss(p, q, r=1),
    lambda p, q: losses.emd_loss(p, q, r=2),
    lambda p, q: losses.emd_loss(p, q, r=2, reduction="batch_pooled"),
    lambda p, q: losses.emd_loss(p, q, r=3, reduction="none").sum(),
    lambda p, q: losses.milnet_distance(p, q).sum(),
    lambda p, q: losses.AdaEMDLoss()(p, q),
    lambda p, q: losses.AdaEMDLoss(inner="milnet_abs_inside")(p, q),
])
def test_gradients_finite_when_pred_equals_target(loss_fn):
    target, _ = dirichlet_pairs(n=4)
    logits = target.log().clone().requires_grad_(True)
    loss = loss_fn(torch.softmax(logits, dim=-1), target)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(logits.grad).all()


def test_emd_loss_gradient_matches_finite_differences():
    p, q = dirichlet_pairs(n=3, seed=4)
    logits = p.double().log().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: losses.emd_loss(torch.softmax(x, -1), q.double(), r=2), (logits,))


def test_bf16_autocast_gives_float32_loss_close_to_fp32():
    p, q = dirichlet_pairs(seed=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = losses.emd_loss(p.bfloat16(), q, r=2)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(losses.emd_loss(p, q, r=2).item(), rel=2e-2)


def test_emd_loss_module_matches_function():
    p, q = dirichlet_pairs(seed=6)
    module = losses.EMDLoss(r=2, reduction="batch_pooled")
    assert module(p, q).item() == pytest.approx(losses.emd_loss(p, q, r=2, reduction="batch_pooled").item())


def adaemd_three_samples() -> tuple[torch.Tensor, torch.Tensor]:
    """K=2 pairs with first-bin gaps 0.2, 0.6, 1.0: true EMD2 d = gap / sqrt(2) = 0.14142, 0.42426, 0.70711."""
    pred = torch.tensor([[0.6, 0.4], [0.8, 0.2], [1.0, 0.0]])
    target = torch.tensor([[0.4, 0.6], [0.2, 0.8], [0.0, 1.0]])
    return pred, target


def test_adaemd_one_step_hand_computed():
    loss_fn = losses.AdaEMDLoss(inner="true_emd", tau0=0.4, alpha=0.99)
    loss_fn.C.fill_(0.3)
    d = [0.2 / math.sqrt(2), 0.6 / math.sqrt(2), 1.0 / math.sqrt(2)]
    # sample 1 is easy (d < 0.4); samples 2 and 3 are hard: (C + d) * d
    expected = (d[0] + (0.3 + d[1]) * d[1] + (0.3 + d[2]) * d[2]) / 3  # 0.386944
    value = loss_fn(*adaemd_three_samples())
    assert value.item() == pytest.approx(expected, rel=1e-6)
    assert value.item() == pytest.approx(0.386944, abs=1e-6)
    assert loss_fn.C.item() == pytest.approx(0.99 * expected + 0.01 * 0.3, rel=1e-6)
    assert loss_fn.hard_fraction.item() == pytest.approx(2 / 3)
    assert loss_fn.tau.item() == pytest.approx(0.4)  # tau only moves at the end of the epoch


def test_adaemd_gradient_of_hard_sample_is_c_plus_2d():
    loss_fn = losses.AdaEMDLoss(tau0=0.0)
    loss_fn.C.fill_(0.3)
    pred = torch.tensor([[0.8, 0.2]], requires_grad=True)
    target = torch.tensor([[0.2, 0.8]])
    loss_fn(pred, target).backward()
    plain_pred = pred.detach().clone().requires_grad_(True)
    losses.emd_loss(plain_pred, target, r=2).backward()
    d = 0.6 / math.sqrt(2)
    torch.testing.assert_close(pred.grad, (0.3 + 2 * d) * plain_pred.grad)


def test_adaemd_tau_update_on_epoch_end():
    loss_fn = losses.AdaEMDLoss(tau0=0.2)
    pred, target = adaemd_three_samples()
    batch_losses = [loss_fn(pred[:2], target[:2]).item(), loss_fn(pred[1:], target[1:]).item()]
    assert loss_fn.tau.item() == pytest.approx(0.2)
    loss_fn.on_epoch_end()
    assert loss_fn.tau.item() == pytest.approx(np.mean(batch_losses), rel=1e-6)
    assert loss_fn.epoch_batches.item() == 0 and loss_fn.epoch_loss_sum.item() == 0.0
    loss_fn.on_epoch_end()  # an epoch without training batches leaves tau alone
    assert loss_fn.tau.item() == pytest.approx(np.mean(batch_losses), rel=1e-6)


def test_adaemd_state_frozen_in_eval_mode_and_saved_in_state_dict():
    loss_fn = losses.AdaEMDLoss()
    loss_fn(*adaemd_three_samples())
    before = {name: tensor.clone() for name, tensor in loss_fn.state_dict().items()}
    assert set(before) == {"C", "tau", "hard_fraction", "epoch_loss_sum", "epoch_batches"}
    loss_fn.eval()
    loss_fn(*adaemd_three_samples())
    for name, tensor in loss_fn.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    restored = losses.AdaEMDLoss()
    restored.load_state_dict(before)
    assert restored.C.item() == pytest.approx(before["C"].item())


def test_adaemd_inner_switch_toy():
    # tau0=0.2 < d and C=0 at step 1, so each sample contributes d^2
    assert losses.AdaEMDLoss(inner="true_emd")(TOY_P, TOY_Q).item() == pytest.approx(0.5, rel=1e-6)
    assert losses.AdaEMDLoss(inner="milnet_abs_inside")(TOY_P, TOY_Q).item() == pytest.approx(2.5, rel=1e-6)


def test_adaemd_is_vectorised_over_the_batch():
    p, q = dirichlet_pairs(n=32, seed=7)
    loss_fn = losses.AdaEMDLoss(tau0=0.1)
    d = losses.emd_loss(p, q, r=2, reduction="none")
    expected = torch.where(d >= 0.1, d * d, d).mean()
    assert loss_fn(p, q).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: losses.emd_loss(torch.ones(2, 10), torch.ones(2, 9)), r"pred shape \(2, 10\) != target shape \(2, 9\)"),
    (lambda: losses.milnet_distance(torch.ones(2, 10), torch.ones(10)), "target shape"),
    (lambda: losses.AdaEMDLoss()(torch.ones(4, 10), torch.ones(4)), "target shape"),
    (lambda: losses.emd_loss(torch.ones(2, 10), torch.ones(2, 10), reduction="mean"), "reduction must be one of"),
    (lambda: losses.emd_loss(torch.ones(2, 10), torch.ones(2, 10), r=0.5), "r must be >= 1"),
    (lambda: losses.AdaEMDLoss(inner="emd"), "inner must be one of"),
    (lambda: losses.EMDLoss(reduction="sum"), "reduction must be one of"),
])
def test_bad_input_raises_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_spec_reference_values_on_random_dirichlet_pairs():
    # milnet.md §4: Dirichlet(2), K=10 -> d ~ 0.445 vs EMD2 ~ 0.115; eat.md §3: Dirichlet(1) -> 0.159 sample vs 0.173 pooled
    rng = np.random.default_rng(0)
    p2, q2 = (torch.tensor(rng.dirichlet(2 * np.ones(10), size=20000)) for _ in range(2))
    assert losses.milnet_distance(p2, q2).mean().item() == pytest.approx(0.445, abs=0.005)
    assert losses.emd_loss(p2, q2, r=2).item() == pytest.approx(0.115, abs=0.003)
    p1, q1 = (torch.tensor(rng.dirichlet(np.ones(10), size=20000)) for _ in range(2))
    assert losses.emd_loss(p1, q1, r=2).item() == pytest.approx(0.159, abs=0.003)
    assert losses.emd_loss(p1, q1, r=2, reduction="batch_pooled").item() == pytest.approx(0.173, abs=0.003)


def _real_losses():
    """(name, loss(pred, target)) of every distribution loss the book trains with."""
    from iaa_lib.cdcm.model import cdcm_main_loss
    from iaa_lib.eat.model import eat_loss
    from iaa_lib.milnet.model import TracedAdaEMDLoss

    found = [(f"emd r={r} {reduction}", losses.EMDLoss(r=r, reduction=reduction))
             for r in (1, 2, 3) for reduction in ("sample", "batch_pooled", "none")]
    found += [("milnet_distance", losses.milnet_distance)]
    found += [(f"AdaEMD {inner}", losses.AdaEMDLoss(inner=inner)) for inner in losses.ADAEMD_INNER]
    found += [("TracedAdaEMD", TracedAdaEMDLoss()), ("CDCM textbook", cdcm_main_loss("textbook")),
              ("CDCM as published", cdcm_main_loss("as_published"))]
    found += [(f"EAT {variant}", eat_loss(variant)) for variant in ("eat_textbook", "eat_as_published")]
    return found


@pytest.mark.parametrize("where", ["label", "prediction"])
def test_nan_propagates_through_every_real_loss(where):
    """A NaN in one label (or prediction) must give a NaN loss, never a finite one such as 0 (issue 15, item 1)."""
    p, q = dirichlet_pairs(n=4)
    if where == "label":
        q[2, 3] = float("nan")
    else:
        p[2, 3] = float("nan")
    for name, loss_fn in _real_losses():
        value = loss_fn(p, q)
        assert torch.isnan(value).any(), f"{name} hid the NaN {where}: {value}"
        if value.ndim:  # per-sample losses: only the poisoned sample is NaN
            assert torch.isnan(value).tolist() == [False, False, True, False], name


def test_ssmr_loss_propagates_nan():
    from iaa_lib.ssmr.model import SSMRLoss

    value = SSMRLoss(1.0, 10.0)(torch.tensor([5.0, 6.0]), torch.tensor([float("nan"), 4.0]))
    assert torch.isnan(value)
