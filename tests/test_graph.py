"""Tests of the shared graph parts (iaa_lib.blocks.graph): parameter counts, identity init, affinity, prior."""
from __future__ import annotations

import pytest
import torch

from iaa_lib.blocks.graph import GraphHead, RsGCN, similarity_prior


pytestmark = pytest.mark.usefixtures("one_thread")


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_head_parameter_counts():
    with torch.device("meta"):
        milnet = GraphHead(6144, 512, 5, 6, 10)
        ssmr = GraphHead(1024, 1024, 5, 6, 1, pre_fc_relu=True, out_activation="none")
    unused_gcn_fc_milnet, unused_gcn_fc_ssmr = 2560 * 10 + 10, 5120 + 1
    assert _count(milnet) == 9_501_194
    assert _count(milnet) + unused_gcn_fc_milnet == 9_526_804
    assert _count(ssmr) + unused_gcn_fc_ssmr == 26_301_442


def test_rsgcn_is_identity_at_init_and_affinity_matches_formula():
    torch.manual_seed(0)
    layer = RsGCN(6, 4).eval()
    v = torch.randn(2, 6, 5)
    out, affinity = layer(v)
    assert torch.equal(out, v)  # zero-initialised residual BN
    expected = torch.einsum("bci,bcj->bij", layer.theta(v), layer.phi(v)) / 5
    assert torch.allclose(affinity, expected)
    assert (affinity >= 0).all()  # θ and φ end in ReLU
    # aggregation y[:, :, i] = Σ_j R[i, j] g[:, :, j] once the residual branch is switched on
    torch.nn.init.ones_(layer.out_bn.weight)
    out, _ = layer(v)
    y = torch.einsum("bij,bcj->bci", affinity, layer.g(v))
    assert torch.allclose(out, v + layer.out_bn(layer.out_conv(y)), atol=1e-6)


def test_graph_head_shapes_distribution_and_gradients():
    torch.manual_seed(0)
    head = GraphHead(12, 8, 3, 2, 10)
    out = head(torch.randn(4, 3, 12))
    assert out["pred"].shape == (4, 10) and out["affinities"].shape == (4, 2, 3, 3)
    assert torch.allclose(out["pred"].sum(-1), torch.ones(4))
    # at init the residual BN has γ = β = 0, so only it (not g / out_conv) receives gradient ...
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    (out["pred"][:, 0].sum() + out["affinities"].sum()).backward()
    assert head.gcn[0].out_bn.weight.grad.abs().sum() > 0
    assert head.gcn[0].g[0].weight.grad.abs().sum() == 0
    # ... and after one step every parameter is on the gradient path
    optimizer.step()
    optimizer.zero_grad()
    out = head(torch.randn(4, 3, 12))
    (out["pred"][:, 0].sum() + out["affinities"].sum()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_readout_is_channel_major_flatten():
    head = GraphHead(4, 2, 3, 0, 6, out_activation="none").eval()
    nodes = torch.randn(1, 3, 4)
    v = head.embed(nodes.transpose(1, 2))
    expected = head.fc(torch.stack([v[0, c, n] for c in range(2) for n in range(3)])[None])
    assert torch.allclose(head(nodes)["pred"], expected)


def test_prior_affinity_modes():
    torch.manual_seed(0)
    nodes = torch.randn(2, 5, 8)
    prior = similarity_prior(nodes)
    assert prior.shape == (2, 5, 5) and torch.allclose(prior.diagonal(dim1=1, dim2=2), torch.ones(2, 5))
    plain = GraphHead(8, 4, 5, 2, 10).eval()
    with pytest.raises(ValueError, match="prior_mode='none'"):
        plain(nodes, prior_affinity=prior)
    additive = GraphHead(8, 4, 5, 2, 10, prior_mode="add", prior_init=0.5).eval()
    additive.load_state_dict(plain.state_dict(), strict=False)
    learned = plain(nodes)["affinities"][:, 0]
    assert torch.allclose(additive(nodes, prior_affinity=prior)["affinities"][:, 0], learned + 0.5 * prior, atol=1e-6)
    gated = GraphHead(8, 4, 5, 2, 10, prior_mode="mul").eval()
    gated.load_state_dict(plain.state_dict())
    assert torch.allclose(gated(nodes, prior_affinity=prior)["affinities"][:, 0], learned * prior, atol=1e-6)
    additive.train()
    additive(nodes, prior_affinity=prior)["pred"][:, 3].sum().backward()
    assert additive.prior_weight.grad is not None
    with pytest.raises(ValueError, match="prior_affinity must have shape"):
        additive(nodes, prior_affinity=prior[:, :4, :4])


def test_bad_node_shapes_raise():
    head = GraphHead(8, 4, 5, 1, 10)
    with pytest.raises(ValueError, match=r"\(B, 5, 8\)"):
        head(torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="positive"):
        GraphHead(0, 4, 5, 1, 10)


def test_graph_head_runs_under_bf16_autocast():
    head = GraphHead(8, 4, 5, 2, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(torch.randn(3, 5, 8))
    assert torch.isfinite(out["pred"].float()).all()
