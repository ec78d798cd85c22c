"""SSMR's Multiple Reference Graph Reasoning (MRGR): a GCN over the query and its k references -> one score.

Shi et al., "Semantic and style based multiple reference learning for artistic and general image aesthetic
assessment", Neurocomputing 582 (2024); spec /work/shared/papers/ssmr.md. The graph parts are MILNet's
(`iaa_lib.blocks.graph.GraphHead`); SSMR uses them as `GraphHead(1024, 1024, 5, 6, 1, pre_fc_relu=True)`
on frozen Swin-V2 1024-d node features and regresses one min-max normalised score with SmoothL1.

Inputs (batch keys): ``nodes`` (B, 1 + k, D) node features, query first then references by rank; ``prior``
(B, 1 + k, 1 + k) edge prior (e.g. `iaa_lib.ssmr.srig.fused_similarity_prior`), used when ``edge_prior="add"``.
Output: dict(pred=(B,) score on the dataset's scale, raw=(B,) network output o (normalised scale),
affinities=(B, layers, N, N) every layer's aggregation matrix).

Variants (spec section 7):
* ``variant="textbook"`` (default): edges start from the similarity prior and the network adjusts them
  (A_l = R_l + α_l·P, the paper's "initialize and reason by adjusting the weight of edges"); one prediction
  mapping everywhere, ŝ = clip(o, 0, 1)·(max − min) + min at evaluation; score range = pass the training set's
  min/max.
* ``variant="as_published"`` (the released code): learned affinity R only, no prior; score range
  (2.75695, 10.0); evaluation mapping ŝ = sigmoid(o)·(max − min) + min (the code's val mapping; the code's
  test loop uses the raw mapping, ``prediction_mapping="raw"``).
In training mode ``pred`` is always the unclipped affine map of o, so `SSMRLoss` = SmoothL1(o, norm_score)
exactly as in the code.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from iaa_lib.blocks.graph import GraphHead

AS_PUBLISHED_SCORE_RANGE = (2.75695, 10.0)
CONFIGS: dict[str, dict] = {
    # The paper's head on SwinV2-B 1024-d features: 26,296,321 parameters (+6 edge-prior weights in "add").
    "full": dict(in_dim=1024, hidden=1024, nodes=5, layers=6),
    # CPU: frozen EfficientNet-Lite0 pooled features (1280-d), small head.
    "smoke": dict(in_dim=1280, hidden=64, nodes=5, layers=2),
}
VARIANTS: dict[str, dict] = {
    "textbook": dict(edge_prior="add", prediction_mapping="clip"),
    "as_published": dict(edge_prior="none", prediction_mapping="sigmoid"),
}
PredictionMapping = Literal["clip", "sigmoid", "raw"]


def normalise_score(score: Tensor, min_score: float, max_score: float) -> Tensor:
    """(s − min) / (max − min): the code's `norm_score`."""
    return (score - min_score) / (max_score - min_score)


def denormalise_score(normalised: Tensor, min_score: float, max_score: float) -> Tensor:
    """o·(max − min) + min: back to the dataset's score scale."""
    return normalised * (max_score - min_score) + min_score


class SSMR(nn.Module):
    """MRGR head: nodes (B, N, D) [+ prior (B, N, N)] -> dict(pred (B,) score, raw (B,), affinities)."""

    def __init__(
        self,
        config: str = "smoke",
        variant: str = "textbook",
        min_score: float | None = None,
        max_score: float | None = None,
        in_dim: int | None = None,
        hidden: int | None = None,
        nodes: int | None = None,
        layers: int | None = None,
        edge_prior: Literal["add", "mul", "none"] | None = None,
        prediction_mapping: PredictionMapping | None = None,
        prior_init: float = 1.0,
    ) -> None:
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"SSMR config must be one of {sorted(CONFIGS)}, got {config!r}")
        if variant not in VARIANTS:
            raise ValueError(f"SSMR variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        sizes = {**CONFIGS[config], **{k: v for k, v in dict(in_dim=in_dim, hidden=hidden, nodes=nodes, layers=layers).items() if v is not None}}
        edge_prior = edge_prior or VARIANTS[variant]["edge_prior"]
        prediction_mapping = prediction_mapping or VARIANTS[variant]["prediction_mapping"]
        if prediction_mapping not in ("clip", "sigmoid", "raw"):
            raise ValueError(f"prediction_mapping must be 'clip', 'sigmoid' or 'raw', got {prediction_mapping!r}")
        if min_score is None or max_score is None:
            if variant != "as_published":
                raise ValueError(
                    "SSMR(variant='textbook') needs min_score and max_score: pass the training set's min and max "
                    f"score (the code's fixed range is {AS_PUBLISHED_SCORE_RANGE}, variant='as_published')"
                )
            min_score, max_score = AS_PUBLISHED_SCORE_RANGE
        if not max_score > min_score:
            raise ValueError(f"max_score must exceed min_score, got min={min_score}, max={max_score}")
        self.min_score, self.max_score = float(min_score), float(max_score)
        self.prediction_mapping = prediction_mapping
        self.edge_prior = edge_prior
        self.head = GraphHead(
            sizes["in_dim"], sizes["hidden"], sizes["nodes"], sizes["layers"], 1,
            pre_fc_relu=True, out_activation="none", prior_mode=edge_prior, prior_init=prior_init,
        )
        self.input_keys = ("nodes", "prior") if edge_prior != "none" else ("nodes",)
        self.model_config = dict(
            config=config, variant=variant, **sizes, edge_prior=edge_prior,
            prediction_mapping=prediction_mapping, min_score=self.min_score, max_score=self.max_score,
            prior_init=prior_init,
        )

    def to_score(self, raw: Tensor, mapping: PredictionMapping | None = None) -> Tensor:
        """Score-scale prediction from the raw output o with a prediction mapping (default: the model's)."""
        mapping = mapping or self.prediction_mapping
        if mapping == "clip":
            normalised = raw.clamp(0.0, 1.0)
        elif mapping == "sigmoid":
            normalised = torch.sigmoid(raw)
        elif mapping == "raw":
            normalised = raw
        else:
            raise ValueError(f"mapping must be 'clip', 'sigmoid' or 'raw', got {mapping!r}")
        return denormalise_score(normalised, self.min_score, self.max_score)

    def forward(self, nodes: Tensor, prior: Tensor | None = None) -> dict[str, Tensor]:
        if self.edge_prior != "none" and prior is None:
            raise ValueError(f"SSMR(edge_prior={self.edge_prior!r}) needs the `prior` (B, N, N) edge input")
        out = self.head(nodes, prior if self.edge_prior != "none" else None)
        raw = out["pred"][:, 0]
        # Training: the affine map of o, so the loss sees o itself; evaluation: the chosen mapping.
        pred = denormalise_score(raw, self.min_score, self.max_score) if self.training else self.to_score(raw)
        return {"pred": pred, "raw": raw, "affinities": out["affinities"]}


class SSMRLoss(nn.Module):
    """SmoothL1 (Huber, β = 1, mean) between min-max normalised predicted and true scores (B,)."""

    def __init__(self, min_score: float, max_score: float, beta: float = 1.0) -> None:
        super().__init__()
        if not max_score > min_score:
            raise ValueError(f"max_score must exceed min_score, got min={min_score}, max={max_score}")
        self.min_score, self.max_score, self.beta = float(min_score), float(max_score), float(beta)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape or pred.ndim != 1:
            raise ValueError(f"SSMRLoss expects pred and target scores of shape (B,), got {tuple(pred.shape)} and {tuple(target.shape)}")
        return nn.functional.smooth_l1_loss(
            normalise_score(pred, self.min_score, self.max_score),
            normalise_score(target, self.min_score, self.max_score),
            beta=self.beta,
        )

    def extra_repr(self) -> str:
        return f"min_score={self.min_score}, max_score={self.max_score}, beta={self.beta}"
