"""MILNet (Shi et al., ACM TOMM 2024): score a query jointly with its top-k retrieved training images via a GCN.

The model sees *precomputed, frozen* node features only: input ``nodes`` (B, 1 + k, D) with node 0 the
query and nodes 1..k its references in retrieval rank order (see ``iaa_lib.blocks.retrieval``). It embeds them,
runs ``layers`` residual non-local GCN layers with a learned per-sample 5×5 affinity and reads the
graph out by a channel-major flatten into a 10-bin softmax (``iaa_lib.blocks.graph.GraphHead``).
Output: ``{"pred": (B, 10) distribution, "affinities": (B, layers, 1 + k, 1 + k)}``.

Configurations (``MILNet(config=..., **overrides)``):

* ``full``: the official ``RsgcnModel(6144, 512, 512, 5, 10)``: 6144-d node features, hidden 512,
  4 references (5 nodes), 6 layers: 9,501,194 parameters; the official count 9,526,804 includes an
  unused second readout ``gcn_fc`` (25,610) that is not built here.
* ``smoke``: 1808-d nodes (EfficientNet-Lite0 multi-level pooled features), hidden 64, 4 references, 2 layers.

Node features: the paper's are MLSP maps of an AVA-fine-tuned Inception-ResNet-v2 reduced to 6144-d
by a separately trained head; neither the checkpoint nor the features are released. The book builds MLSP
features of a frozen ImageNet backbone with forward hooks (``NODE_FEATURES``, ``iaa_lib.milnet.mlsp``):
Inception-ResNet-v2's 43 taps (16,928-d), reduced to 6144-d by a train-split PCA, for ``full``; the
offline EfficientNet-Lite0's 16 blocks (1808-d) for ``smoke``; pass ``in_dim=store.dim`` when the features
are not 6144-d. Retrieval features (``RETRIEVAL_FEATURES``), a different network as in the paper:
torchvision ResNet-50 ImageNet, L2, as in the official script (``smoke``: EfficientNet-Lite1), which feeds
unnormalised full-resolution images: the book normalises at the backbone's size by default,
``milnet_graph_data(..., retrieval_input="as_published")`` reproduces the official input
(``iaa_lib.milnet.pipeline``).

Loss: ``iaa_lib.losses.AdaEMDLoss`` with ``inner="true_emd"`` (default, correct EMD2) or
``inner="milnet_abs_inside"`` (as published: |.| inside the partial sum). ``adaemd_gradient_ratio``
gives the per-sample factor AdaEMD puts on ∇d (1 for easy samples, C + 2d for hard ones);
``TracedAdaEMDLoss`` also records C, τ, the hard fraction and the batch loss of every training step
(kept in its state dict, hence in the engine's checkpoints) for the book's plots.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from iaa_lib.losses import AdaEMDLoss
from iaa_lib.blocks.graph import GraphHead

CONFIGS: dict[str, dict[str, Any]] = {
    "full": dict(in_dim=6144, hidden=512, num_references=4, layers=6),
    "smoke": dict(in_dim=1808, hidden=64, num_references=4, layers=2),
}
# (feature name, weights) of the graph nodes and of the retrieval space, per config: as in the paper, two different
# networks. Nodes: "mlsp:<backbone>" = multi-level pooled features of that backbone (iaa_lib.milnet.mlsp), reduced
# to NODE_REDUCED_DIM by a train-split PCA where set; retrieval: a plain backbone's pooled output.
NODE_FEATURES: dict[str, tuple[str, str]] = {
    "full": ("mlsp:timm:inception_resnet_v2", "imagenet"),
    "smoke": ("mlsp:timm:tf_efficientnet_lite0", "imagenet"),
}
NODE_REDUCED_DIM: dict[str, int | None] = {"full": 6144, "smoke": None}
RETRIEVAL_FEATURES: dict[str, tuple[str, str]] = {
    "full": ("torchvision:resnet50", "imagenet"),
    "smoke": ("timm:tf_efficientnet_lite1", "imagenet"),
}
OFFICIAL_PARAMETERS = 9_526_804  # official RsgcnModel incl. the unused gcn_fc Linear(2560 -> 10)
UNUSED_GCN_FC_PARAMETERS = 2560 * 10 + 10


class MILNet(nn.Module):
    """Query + k references as graph nodes → RsGCN layers → flatten → 10-bin softmax."""

    input_keys = ("nodes",)

    def __init__(
        self,
        config: str = "smoke",
        *,
        in_dim: int | None = None,
        hidden: int | None = None,
        num_references: int | None = None,
        layers: int | None = None,
    ) -> None:
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"unknown MILNet config {config!r}; choose one of {sorted(CONFIGS)}")
        settings = dict(CONFIGS[config])
        overrides = dict(in_dim=in_dim, hidden=hidden, num_references=num_references, layers=layers)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        if settings["num_references"] < 0:
            raise ValueError(f"num_references must be >= 0, got {settings['num_references']}")
        self.config = config
        self.num_references = int(settings["num_references"])
        self.num_nodes = self.num_references + 1
        self.in_dim = int(settings["in_dim"])
        self.model_config = {"config": config, **settings}
        self.head = GraphHead(
            self.in_dim, int(settings["hidden"]), self.num_nodes, int(settings["layers"]), 10,
            out_activation="softmax",
        )

    def forward(self, nodes: Tensor) -> dict[str, Tensor]:
        """nodes (B, 1 + k, D), query first → {"pred": (B, 10) softmax, "affinities": (B, layers, 1+k, 1+k)}."""
        if nodes.ndim != 3 or nodes.shape[1:] != (self.num_nodes, self.in_dim):
            raise ValueError(
                f"MILNet({self.config}) expects nodes (B, {self.num_nodes}, {self.in_dim}) = query + "
                f"{self.num_references} references × feature dim, got {tuple(nodes.shape)}; build them with "
                "iaa_lib.blocks.retrieval.ReferenceGraphDataset(num_references=...) from features of that dimension"
            )
        return self.head(nodes)


def milnet(config: str = "smoke", **overrides: Any) -> MILNet:
    """Registry factory: MILNet(config, **overrides)."""
    return MILNet(config, **overrides)


def adaemd_gradient_ratio(loss: nn.Module, pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample factor (B,) of AdaEMD's gradient over the plain inner distance's: 1 if d < τ else C + 2d."""
    with torch.no_grad():
        d = loss.distance(pred, target)
        return torch.where(d >= loss.tau, loss.C + 2 * d, torch.ones_like(d))


def adaemd_relative_weights(loss: nn.Module, pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample weight (B,) AdaEMD puts on ∇d relative to the batch mean (adaemd_gradient_ratio / its mean): what
    is left once Adam's step normalisation cancels a factor shared by the whole batch."""
    ratio = adaemd_gradient_ratio(loss, pred, target)
    return ratio / ratio.mean()


class TracedAdaEMDLoss(AdaEMDLoss):
    """AdaEMDLoss recording (C used, τ, hard fraction, batch loss) per training batch; the trace is in its state dict."""

    TRACE_COLUMNS = ("C", "tau", "hard_fraction", "batch_loss")

    def __init__(self, inner: str = "true_emd", tau0: float = 0.2, alpha: float = 0.99) -> None:
        super().__init__(inner=inner, tau0=tau0, alpha=alpha)
        self._trace: list[Tensor] = []

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """AdaEMD batch loss; in training mode also appends this step's row to the trace (no host sync)."""
        c_used = self.C.detach().clone()
        loss = super().forward(pred, target)
        if self.training:
            self._trace.append(torch.stack([c_used, self.tau, self.hard_fraction, loss.detach()]).float())
        return loss

    def get_extra_state(self) -> dict:
        return {"trace": torch.stack(self._trace).cpu() if self._trace else torch.zeros(0, 4)}

    def set_extra_state(self, state: dict) -> None:
        self._trace = list(state["trace"])

    def trace_frame(self) -> pd.DataFrame:
        """One row per training step: step (1-based), C, tau, hard_fraction, batch_loss."""
        rows = torch.stack(self._trace).cpu().double().numpy() if self._trace else torch.zeros(0, 4).numpy()
        frame = pd.DataFrame(rows, columns=list(self.TRACE_COLUMNS))
        frame.insert(0, "step", range(1, len(frame) + 1))
        return frame
