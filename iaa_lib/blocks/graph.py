"""Shared graph-reasoning parts of MILNet and SSMR: the residual non-local GCN layer and the graph head.

Both papers score a *query* image jointly with a few retrieved *reference* images. Each image is one
node of a small fully connected graph; the node order is fixed, [query, ref_1, ..., ref_k] by retrieval
rank, and the readout depends on it (it is a flatten, not a pooling).

API
---
``RsGCN(channels, inter_channels, bn_relu_embed=True, zero_init_residual_bn=True)``
    One VSRN-style non-local GCN layer on ``v`` of shape (B, C, N):

    * ``g, θ, φ = ReLU(BN(Conv1d_1x1(v)))`` (plain 1x1 convs when ``bn_relu_embed=False``, as in VSRN);
    * learned affinity ``R = θ(v)ᵀ φ(v) / N`` of shape (B, N, N): dense, per-sample, non-negative when
      the embeds end in ReLU, self-edges included, no softmax and no symmetrisation;
    * optional *prior* affinity ``P`` (B, N, N) combined with ``R`` (see below);
    * aggregation ``y = R · g(v)`` and residual update ``v + BN(Conv1d_1x1(y))``; that BN starts with
      γ = β = 0 (``zero_init_residual_bn``), so every layer is the identity at initialisation.

    ``forward(v, prior_affinity=None) -> (v_out, affinity)`` with ``affinity`` the (B, N, N) matrix
    actually used to aggregate (learned, or learned combined with the prior).

``GraphHead(in_dim, hidden, nodes, layers, out, pre_fc_relu=False, out_activation="softmax",
prior_mode="none", prior_init=1.0)``
    embed (Conv1d_1x1 in_dim→hidden + BN + ReLU, BN statistics pooled over batch *and* nodes) →
    ``layers`` × ``RsGCN(hidden, hidden)`` → channel-major flatten (index c·N + n, length hidden·N) →
    optional ReLU → Linear(hidden·N → out) → ``out_activation`` ("softmax" over the last axis or
    "none").

    ``forward(nodes, prior_affinity=None) -> {"pred": (B, out), "affinities": (B, layers, N, N)}``
    where ``nodes`` is (B, N, in_dim), node 0 = the query. ``affinities`` holds every layer's
    aggregation matrix for visualisation (it is part of the graph, not detached).

    Paper configurations: MILNet ``GraphHead(6144, 512, 5, 6, 10)`` has 9,501,194 parameters (the
    official 9,526,804 adds an unused second Linear(2560→10), ``gcn_fc``, which is not built here);
    SSMR ``GraphHead(1024, 1024, 5, 6, 1, pre_fc_relu=True, out_activation="none")`` has 26,296,321
    (26,301,442 with the unused 5,121-parameter ``gcn_fc``).

Edges initialised from similarity (for SSMR's "initialise and adjust the weight of edges")
-----------------------------------------------------------------------------------------------
Pass ``prior_affinity`` (B, N, N), e.g. ``similarity_prior(nodes)`` or a kernel of the retrieval
distances, and choose how every layer combines it with its learned ``R``:

* ``prior_mode="none"`` (default, the papers' code): a given prior raises a ValueError.
* ``prior_mode="add"``: ``A_l = R_l + α_l · P`` with one learnable scalar α_l per layer (initialised to
  ``prior_init``); the network starts from the similarity graph and learns how much to trust it while
  ``R_l`` adds learned edges. Adds ``layers`` parameters.
* ``prior_mode="mul"``: ``A_l = R_l ⊙ P``; the prior gates the learned edges (a zero prior removes an
  edge), no extra parameters.

``similarity_prior(nodes, metric="cosine"|"l2", temperature=1.0) -> (B, N, N)`` builds a non-negative
prior from the node features themselves: clamped cosine similarity, or exp(-‖x_i − x_j‖² / (D·t)).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

PriorMode = Literal["none", "add", "mul"]


def _conv_bn_relu(in_channels: int, out_channels: int, bn_relu: bool) -> nn.Sequential:
    """1x1 Conv1d on (B, C, N), followed by BN + ReLU when `bn_relu`."""
    layers: list[nn.Module] = [nn.Conv1d(in_channels, out_channels, kernel_size=1)]
    if bn_relu:
        layers += [nn.BatchNorm1d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _check_prior(prior_affinity: Tensor, batch: int, nodes: int) -> None:
    """Raise a ValueError unless `prior_affinity` is (batch, nodes, nodes)."""
    if prior_affinity.shape != (batch, nodes, nodes):
        raise ValueError(
            f"prior_affinity must have shape (B, N, N) = ({batch}, {nodes}, {nodes}), "
            f"got {tuple(prior_affinity.shape)}"
        )


class RsGCN(nn.Module):
    """Residual non-local GCN layer with a learned per-sample affinity (VSRN Rs_GCN, MILNet variant)."""

    def __init__(
        self,
        channels: int,
        inter_channels: int,
        bn_relu_embed: bool = True,
        zero_init_residual_bn: bool = True,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.inter_channels = inter_channels
        self.g = _conv_bn_relu(channels, inter_channels, bn_relu_embed)
        self.theta = _conv_bn_relu(channels, inter_channels, bn_relu_embed)
        self.phi = _conv_bn_relu(channels, inter_channels, bn_relu_embed)
        self.out_conv = nn.Conv1d(inter_channels, channels, kernel_size=1)
        self.out_bn = nn.BatchNorm1d(channels)
        if zero_init_residual_bn:
            nn.init.zeros_(self.out_bn.weight)
            nn.init.zeros_(self.out_bn.bias)

    def learned_affinity(self, v: Tensor) -> Tensor:
        """R = θ(v)ᵀ φ(v) / N for v (B, C, N); returns (B, N, N)."""
        theta = self.theta(v)  # (B, C_i, N)
        phi = self.phi(v)
        return torch.bmm(theta.transpose(1, 2), phi) / v.shape[-1]

    def forward(
        self,
        v: Tensor,
        prior_affinity: Tensor | None = None,
        prior_mode: PriorMode = "none",
        prior_weight: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Update node features v (B, C, N); returns (v_out (B, C, N), affinity used (B, N, N))."""
        if v.ndim != 3 or v.shape[1] != self.channels:
            raise ValueError(f"RsGCN expects v of shape (B, {self.channels}, N), got {tuple(v.shape)}")
        affinity = self.learned_affinity(v)
        if prior_affinity is not None:
            _check_prior(prior_affinity, v.shape[0], v.shape[-1])
            prior_affinity = prior_affinity.to(affinity.dtype)
            if prior_mode == "add":
                if prior_weight is None:
                    raise ValueError("prior_mode='add' needs prior_weight (a scalar tensor)")
                affinity = affinity + prior_weight.to(affinity.dtype) * prior_affinity
            elif prior_mode == "mul":
                affinity = affinity * prior_affinity
            else:
                raise ValueError(f"a prior_affinity was given but prior_mode={prior_mode!r}; use 'add' or 'mul'")
        g = self.g(v)  # (B, C_i, N)
        # y[b, c, i] = Σ_j A[b, i, j] g[b, c, j]: node i aggregates its neighbours j.
        aggregated = torch.bmm(g, affinity.transpose(1, 2).to(g.dtype))
        return v + self.out_bn(self.out_conv(aggregated)), affinity


class GraphHead(nn.Module):
    """Embed → stacked RsGCN layers → channel-major flatten → Linear: scores N image nodes jointly."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        nodes: int,
        layers: int,
        out: int,
        pre_fc_relu: bool = False,
        out_activation: Literal["softmax", "none"] = "softmax",
        prior_mode: PriorMode = "none",
        prior_init: float = 1.0,
        bn_relu_embed: bool = True,
        zero_init_residual_bn: bool = True,
    ) -> None:
        super().__init__()
        if min(in_dim, hidden, nodes, out) < 1 or layers < 0:
            raise ValueError(
                f"GraphHead sizes must be positive (layers >= 0): in_dim={in_dim}, hidden={hidden}, "
                f"nodes={nodes}, layers={layers}, out={out}"
            )
        if out_activation not in ("softmax", "none"):
            raise ValueError(f"out_activation must be 'softmax' or 'none', got {out_activation!r}")
        if prior_mode not in ("none", "add", "mul"):
            raise ValueError(f"prior_mode must be 'none', 'add' or 'mul', got {prior_mode!r}")
        self.in_dim, self.hidden, self.nodes, self.num_layers, self.out = in_dim, hidden, nodes, layers, out
        self.out_activation = out_activation
        self.prior_mode = prior_mode
        self.embed = _conv_bn_relu(in_dim, hidden, bn_relu=True)
        self.gcn = nn.ModuleList(
            RsGCN(hidden, hidden, bn_relu_embed=bn_relu_embed, zero_init_residual_bn=zero_init_residual_bn)
            for _ in range(layers)
        )
        self.prior_weight = (
            nn.Parameter(torch.full((layers,), float(prior_init))) if prior_mode == "add" else None
        )
        self.readout_relu = nn.ReLU() if pre_fc_relu else nn.Identity()
        self.fc = nn.Linear(hidden * nodes, out)

    def forward(self, nodes: Tensor, prior_affinity: Tensor | None = None) -> dict[str, Tensor]:
        """nodes (B, N, in_dim), node 0 = query → {"pred": (B, out), "affinities": (B, layers, N, N)}."""
        if nodes.ndim != 3 or nodes.shape[1] != self.nodes or nodes.shape[2] != self.in_dim:
            raise ValueError(
                f"GraphHead expects nodes of shape (B, {self.nodes}, {self.in_dim}) "
                f"(batch, query + references, feature dim), got {tuple(nodes.shape)}"
            )
        if prior_affinity is not None and self.prior_mode == "none":
            raise ValueError("prior_affinity given but this GraphHead was built with prior_mode='none'")
        v = self.embed(nodes.transpose(1, 2))  # (B, hidden, N)
        affinities = []
        for index, layer in enumerate(self.gcn):
            weight = self.prior_weight[index] if self.prior_weight is not None else None
            v, affinity = layer(v, prior_affinity, self.prior_mode, weight)
            affinities.append(affinity)
        flat = v.flatten(1)  # channel-major: index c * N + n
        logits = self.fc(self.readout_relu(flat))
        pred = logits.softmax(dim=-1) if self.out_activation == "softmax" else logits
        batch, n = nodes.shape[0], self.nodes
        stacked = torch.stack(affinities, dim=1) if affinities else nodes.new_zeros(batch, 0, n, n)
        return {"pred": pred, "affinities": stacked}


def similarity_prior(
    nodes: Tensor, metric: Literal["cosine", "l2"] = "cosine", temperature: float = 1.0
) -> Tensor:
    """Non-negative (B, N, N) edge prior from node features (B, N, D): clamped cosine or Gaussian of L2²/D."""
    if nodes.ndim != 3:
        raise ValueError(f"similarity_prior expects nodes (B, N, D), got {tuple(nodes.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x = nodes.float()
    if metric == "cosine":
        x = nn.functional.normalize(x, dim=-1)
        return (x @ x.transpose(1, 2)).clamp_min(0.0)
    if metric == "l2":
        squared = torch.cdist(x, x).square() / x.shape[-1]
        return torch.exp(-squared / temperature)
    raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}")
