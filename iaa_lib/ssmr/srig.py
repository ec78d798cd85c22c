"""SRIG, SSMR's Similar Reference Index Generation: semantic + style features and one fused, train-only ranking.

Built on `iaa_lib.blocks.retrieval` (feature cache, `TopKIndex`, leak guard); this module adds the style features,
the fusion rule and the (B, N, N) edge priors for the graph.

Fusion [design; the paper states none]: d = α·ẑ(d_sem) + (1 − α)·ẑ(d_style), where ẑ(d) = (d − μ) / σ
and (μ, σ) are the mean and std of that descriptor's distance over random pairs of *training* images, so
both distances are on a comparable scale; α = 1 is semantic-only, α = 0 style-only, default α = 0.5.
The fused top-k is exact over the union of each descriptor's `candidates` nearest training images
(exact over the whole index when `candidates` >= the index size).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from iaa_lib.blocks.graph import similarity_prior
from iaa_lib.blocks.retrieval import FeatureStore, ReferenceGraphDataset, SearchResult, TopKIndex, extract_features
from iaa_lib.ssmr.style import DEFAULT_STYLE_LAYERS, StyleEncoder

DEFAULT_ALPHA = 0.5


def extract_semantic_and_style(
    frame: pd.DataFrame,
    image_dir: str | os.PathLike | None = None,
    *,
    backbone: nn.Module,
    backbone_name: str,
    weights: str | None,
    transform,
    cache_dir: str | os.PathLike,
    layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    kind: str = "gram",
    projection_dim: int | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> tuple[FeatureStore, FeatureStore]:
    """(semantic store (N, backbone.dim) pooled features, style store (N, D_style)) from ONE cached backbone pass.

    Uses retrieval.extract_features (disk cache keyed by backbone, weights, transform, style settings, images).
    """
    encoder = StyleEncoder(backbone, layers, kind=kind, projection_dim=projection_dim, with_pooled=True)
    name = f"{backbone_name}+style[{kind};{','.join(layers)};proj={projection_dim}]"
    both = extract_features(
        frame, image_dir, backbone_name=name, weights=weights, transform=transform, backbone=encoder,
        cache_dir=cache_dir, batch_size=batch_size, device=device,
    )
    dim = int(backbone.dim)
    semantic = FeatureStore(both.ids, both.features[:, :dim].contiguous(), key=both.key, path=both.path)
    style = FeatureStore(both.ids, both.features[:, dim:].contiguous(), key=both.key, path=both.path)
    return semantic, style


def extract_style(
    frame: pd.DataFrame,
    image_dir: str | os.PathLike | None = None,
    *,
    backbone: nn.Module,
    backbone_name: str,
    weights: str | None,
    transform,
    cache_dir: str | os.PathLike,
    layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    kind: str = "gram",
    projection_dim: int | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> FeatureStore:
    """Style vectors (N, D_style) from a (CNN) backbone of its own, e.g. when the semantic backbone is a Swin."""
    encoder = StyleEncoder(backbone, layers, kind=kind, projection_dim=projection_dim)
    name = f"style[{kind};{','.join(layers)};proj={projection_dim}]:{backbone_name}"
    return extract_features(
        frame, image_dir, backbone_name=name, weights=weights, transform=transform, backbone=encoder,
        cache_dir=cache_dir, batch_size=batch_size, device=device,
    )


def _distances_to_rows(index: TopKIndex, queries: Tensor, rows: Tensor) -> Tensor:
    """Distances (Q, R) from each query (Q, D) to its own index rows (Q, R), with the index's metric.

    Computed as one (Q, N) block against the whole index then gathered: a matmul, instead of a (Q, R, D) gather.
    """
    queries = queries.to(index.features.device).float()
    if index.metric == "cosine":
        queries = nn.functional.normalize(queries, dim=1)
    dots = (queries @ index.features.T).gather(1, rows.to(index.features.device))
    if index.metric == "cosine":
        return 1.0 - dots
    squared = queries.square().sum(1, keepdim=True) + index.squared_norms[rows.to(index.features.device)] - 2.0 * dots
    return squared.clamp_min(0.0).sqrt()


@dataclass(frozen=True)
class DistanceScale:
    """Mean and std of one descriptor's distance between random pairs of training images."""

    mean: float
    std: float


def distance_scale(index: TopKIndex, pairs: int = 5000, seed: int = 0) -> DistanceScale:
    """DistanceScale of `index` estimated on `pairs` random distinct pairs of its (training) rows."""
    if len(index) < 2:
        raise ValueError("distance_scale needs an index with at least 2 training rows")
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(len(index), (pairs,), generator=generator)
    second = (first + torch.randint(1, len(index), (pairs,), generator=generator)) % len(index)  # never == first
    a, b = index.features[first], index.features[second]  # cosine indices hold unit vectors already
    distances = 1.0 - (a * b).sum(1) if index.metric == "cosine" else (a - b).norm(dim=1)
    std = float(distances.std())
    if not std > 0:
        raise ValueError("all training distances are equal: the descriptor cannot rank references")
    return DistanceScale(float(distances.mean()), std)


class FusedIndex:
    """Semantic + style reference index over the same training ids: fused distance α·ẑ_sem + (1 − α)·ẑ_style.

    `scales` = (semantic, style) DistanceScale; estimated from random training pairs when not given.
    """

    def __init__(
        self,
        semantic: TopKIndex,
        style: TopKIndex,
        alpha: float = DEFAULT_ALPHA,
        candidates: int = 256,
        scales: tuple[DistanceScale, DistanceScale] | None = None,
        query_chunk: int = 128,
    ) -> None:
        if semantic.ids != style.ids:
            raise ValueError("the semantic and style indices must hold the same training ids in the same order")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha (semantic weight) must be in [0, 1], got {alpha}")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.semantic, self.style, self.alpha = semantic, style, float(alpha)
        self.candidates, self.query_chunk = candidates, query_chunk
        self.ids = semantic.ids
        self.semantic_scale, self.style_scale = scales or (distance_scale(semantic), distance_scale(style))

    def __len__(self) -> int:
        return len(self.ids)

    def fused_distance(self, semantic_distance: Tensor, style_distance: Tensor) -> Tensor:
        """α·ẑ(d_sem) + (1 − α)·ẑ(d_style) for distances of any (matching) shape."""
        sem = (semantic_distance - self.semantic_scale.mean) / self.semantic_scale.std
        sty = (style_distance - self.style_scale.mean) / self.style_scale.std
        return self.alpha * sem + (1.0 - self.alpha) * sty

    @torch.no_grad()
    def search(
        self,
        semantic_queries: Tensor,
        style_queries: Tensor,
        k: int,
        query_ids: Sequence[str] | None = None,
        exclude_self: bool = True,
    ) -> SearchResult:
        """k training references per query by fused distance (ascending); a training query never retrieves itself."""
        if semantic_queries.shape[0] != style_queries.shape[0]:
            raise ValueError(
                f"semantic_queries ({semantic_queries.shape[0]} rows) and style_queries "
                f"({style_queries.shape[0]} rows) must describe the same queries"
            )
        own_excluded = exclude_self and query_ids is not None and any(str(q) in self.semantic.position for q in query_ids)
        excluded = self.semantic.largest_group() if exclude_self and self.semantic.groups is not None else int(own_excluded)
        pool = min(self.candidates, len(self) - excluded)
        if not 1 <= k <= pool:
            raise ValueError(f"k must be in [1, {pool}] (candidates={self.candidates}, index of {len(self)}), got {k}")
        by_semantic = self.semantic.search(semantic_queries, pool, query_ids, exclude_self)
        by_style = self.style.search(style_queries, pool, query_ids, exclude_self)
        all_rows, all_distances = [], []
        for start in range(0, len(by_semantic), self.query_chunk):
            stop = start + self.query_chunk
            rows = torch.cat([by_semantic.indices[start:stop], by_style.indices[start:stop]], dim=1)
            rows, _ = rows.sort(dim=1)
            repeated = torch.zeros_like(rows, dtype=torch.bool)
            repeated[:, 1:] = rows[:, 1:] == rows[:, :-1]
            fused = self.fused_distance(
                _distances_to_rows(self.semantic, semantic_queries[start:stop], rows).cpu(),
                _distances_to_rows(self.style, style_queries[start:stop], rows).cpu(),
            ).masked_fill(repeated, float("inf"))
            best, order = fused.topk(k, dim=1, largest=False, sorted=True)
            all_rows.append(rows.gather(1, order))
            all_distances.append(best)
        indices = torch.cat(all_rows)
        ref_ids = [[self.ids[j] for j in row] for row in indices.tolist()]
        return SearchResult(by_semantic.query_ids, ref_ids, indices, torch.cat(all_distances))


def fused_similarity_prior(semantic_nodes: Tensor, style_nodes: Tensor, alpha: float = DEFAULT_ALPHA) -> Tensor:
    """Edge prior (B, N, N) in [0, 1]: α·cos⁺(semantic) + (1 − α)·cos⁺(style) between the graph's nodes."""
    if semantic_nodes.shape[:2] != style_nodes.shape[:2]:
        raise ValueError(
            f"semantic_nodes {tuple(semantic_nodes.shape)} and style_nodes {tuple(style_nodes.shape)} "
            "must have the same (B, N)"
        )
    return alpha * similarity_prior(semantic_nodes) + (1.0 - alpha) * similarity_prior(style_nodes)


class SSMRGraphDataset(Dataset):
    """ReferenceGraphDataset items (nodes (1 + k, D_sem), mos, dist, image_id) plus the edge prior (1 + k, 1 + k).

    `reference_fill` = (node feature (D_sem,), style vector (D_style,)) replaces every reference (the mean control)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        semantic_store: FeatureStore,
        style_store: FeatureStore,
        references: SearchResult | Mapping[str, Sequence[str]] | None,
        num_references: int = 4,
        alpha: float = DEFAULT_ALPHA,
        reference_fill: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        self.graphs = ReferenceGraphDataset(frame, semantic_store, references, num_references,
                                            reference_fill=None if reference_fill is None else reference_fill[0])
        node_ids = self.graphs.node_ids
        missing = [i for row in node_ids for i in row if i not in style_store.position]
        if missing:
            raise KeyError(f"{len(missing)} node ids have no style feature (first: {missing[0]!r}); extract them first")
        style_rows = torch.tensor([[style_store.position[i] for i in row] for row in node_ids], dtype=torch.long)
        style_nodes = style_store.features[style_rows].float()
        if reference_fill is not None:
            style_nodes[:, 1:] = reference_fill[1].float()
        self.priors = fused_similarity_prior(self.graphs.node_features(slice(None)), style_nodes, alpha)
        self.node_ids = node_ids

    def __len__(self) -> int:
        return len(self.graphs)

    def fingerprint(self) -> str:
        """Hash of the graphs (ReferenceGraphDataset.fingerprint) and their edge priors."""
        from iaa_lib.training.fingerprint import fingerprint

        return fingerprint("SSMRGraphDataset", self.graphs.fingerprint(), self.priors)

    def __getitem__(self, index: int) -> dict:
        return {**self.graphs[index], "prior": self.priors[index]}


def same_label_rate(result: SearchResult, labels: Mapping[str, str]) -> float:
    """Fraction of (query, reference) pairs whose `labels` agree (e.g. the style or content of the image)."""
    hits = [labels[str(q)] == labels[str(r)] for q, refs in zip(result.query_ids, result.ref_ids) for r in refs]
    if not hits:
        raise ValueError("same_label_rate got an empty SearchResult")
    return float(np.mean(hits))


def load_shipped_index(
    path: str | os.PathLike, train_ids: Sequence[str], held_out_ids: Sequence[str] = (), queries: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """The authors' SRIG index file ('query.jpg ref1 … ref50', e.g. AIAA_semantic_style_test_refer_50.txt), checked.

    Raises ReferenceLeakError if a reference is not a training id, is held out, or is its own query, and
    ValueError if `queries` are given and some have no line (the train file must cover all 50,737 ids).
    """
    from iaa_lib.blocks.retrieval import assert_references_train_only, load_references

    mapping = load_references(path, strip_suffix=".jpg")
    assert_references_train_only(mapping, train_ids, held_out_ids)
    if queries is not None:
        missing = [q for q in map(str, queries) if q not in mapping]
        if missing:
            raise ValueError(f"{path}: {len(missing)} queries have no reference line (first: {missing[0]!r})")
    return mapping


@dataclass
class ReferenceSetup:
    """Everything SRIG needs for one dataset: label frame, splits, semantic/style stores and train-only indices."""

    frame: pd.DataFrame
    splits: dict[str, list[str]]
    semantic: FeatureStore
    style: FeatureStore
    semantic_index: TopKIndex
    style_index: TopKIndex
    nodes: FeatureStore | None = None  # the graph's node features; None = the semantic (retrieval) store
    groups: dict[str, str] | None = None  # id -> source group, never among its images' references

    @property
    def node_store(self) -> FeatureStore:
        """The store the graph's nodes are read from."""
        return self.nodes if self.nodes is not None else self.semantic

    @cached_property
    def scales(self) -> tuple[DistanceScale, DistanceScale]:
        """(semantic, style) distance scales over random training pairs, computed once."""
        return distance_scale(self.semantic_index), distance_scale(self.style_index)

    def fused_index(self, alpha: float = DEFAULT_ALPHA, candidates: int = 256) -> FusedIndex:
        """FusedIndex over this setup's training images with semantic weight `alpha`."""
        return FusedIndex(self.semantic_index, self.style_index, alpha=alpha, candidates=candidates, scales=self.scales)

    def search(self, ids: Sequence[str], alpha: float = DEFAULT_ALPHA, k: int = 4) -> SearchResult:
        """Top-k fused references of `ids` (training ids exclude themselves)."""
        ids = [str(i) for i in ids]
        return self.fused_index(alpha).search(self.semantic.rows(ids), self.style.rows(ids), k, query_ids=ids)

    def references(self, alpha: float = DEFAULT_ALPHA, k: int = 4, candidates: int = 256) -> dict[str, SearchResult]:
        """Top-k fused references of every split's images (train queries exclude themselves), leak-checked."""
        from iaa_lib.blocks.retrieval import assert_references_train_only

        fused = self.fused_index(alpha, candidates)
        held_out = [i for name, ids in self.splits.items() if name != "train" for i in ids]
        results = {}
        for name, ids in self.splits.items():
            results[name] = fused.search(self.semantic.rows(ids), self.style.rows(ids), k, query_ids=ids)
            assert_references_train_only(results[name], self.splits["train"], held_out, groups=self.groups)
        return results


def build_reference_setup(
    frame: pd.DataFrame,
    splits: Mapping[str, Sequence[str]],
    semantic: FeatureStore,
    style: FeatureStore,
    metric: str = "l2",
    nodes: FeatureStore | None = None,
    groups: Mapping[str, str] | None = None,
) -> ReferenceSetup:
    """Train-only semantic and style indices (ReferenceLeakError if a val/test id is in the training list); `groups`
    (id -> source group, e.g. a rendering's photo) keeps a query's own group out of its references."""
    from iaa_lib.blocks.retrieval import build_index

    if "train" not in splits:
        raise ValueError(f"splits need a 'train' entry (the only source of references), got {sorted(splits)}")
    splits = {name: [str(i) for i in ids] for name, ids in splits.items()}
    train = splits["train"]
    held_out = [i for name, ids in splits.items() if name != "train" for i in ids]
    groups = None if groups is None else {str(i): str(g) for i, g in groups.items()}
    semantic_index = build_index(semantic.rows(train), train, metric=metric, forbidden_ids=held_out, groups=groups)
    style_index = build_index(style.rows(train), train, metric=metric, forbidden_ids=held_out, groups=groups)
    return ReferenceSetup(frame, splits, semantic, style, semantic_index, style_index, nodes, groups)
