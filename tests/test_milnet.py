"""Tests of the MILNet model and of AdaEMD as MILNet trains with it (the loss itself: tests/test_losses.py)."""
from __future__ import annotations

import pytest
import torch

from iaa_lib.losses import AdaEMDLoss, emd_loss, milnet_distance
from iaa_lib.milnet.model import (
    OFFICIAL_PARAMETERS,
    UNUSED_GCN_FC_PARAMETERS,
    MILNet,
    TracedAdaEMDLoss,
    adaemd_gradient_ratio,
    milnet,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_config_matches_official_parameter_count():
    with torch.device("meta"):
        model = milnet("full")
    assert _count(model) == 9_501_194
    assert _count(model) + UNUSED_GCN_FC_PARAMETERS == OFFICIAL_PARAMETERS == 9_526_804
    assert abs(_count(model) - OFFICIAL_PARAMETERS) / OFFICIAL_PARAMETERS < 0.01
    assert model.num_nodes == 5 and len(model.head.gcn) == 6 and model.in_dim == 6144


def test_smoke_shapes_distribution_and_affinities():
    torch.manual_seed(0)
    model = milnet("smoke", in_dim=32)
    assert model.input_keys == ("nodes",)
    assert _count(milnet("smoke")) < 300_000
    out = model(torch.randn(3, 5, 32))
    assert out["pred"].shape == (3, 10) and out["affinities"].shape == (3, 2, 5, 5)
    assert torch.allclose(out["pred"].sum(-1), torch.ones(3)) and (out["pred"] > 0).all()


def test_query_only_ablation_and_bad_inputs():
    model = milnet("smoke", in_dim=16, num_references=0)
    assert model(torch.randn(2, 1, 16))["affinities"].shape == (2, 2, 1, 1)
    with pytest.raises(ValueError, match=r"\(B, 1, 16\)"):
        model(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="unknown MILNet config"):
        MILNet("huge")
    with pytest.raises(ValueError, match="num_references"):
        MILNet("smoke", num_references=-1)


def test_references_change_the_prediction_after_training_steps():
    torch.manual_seed(0)
    model = milnet("smoke", in_dim=16, hidden=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    nodes, target = torch.randn(8, 5, 16), torch.softmax(torch.randn(8, 10), -1)
    for _ in range(3):
        optimizer.zero_grad()
        emd_loss(model(nodes)["pred"], target).backward()
        optimizer.step()
    model.eval()
    swapped = nodes.clone()
    swapped[:, 1:] = torch.randn(8, 4, 16)
    assert not torch.allclose(model(nodes)["pred"], model(swapped)["pred"])


def test_adaemd_trains_milnet_and_tracks_c_and_tau():
    torch.manual_seed(0)
    model = milnet("smoke", in_dim=16, hidden=16)
    loss_fn = AdaEMDLoss()  # correct inner distance by default
    assert loss_fn.inner == "true_emd"
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    nodes, target = torch.randn(16, 5, 16), torch.softmax(2 * torch.randn(16, 10), -1)
    batch_losses, previous_c = [], 0.0
    for _ in range(20):
        optimizer.zero_grad()
        loss = loss_fn(model(nodes)["pred"], target)
        loss.backward()
        optimizer.step()
        batch_losses.append(loss.item())
        # C <- 0.99 * L + 0.01 * C_previous: nearly the batch loss just seen
        assert loss_fn.C.item() == pytest.approx(0.99 * batch_losses[-1] + 0.01 * previous_c, rel=1e-5)
        previous_c = loss_fn.C.item()
    assert batch_losses[-1] < batch_losses[0]
    loss_fn.on_epoch_end()
    assert loss_fn.tau.item() == pytest.approx(sum(batch_losses) / len(batch_losses), rel=1e-5)


def test_adaemd_gradient_is_c_plus_2d_times_plain_gradient_for_hard_samples():
    torch.manual_seed(0)
    for inner in ("true_emd", "milnet_abs_inside"):
        logits = torch.randn(6, 10, requires_grad=True)
        target = torch.softmax(torch.randn(6, 10), -1)
        pred = torch.softmax(logits, -1)
        d = AdaEMDLoss(inner=inner).distance(pred, target).detach()
        tau = d.median().item()  # half the samples are "hard"
        loss_fn = AdaEMDLoss(inner=inner, tau0=tau)
        loss_fn.C.fill_(0.3)
        ratio = adaemd_gradient_ratio(loss_fn, pred, target)  # before the forward updates C
        assert torch.equal(ratio, torch.where(d >= tau, 0.3 + 2 * d, torch.ones_like(d)))
        assert (ratio != 1).any() and (ratio == 1).any()
        (ada_grad,) = torch.autograd.grad(loss_fn(pred, target), logits, retain_graph=True)
        (plain_grad,) = torch.autograd.grad(loss_fn.distance(pred, target).mean(), logits)
        assert torch.allclose(ada_grad, ratio[:, None] * plain_grad, atol=1e-6)
        if inner == "true_emd":  # EMD2 values are small: C + 2d < 1, so "hard" samples are down-weighted
            assert (d < 0.35).all() and (ratio[d >= tau] < 1).all()


def test_as_published_distance_exceeds_true_emd_on_milnet_outputs():
    torch.manual_seed(0)
    model = milnet("smoke", in_dim=16, hidden=16).eval()
    pred = model(torch.randn(32, 5, 16))["pred"]
    target = torch.distributions.Dirichlet(torch.full((10,), 2.0)).sample((32,))
    published, true = milnet_distance(pred, target), emd_loss(pred, target, reduction="none")
    assert (published >= true - 1e-6).all() and published.mean() > 1.5 * true.mean()


def test_milnet_runs_under_bf16_autocast_with_gradients():
    model = milnet("smoke", in_dim=16, hidden=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(4, 5, 16))
        loss = AdaEMDLoss()(out["pred"], torch.full((4, 10), 0.1))
    loss.backward()
    assert torch.isfinite(loss) and model.head.embed[0].weight.grad.abs().sum() > 0


def test_traced_adaemd_records_each_step_and_survives_state_dict():
    loss_fn = TracedAdaEMDLoss(tau0=0.05)
    target = torch.softmax(torch.randn(4, 10), -1)
    losses = [loss_fn(torch.softmax(torch.randn(4, 10), -1), target) for _ in range(3)]
    loss_fn.eval()
    loss_fn(torch.softmax(torch.randn(4, 10), -1), target)  # validation: not traced, state unchanged
    trace = loss_fn.trace_frame()
    assert list(trace.columns) == ["step", "C", "tau", "hard_fraction", "batch_loss"] and len(trace) == 3
    assert trace.C[0] == 0 and trace.C[1] == pytest.approx(0.99 * losses[0].item())  # C used = previous C
    assert trace.batch_loss.tolist() == pytest.approx([loss.item() for loss in losses])
    restored = TracedAdaEMDLoss()
    restored.load_state_dict(loss_fn.state_dict())
    assert restored.trace_frame().equals(trace) and restored.C == loss_fn.C
