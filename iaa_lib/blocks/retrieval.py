"""Reference retrieval for multi-image IAA (MILNet, SSMR): cached features, a train-only top-k index, leak guards.

Typical use::

    store = extract_features(frame, image_dir, backbone_name="timm:tf_efficientnet_lite0",
                             weights="imagenet", cache_dir="runs/milnet/features")
    index = build_index(store.rows(splits["train"]), splits["train"], metric="l2",
                        forbidden_ids=splits["val"] + splits["test"])
    train_refs = index.search(store.rows(splits["train"]), k=4, query_ids=splits["train"])  # self excluded
    test_refs = index.search(store.rows(splits["test"]), k=4, query_ids=splits["test"])
    assert_references_train_only(test_refs, splits["train"], held_out_ids=splits["val"] + splits["test"])
    dataset = ReferenceGraphDataset(test_frame, store, test_refs, num_references=4)  # item["nodes"]: (5, D)

API
---
Features (extracted once, cached on disk)
    ``extract_features(frame, image_dir=None, *, backbone_name, weights=None, transform=None,
    image_size=None, backbone=None, cache_dir, batch_size=32, device=None, fingerprint="stat",
    progress=False) -> FeatureStore``. ``frame`` is a label frame (``image_id``, optional ``path``).
    The backbone is built with ``iaa_lib.blocks.backbones.create_backbone(backbone_name, weights)``
    unless a module (or a factory returning one) is given (then ``backbone_name``/``weights`` must describe
    it: they are part of the cache key), and only on a cache miss. ``transform`` defaults to
    ``eval_transform(image_size or backbone.input_size, backbone.mean, backbone.std)``. The backbone must
    map (B, 3, H, W) to pooled (B, D) features; it runs in eval mode without gradients.

    Cache key = the run key of ``iaa_lib.training.fingerprint.fingerprint`` (16 hex digits) of (backbone
    name, weights — plus size and mtime when ``weights`` is a local file —, ``repr(transform)``, the ordered
    image ids and a per-image fingerprint). ``fingerprint="stat"`` (default) uses each file's size and
    mtime_ns, ``"bytes"`` the sha256 of its contents (exact but reads every image). Changing any of them
    gives a new key, hence a fresh extraction. A store is a folder ``<cache_dir>/<key>/`` with
    ``features.npy`` (N × D float32), ``ids.txt`` and ``meta.json``. ``feature_cache_key(...)`` computes
    the key; ``load_feature_store(folder)`` reads a store back.

    ``FeatureStore(ids, features, key=None, path=None, meta={})``: ``.rows(ids) -> (len(ids), D)`` float tensor
    in the given order, ``.dim``, ``len()``, ``.position`` (id → row), ``.meta`` (the cache's meta.json: backbone
    name, weights, transform, ``parameters`` = the backbone's parameter count, ``input_size`` = the side in px of
    the default transform, None for a custom one).

Index (training split only)
    ``build_index(train_features, train_ids, metric="l2"|"cosine", forbidden_ids=None,
    query_chunk=1024, reference_chunk=65536, device=None) -> TopKIndex``. Raises ``ReferenceLeakError``
    when a training id is also in ``forbidden_ids`` (pass the val + test ids) and ``ValueError`` on
    duplicate ids or shape mismatches.

    ``TopKIndex.search(query_features, k, query_ids=None, exclude_self=True) -> SearchResult``:
    exact k nearest training rows in ascending distance. A query never gets itself, an image of its own
    source group (``build_index(..., groups={id: group})``, e.g. the renderings of one photo) or a
    near-duplicate (distance <= ``near_duplicate`` (1e-3) x the pair's mean feature norm; cosine: distance
    <= near_duplicate), e.g. the same photo re-uploaded under another id. L2 = Euclidean distance (the papers' code,
    ``pairwise_distance(p=2)``), cosine distance = 1 − cos. Computed in blocks of ``query_chunk`` ×
    ``reference_chunk`` rows with a running top-k merge, so peak extra memory is about
    ``query_chunk · reference_chunk · 4`` bytes whatever the index size (255k × 2048 AVA features take
    2 GB for the index itself). A query whose id is a training id never gets itself as a reference
    (the official training lists keep ranks [1:101]; test lists [0:100]).

    ``SearchResult``: ``query_ids`` (list[str]), ``ref_ids`` (list[list[str]], rank order),
    ``indices`` (Q, k) long rows of the index, ``distances`` (Q, k) float; ``.as_dict()``,
    ``.to_frame()`` (query_id, rank, ref_id, distance), ``.take(k)`` (first k ranks).
    ``random_references(query_ids, train_ids, k, seed=0, groups=None)`` draws random training references
    (self and own group excluded) for the "swap references for random ones" control. ``save_references(result, path)`` /
    ``load_references(path, strip_suffix="")`` use the official text format ``query ref1 ... refk``.

Leak guard
    ``assert_references_train_only(references, train_ids, held_out_ids=(), query_ids_are_train=None)``
    raises ``ReferenceLeakError`` if any reference is not a training id, is a held-out (val/test) id,
    equals its own query or (with ``groups``) shares its source group. ``references`` is a SearchResult or a mapping query_id → list of ref ids.

All splits at once
    ``references_for_splits(store, splits, k, metric="l2", reference_mode="retrieved", seed=0)
    -> dict[split, SearchResult]``: index on ``splits["train"]`` (val/test forbidden), every split searched
    (training queries exclude themselves), the leak guard asserted; ``reference_mode="random"`` draws random
    training references instead (same guard).

One call for a chapter
    ``prepare_reference_graph_data(frame, image_dir, splits, *, node_backbone=(name, weights),
    retrieval_backbone=(name, weights), cache_dir, k=4, metric="l2", image_size=None, ...)
    -> ReferenceGraphData`` with ``.node_store``, ``.retrieval_store`` (the same object when both
    backbones agree), ``.references`` (split → SearchResult), ``.image_path(id)`` and
    ``.datasets(num_references=4, reference_mode="retrieved", seed=0)`` (split → dataset); the modes
    (``REFERENCE_MODES``): ``"retrieved"``, ``"random"`` (random training images), ``"query_copies"`` (every
    reference is the query itself: the same capacity, no new information) and ``"mean"`` (every reference is
    the training set's mean node feature). ``groups`` and ``node_encoder`` (a factory of the node extractor,
    e.g. a multi-level encoder) are optional.

Dataset
    ``ReferenceGraphDataset(frame, node_store, references, num_references=4)``: item =
    dict(nodes=FloatTensor[1 + num_references, D] (query first, then references by rank),
    mos=float32 scalar, dist=FloatTensor[10] when the frame has dist columns, image_id=str).
    ``num_references=0`` gives the query-only ablation; ``reference_fill`` (D,) replaces every reference node
    (``references`` may then be None; the node ids repeat the query's).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from iaa_lib.data.images import content_hash, load_rgb
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.paths import resolve
from iaa_lib.training.fingerprint import fingerprint as run_key

Metric = Literal["l2", "cosine"]
ReferenceMode = Literal["retrieved", "random", "query_copies", "mean"]
# What fills a graph's reference nodes: the retrieved training images; random training images (the "do similar
# images matter" control); k copies of the query (the same capacity with no new information); the training set's
# mean node feature (a constant: the readout's extra inputs carry nothing).
REFERENCE_MODES: tuple[str, ...] = ("retrieved", "random", "query_copies", "mean")



class ReferenceLeakError(ValueError):
    """A reference is not a training image (or is the query itself): retrieval would leak labels."""


# --------------------------------------------------------------------------- feature store
@dataclass
class FeatureStore:
    """Features of N images: `ids` (N,) and `features` (N, D) float32, optionally backed by a cache folder."""

    ids: list[str]
    features: Tensor
    key: str | None = None
    path: Path | None = None
    meta: dict = field(default_factory=dict, repr=False)
    position: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.features.shape[0] != len(self.ids):
            raise ValueError(
                f"FeatureStore needs features (N, D) with N = len(ids) = {len(self.ids)}, "
                f"got {tuple(self.features.shape)}"
            )
        self.ids = [str(i) for i in self.ids]
        self.position = {image_id: row for row, image_id in enumerate(self.ids)}
        if len(self.position) != len(self.ids):
            raise ValueError("FeatureStore ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """Feature dimension D."""
        return int(self.features.shape[1])

    def rows(self, ids: Iterable[str]) -> Tensor:
        """Features of `ids` in that order, (len(ids), D); KeyError naming the first missing id."""
        ids = list(ids)
        missing = [i for i in ids if str(i) not in self.position]
        if missing:
            raise KeyError(f"{len(missing)} ids have no cached feature (first: {missing[0]!r}); re-run extract_features on them")
        return self.features[[self.position[str(i)] for i in ids]]


def _image_paths(frame: pd.DataFrame, image_dir: str | os.PathLike | None) -> list[Path]:
    """Absolute image path per row: the frame's `path` column, else <image_dir>/<image_id>.jpg."""
    if "image_id" not in frame.columns:
        raise ValueError("frame needs an 'image_id' column (see iaa_lib.data.labels)")
    if "path" in frame.columns:
        return [Path(p) for p in frame["path"]]
    if image_dir is None:
        raise ValueError("frame has no 'path' column: pass image_dir (images are <image_dir>/<image_id>.jpg)")
    root = resolve(image_dir)
    return [root / f"{image_id}.jpg" for image_id in frame["image_id"].astype(str)]


def _file_fingerprint(path: Path, mode: str) -> str:
    """'stat': size and mtime_ns; 'bytes': sha256 of the contents (content_hash). FileNotFoundError names the file."""
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    if mode == "stat":
        stat = path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    if mode == "bytes":
        return content_hash(path)
    raise ValueError(f"fingerprint must be 'stat' or 'bytes', got {mode!r}")


def feature_cache_key(
    backbone_name: str,
    weights: str | None,
    transform: Callable | None,
    image_ids: Sequence[str],
    image_paths: Sequence[Path],
    fingerprint: Literal["stat", "bytes"] = "stat",
) -> str:
    """Run key (16 hex digits, training.fingerprint) of one extraction: backbone name + weights + repr(transform) +
    ids + file fingerprints."""
    weights_part = str(weights)
    if weights is not None and Path(str(weights)).expanduser().is_file():
        weights_part += "|" + _file_fingerprint(Path(str(weights)).expanduser(), "stat")
    files = [[str(image_id), _file_fingerprint(path, fingerprint)]
             for image_id, path in zip(image_ids, image_paths, strict=True)]
    return run_key("FeatureStore", backbone_name, weights_part, repr(transform), files)


def load_feature_store(folder: str | os.PathLike) -> FeatureStore:
    """Read a cached store folder (features.npy, ids.txt, meta.json)."""
    folder = resolve(folder)
    for name in ("features.npy", "ids.txt", "meta.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"feature store {folder} lacks {name}; re-run extract_features")
    ids = (folder / "ids.txt").read_text().splitlines()
    meta = json.loads((folder / "meta.json").read_text())
    features = torch.from_numpy(np.load(folder / "features.npy"))
    return FeatureStore(ids, features, key=meta.get("key"), path=folder, meta=meta)


def _write_store(folder: Path, ids: list[str], features: np.ndarray, meta: dict) -> None:
    """Write a store atomically (temp folder + rename) so an interrupted run never leaves a half cache."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        np.save(tmp / "features.npy", features)
        (tmp / "ids.txt").write_text("\n".join(ids) + "\n")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class _DefaultTransform:
    """Cache-key stand-in for eval_transform(image_size or backbone.input_size, backbone.mean, backbone.std)."""

    image_size: int | None


@torch.no_grad()
def extract_features(
    frame: pd.DataFrame,
    image_dir: str | os.PathLike | None = None,
    *,
    backbone_name: str,
    weights: str | None = None,
    transform: Callable | None = None,
    image_size: int | None = None,
    backbone: nn.Module | Callable[[], nn.Module] | None = None,
    cache_dir: str | os.PathLike,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    fingerprint: Literal["stat", "bytes"] = "stat",
    progress: bool = False,
) -> FeatureStore:
    """Pooled backbone features (N, D) for every row of `frame`, loaded from the disk cache when the key matches."""
    paths = _image_paths(frame, image_dir)
    ids = frame["image_id"].astype(str).tolist()
    if transform is not None and image_size is not None:
        raise ValueError("pass either transform or image_size (for the backbone's default eval transform), not both")
    # The default transform is a function of (backbone name, weights, image_size), so that triple keys it.
    transform_key = transform if transform is not None else _DefaultTransform(image_size)
    key = feature_cache_key(backbone_name, weights, transform_key, ids, paths, fingerprint)
    folder = resolve(cache_dir) / key
    if (folder / "meta.json").is_file():
        try:
            return load_feature_store(folder)
        except (ValueError, OSError, EOFError) as error:  # e.g. a features.npy truncated after it was written
            warnings.warn(f"feature cache {folder} is unreadable ({type(error).__name__}: {error}); rebuilding it",
                          stacklevel=2)

    if backbone is None:
        from iaa_lib.blocks.backbones import create_backbone

        backbone = create_backbone(backbone_name, weights=weights)
    elif not isinstance(backbone, nn.Module):  # a factory, called only on a cache miss
        backbone = backbone()
    input_size = None
    if transform is None:
        from iaa_lib.data.transforms import eval_transform

        input_size = image_size or backbone.input_size
        transform = eval_transform(input_size, backbone.mean, backbone.std)

    device = torch.device(device) if device is not None else next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval().to(device)
    chunks = []
    starts = range(0, len(paths), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"features {backbone_name}")
    for start in starts:
        images = torch.stack([transform(load_rgb(p)) for p in paths[start : start + batch_size]])
        out = backbone(images.to(device))
        if not isinstance(out, Tensor) or out.ndim != 2:
            raise ValueError(
                f"backbone {backbone_name!r} must return pooled features (B, D), "
                f"got {type(out).__name__} {tuple(getattr(out, 'shape', ()))}"
            )
        chunks.append(out.float().cpu())
    backbone.train(was_training)
    features = torch.cat(chunks) if chunks else torch.zeros(0, 0)
    meta = dict(
        key=key, backbone_name=backbone_name, weights=str(weights), transform=repr(transform),
        n=len(ids), dim=int(features.shape[1]) if chunks else 0, fingerprint=fingerprint,
        parameters=sum(p.numel() for p in backbone.parameters()), input_size=input_size,
    )
    _write_store(folder, ids, features.numpy(), meta)
    return FeatureStore(ids, features, key=key, path=folder, meta=meta)


# --------------------------------------------------------------------------- index
@dataclass
class SearchResult:
    """Top-k references per query: ids in rank order, index rows (Q, k) and distances (Q, k), ascending."""

    query_ids: list[str]
    ref_ids: list[list[str]]
    indices: Tensor
    distances: Tensor

    def __len__(self) -> int:
        return len(self.query_ids)

    def as_dict(self) -> dict[str, list[str]]:
        """query_id -> reference ids in rank order."""
        return dict(zip(self.query_ids, self.ref_ids, strict=True))

    def take(self, k: int) -> SearchResult:
        """The first k ranks only."""
        if k > self.indices.shape[1]:
            raise ValueError(f"take({k}) but only {self.indices.shape[1]} references were retrieved")
        return SearchResult(self.query_ids, [r[:k] for r in self.ref_ids], self.indices[:, :k], self.distances[:, :k])

    @staticmethod
    def concat(parts: Sequence[SearchResult]) -> SearchResult:
        """The results of consecutive query blocks as one."""
        return SearchResult([q for p in parts for q in p.query_ids], [r for p in parts for r in p.ref_ids],
                            torch.cat([p.indices for p in parts]), torch.cat([p.distances for p in parts]))

    def to_frame(self) -> pd.DataFrame:
        """Long table: query_id, rank (1-based), ref_id, distance."""
        k = self.indices.shape[1]
        return pd.DataFrame(
            {
                "query_id": np.repeat(self.query_ids, k),
                "rank": np.tile(np.arange(1, k + 1), len(self.query_ids)),
                "ref_id": [r for refs in self.ref_ids for r in refs],
                "distance": self.distances.reshape(-1).cpu().numpy().astype(np.float64),
            }
        )


class TopKIndex:
    """Exact k-nearest-neighbour search over training features with chunked matrix products."""

    def __init__(
        self,
        train_features: Tensor,
        train_ids: Sequence[str],
        metric: Metric = "l2",
        query_chunk: int = 1024,
        reference_chunk: int = 65536,
        device: str | torch.device | None = None,
        groups: Mapping[str, str] | None = None,
        near_duplicate: float = 1e-3,
    ) -> None:
        if metric not in ("l2", "cosine"):
            raise ValueError(f"metric must be 'l2' or 'cosine', got {metric!r}")
        if train_features.ndim != 2 or train_features.shape[0] != len(train_ids):
            raise ValueError(
                f"train_features must be (N, D) with N = len(train_ids) = {len(train_ids)}, "
                f"got {tuple(train_features.shape)}"
            )
        if query_chunk < 1 or reference_chunk < 1:
            raise ValueError("query_chunk and reference_chunk must be >= 1")
        self.ids = [str(i) for i in train_ids]
        self.position = {image_id: row for row, image_id in enumerate(self.ids)}
        if len(self.position) != len(self.ids):
            raise ValueError("train_ids must be unique")
        self.metric = metric
        self.query_chunk, self.reference_chunk = query_chunk, reference_chunk
        features = train_features.to(device) if device is not None else train_features
        features = features.float()
        if metric == "cosine":
            features = nn.functional.normalize(features, dim=1)
        self.features = features
        self.squared_norms = features.square().sum(1)
        if near_duplicate < 0:
            raise ValueError(f"near_duplicate must be >= 0 (a fraction of the pair's mean feature norm), got {near_duplicate}")
        self.near_duplicate = float(near_duplicate)
        self.groups = None if groups is None else {str(i): str(g) for i, g in groups.items()}
        self.group_codes: dict[str, int] = {}
        self.row_groups = torch.full((len(self.ids),), -1, dtype=torch.long, device=features.device)
        if self.groups is not None:
            missing = [i for i in self.ids if i not in self.groups]
            if missing:
                raise KeyError(f"groups name no group for {len(missing)} training ids (first: {missing[0]!r}); "
                               "give every image its source group (e.g. the photo a rendering comes from)")
            codes = [self.group_codes.setdefault(self.groups[i], len(self.group_codes)) for i in self.ids]
            self.row_groups = torch.tensor(codes, dtype=torch.long, device=features.device)

    def largest_group(self) -> int:
        """Most training rows one query can lose to self / group exclusion (1 without groups)."""
        return int(torch.bincount(self.row_groups).max()) if self.groups is not None else 1

    def query_group_codes(self, query_ids: Sequence[str]) -> Tensor:
        """Group code per query (Q,), -1 for none; KeyError naming a query without a group when groups are set."""
        if self.groups is None:
            return torch.full((len(query_ids),), -1, dtype=torch.long)
        missing = [q for q in query_ids if q not in self.groups]
        if missing:
            raise KeyError(f"no source group for {len(missing)} queries (first: {missing[0]!r}); "
                           "the index's groups must cover every query")
        return torch.tensor([self.group_codes.get(self.groups[q], -2) for q in query_ids], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index tensors."""
        return self.features.numel() * self.features.element_size() + self.squared_norms.numel() * 4

    def _block_distances(self, queries: Tensor, query_norms: Tensor, start: int, stop: int) -> Tensor:
        """Distances (q, stop - start) between a query block and index rows [start, stop)."""
        dots = queries @ self.features[start:stop].T  # the only (q, stop - start) buffer: updated in place
        if self.metric == "cosine":
            return dots.neg_().add_(1.0)
        dots.mul_(-2.0).add_(query_norms[:, None]).add_(self.squared_norms[None, start:stop])
        return dots.clamp_min_(0.0).sqrt_()

    def _mask_excluded(self, block: Tensor, query_norms: Tensor, own_group: Tensor, start: int, stop: int) -> None:
        """Set to +inf (in place) the distances of a block to same-group rows and to near-duplicates."""
        if self.groups is not None:
            block.masked_fill_(own_group[:, None] == self.row_groups[None, start:stop], float("inf"))
        if self.near_duplicate > 0:
            if self.metric == "cosine":
                scale = torch.ones_like(block)
            else:
                scale = (query_norms.sqrt()[:, None] + self.squared_norms[None, start:stop].sqrt()) / 2
            block.masked_fill_(block <= self.near_duplicate * scale, float("inf"))

    @torch.no_grad()
    def search(
        self,
        query_features: Tensor,
        k: int,
        query_ids: Sequence[str] | None = None,
        exclude_self: bool = True,
    ) -> SearchResult:
        """k nearest training rows per query in ascending distance, excluding (when exclude_self) the query itself, the
        training rows of its source group (``groups``) and near-duplicates: rows at a distance <= near_duplicate x
        the mean norm of the pair (L2; cosine: distance <= near_duplicate), e.g. the same photo under another id."""
        if query_features.ndim != 2 or query_features.shape[1] != self.features.shape[1]:
            raise ValueError(
                f"query_features must be (Q, {self.features.shape[1]}), got {tuple(query_features.shape)}"
            )
        if query_ids is not None and len(query_ids) != query_features.shape[0]:
            raise ValueError(f"len(query_ids) = {len(query_ids)} != number of query rows {query_features.shape[0]}")
        if exclude_self and query_ids is None:
            raise ValueError("exclude_self=True needs query_ids (to know which queries are training images)")
        query_ids = [str(i) for i in query_ids] if query_ids is not None else [f"query_{i}" for i in range(len(query_features))]
        self_rows = torch.tensor(
            [self.position.get(q, -1) if exclude_self else -1 for q in query_ids], dtype=torch.long
        )
        available = len(self) - (self.largest_group() if exclude_self and self.groups is not None
                                 else int((self_rows >= 0).any()))
        if not 1 <= k <= available:
            raise ValueError(f"k must be in [1, {available}] for an index of {len(self)} training rows, got {k}")
        device = self.features.device
        all_indices, all_distances = [], []
        for q_start in range(0, len(query_ids), self.query_chunk):
            queries = query_features[q_start : q_start + self.query_chunk].to(device).float()
            if self.metric == "cosine":
                queries = nn.functional.normalize(queries, dim=1)
            query_norms = queries.square().sum(1)
            own = self_rows[q_start : q_start + self.query_chunk].to(device)
            own_group = (self.query_group_codes(query_ids[q_start : q_start + self.query_chunk]).to(device)
                         if exclude_self else None)
            best_d = torch.full((len(queries), k), float("inf"), device=device)
            best_i = torch.full((len(queries), k), -1, dtype=torch.long, device=device)
            for r_start in range(0, len(self), self.reference_chunk):
                r_stop = min(r_start + self.reference_chunk, len(self))
                block = self._block_distances(queries, query_norms, r_start, r_stop)
                width = r_stop - r_start
                # a training query's own row gets distance +inf (gather/scatter: no host sync)
                own_column = (own - r_start).clamp(0, width - 1)[:, None]
                own_inside = ((own >= r_start) & (own < r_stop))[:, None]
                current = block.gather(1, own_column)
                block.scatter_(1, own_column, torch.where(own_inside, torch.full_like(current, float("inf")), current))
                if exclude_self:
                    self._mask_excluded(block, query_norms, own_group, r_start, r_stop)
                block_d, block_i = block.topk(min(k, width), dim=1, largest=False, sorted=False)
                candidates_d = torch.cat([best_d, block_d], dim=1)
                candidates_i = torch.cat([best_i, block_i + r_start], dim=1)
                best_d, order = candidates_d.topk(k, dim=1, largest=False, sorted=True)
                best_i = candidates_i.gather(1, order)
            if exclude_self and bool(torch.isinf(best_d).any()):
                raise ValueError(f"fewer than k={k} training images remain for some queries once self, source group and "
                                 "near-duplicates are excluded; lower k")
            all_indices.append(best_i.cpu())
            all_distances.append(best_d.cpu())
        indices = torch.cat(all_indices)
        ref_ids = [[self.ids[j] for j in row] for row in indices.tolist()]
        return SearchResult(query_ids, ref_ids, indices, torch.cat(all_distances))


def build_index(
    train_features: Tensor,
    train_ids: Sequence[str],
    metric: Metric = "l2",
    forbidden_ids: Iterable[str] | None = None,
    query_chunk: int = 1024,
    reference_chunk: int = 65536,
    device: str | torch.device | None = None,
    groups: Mapping[str, str] | None = None,
    near_duplicate: float = 1e-3,
) -> TopKIndex:
    """Top-k index over the TRAINING split; ReferenceLeakError if a training id is in `forbidden_ids` (val/test).
    `groups` (id -> source group) and `near_duplicate` set what a query never retrieves (TopKIndex.search)."""
    if forbidden_ids is not None:
        leaked = set(map(str, train_ids)) & set(map(str, forbidden_ids))
        if leaked:
            raise ReferenceLeakError(
                f"{len(leaked)} ids of the index are held-out (val/test) images, e.g. {sorted(leaked)[:3]}; "
                "build the index from the training split only"
            )
    return TopKIndex(train_features, train_ids, metric, query_chunk, reference_chunk, device, groups, near_duplicate)


def assert_references_train_only(
    references: SearchResult | Mapping[str, Sequence[str]],
    train_ids: Iterable[str],
    held_out_ids: Iterable[str] = (),
    groups: Mapping[str, str] | None = None,
) -> None:
    """Raise ReferenceLeakError unless every reference is a training id, none is held out, none is its own query
    and (with `groups`, id -> source group) none comes from the query's own group."""
    mapping = references.as_dict() if isinstance(references, SearchResult) else references
    train = set(map(str, train_ids))
    held_out = set(map(str, held_out_ids))
    overlap = train & held_out
    if overlap:
        raise ReferenceLeakError(f"train and held-out ids overlap ({len(overlap)} ids, e.g. {sorted(overlap)[:3]})")
    for query, refs in mapping.items():
        refs = [str(r) for r in refs]
        bad = [r for r in refs if r not in train or r in held_out]
        if bad:
            raise ReferenceLeakError(f"query {query!r} has non-training references {bad[:3]}")
        if str(query) in refs:
            raise ReferenceLeakError(f"query {query!r} is its own reference; search with exclude_self=True")
        if groups is not None and str(query) in groups:
            same = [r for r in refs if groups.get(r) == groups[str(query)]]
            if same:
                raise ReferenceLeakError(f"query {query!r} has references {same[:3]} from its own source group "
                                         f"{groups[str(query)]!r}; pass groups to the index")


def random_references(
    query_ids: Sequence[str], train_ids: Sequence[str], k: int, seed: int = 0, groups: Mapping[str, str] | None = None
) -> SearchResult:
    """k distinct random training references per query (never the query itself nor, with `groups` (id -> source
    group), an image of its group); distances are NaN."""
    train_ids = [str(i) for i in train_ids]
    generator = torch.Generator().manual_seed(seed)
    group_of = {str(i): str(g) for i, g in groups.items()} if groups is not None else {}
    train_groups = [group_of.get(i) for i in train_ids]
    group_size = pd.Series(train_groups, dtype=object).value_counts().to_dict() if groups is not None else {}
    train_set, rows = set(train_ids), []
    for query in map(str, query_ids):
        own = group_of.get(query)
        available = len(train_ids) - max(group_size.get(own, 0), int(query in train_set))
        if k > available:
            raise ValueError(f"k={k} random references for {query!r} need {k} training images other than itself and "
                             f"its source group, got {available}")
        chosen: list[int] = []
        while len(chosen) < k:  # rejection sampling: O(k) per query whatever the training set's size
            for j in torch.randint(len(train_ids), (2 * k + 4,), generator=generator).tolist():
                if j not in chosen and train_ids[j] != query and (own is None or train_groups[j] != own):
                    chosen.append(j)
        rows.append(chosen[:k])
    indices = torch.tensor(rows, dtype=torch.long).reshape(len(rows), k)
    ref_ids = [[train_ids[j] for j in row] for row in rows]
    return SearchResult([str(q) for q in query_ids], ref_ids, indices, torch.full(indices.shape, float("nan")))


def save_references(result: SearchResult, path: str | os.PathLike) -> Path:
    """Write one line per query, 'query_id ref1 ... refk' (the official index format)."""
    path = resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{q} {' '.join(refs)}\n" for q, refs in zip(result.query_ids, result.ref_ids, strict=True)))
    return path


def load_references(path: str | os.PathLike, strip_suffix: str = "") -> dict[str, list[str]]:
    """Read 'query ref1 ... refk' lines (CRLF tolerated) into query_id -> refs, removing `strip_suffix` from ids."""
    path = resolve(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference index file not found: {path}")

    def clean(name: str) -> str:
        return name[: -len(strip_suffix)] if strip_suffix and name.endswith(strip_suffix) else name

    mapping = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            mapping[clean(parts[0])] = [clean(p) for p in parts[1:]]
    return mapping


def search_in_blocks(index: TopKIndex, store: FeatureStore, query_ids: Sequence[str], k: int) -> SearchResult:
    """index.search over the queries' stored features, one block of index.query_chunk rows at a time, so no copy of
    every query's features is ever held (at 255k x 6,144 float32 that copy alone is 6 GiB)."""
    step = index.query_chunk
    blocks = [query_ids[start:start + step] for start in range(0, len(query_ids), step)] or [[]]
    return SearchResult.concat([index.search(store.rows(block), k, query_ids=block) for block in blocks])


def references_for_splits(
    store: FeatureStore,
    splits: Mapping[str, Sequence[str]],
    k: int,
    metric: Metric = "l2",
    reference_mode: Literal["retrieved", "random"] = "retrieved",
    seed: int = 0,
    groups: Mapping[str, str] | None = None,
    **index_kwargs,
) -> dict[str, SearchResult]:
    """References of every split's images from the training split only, leak guard asserted; see module docs.
    `groups` (id -> source group, every id of `splits`): no query gets an image of its own group."""
    if "train" not in splits:
        raise ValueError(f"splits need a 'train' entry (the only reference pool), got {sorted(splits)}")
    train_ids = [str(i) for i in splits["train"]]
    held_out = [str(i) for name, ids in splits.items() if name != "train" for i in ids]
    if reference_mode == "retrieved":
        index = build_index(store.rows(train_ids), train_ids, metric=metric, forbidden_ids=held_out, groups=groups,
                            **index_kwargs)
        results = {name: search_in_blocks(index, store, list(map(str, ids)), k) for name, ids in splits.items()}
    elif reference_mode == "random":
        results = {name: random_references(list(ids), train_ids, k, seed=seed, groups=groups)
                   for name, ids in splits.items()}
    else:
        raise ValueError(f"reference_mode must be 'retrieved' or 'random', got {reference_mode!r}")
    for result in results.values():
        assert_references_train_only(result, train_ids, held_out_ids=held_out, groups=groups)
    return results


# --------------------------------------------------------------------------- dataset
class ReferenceGraphDataset(Dataset):
    """Items with node features (1 + k, D): the query then its references by rank, plus mos/dist labels."""

    def __init__(
        self,
        frame: pd.DataFrame,
        node_store: FeatureStore,
        references: SearchResult | Mapping[str, Sequence[str]] | None,
        num_references: int = 4,
        reference_fill: Tensor | None = None,
    ) -> None:
        if num_references < 0:
            raise ValueError(f"num_references must be >= 0, got {num_references}")
        if reference_fill is not None and tuple(reference_fill.shape) != (node_store.dim,):
            raise ValueError(f"reference_fill must be one feature ({node_store.dim},), got {tuple(reference_fill.shape)}")
        if references is None and reference_fill is None:
            raise ValueError("ReferenceGraphDataset needs references, or reference_fill to replace them")
        mapping = references.as_dict() if isinstance(references, SearchResult) else references
        self.image_ids = frame["image_id"].astype(str).tolist()
        rows = []
        for image_id in self.image_ids:
            if reference_fill is not None:  # the references are replaced: the query's row stands in for them
                rows.append([image_id] * (1 + num_references))
                continue
            refs = list(mapping.get(image_id, [])) if num_references else []
            if num_references and image_id not in mapping:
                raise KeyError(f"no references for image {image_id!r}; search the index for every id of the frame")
            if len(refs) < num_references:
                raise ValueError(f"image {image_id!r} has {len(refs)} references, {num_references} needed")
            rows.append([image_id, *refs[:num_references]])
        missing = [i for row in rows for i in row if i not in node_store.position]
        if missing:
            raise KeyError(f"{len(missing)} node ids have no feature in the store (first: {missing[0]!r})")
        self.node_ids = rows
        self.node_rows = torch.tensor([[node_store.position[i] for i in row] for row in rows], dtype=torch.long)
        self.features = node_store.features
        self.store_key = node_store.key
        self.reference_fill = None if reference_fill is None else reference_fill.float()
        self.mos = torch.tensor(frame["mos"].to_numpy(np.float32)) if "mos" in frame.columns else None
        has_dist = all(c in frame.columns for c in DIST_COLUMNS)
        self.dist = torch.tensor(frame[DIST_COLUMNS].to_numpy(np.float32)) if has_dist else None

    def __len__(self) -> int:
        return len(self.image_ids)

    def fingerprint(self) -> str:
        """Hash of the graphs: node ids (query and references), their features (the store's key when cached), labels."""
        features = self.store_key if self.store_key is not None else self.features[self.node_rows]
        fill = [] if self.reference_fill is None else ["reference_fill", self.reference_fill]
        return run_key("ReferenceGraphDataset", self.node_ids, features, self.mos, self.dist, *fill)

    def node_features(self, index: int | slice | Tensor) -> Tensor:
        """Node features (..., 1 + k, D) of graph(s) `index`: stored rows, references replaced by reference_fill if set."""
        nodes = self.features[self.node_rows[index]].float()
        if self.reference_fill is not None:
            nodes[..., 1:, :] = self.reference_fill
        return nodes

    def __getitem__(self, index: int) -> dict:
        item = {"nodes": self.node_features(index), "image_id": self.image_ids[index]}
        if self.mos is not None:
            item["mos"] = self.mos[index]
        if self.dist is not None:
            item["dist"] = self.dist[index]
        return item


# --------------------------------------------------------------------------- one call for a chapter
@dataclass
class ReferenceGraphData:
    """A labelled set with its splits, node / retrieval feature stores and each split's retrieved references."""

    frame: pd.DataFrame
    splits: dict[str, list[str]]
    node_store: FeatureStore
    retrieval_store: FeatureStore
    references: dict[str, SearchResult]
    image_dir: Path | None = None
    groups: dict[str, str] | None = None  # id -> source group, excluded from its images' references
    metric: str = "l2"  # the retrieval metric the references were searched with

    def image_path(self, image_id: str) -> Path:
        """Image file of `image_id` (the frame's path column, else <image_dir>/<image_id>.jpg)."""
        row = self.frame.index[self.frame["image_id"].astype(str) == str(image_id)]
        if len(row) == 0:
            raise KeyError(f"image id {image_id!r} is not in this set")
        return _image_paths(self.frame.loc[row], self.image_dir)[0]

    def datasets(
        self, num_references: int = 4, reference_mode: ReferenceMode = "retrieved", seed: int = 0
    ) -> dict[str, ReferenceGraphDataset]:
        """One ReferenceGraphDataset per split, references filled by `reference_mode` (REFERENCE_MODES)."""
        if reference_mode not in REFERENCE_MODES:
            raise ValueError(f"reference_mode must be one of {REFERENCE_MODES}, got {reference_mode!r}")
        references, fill = self.references, None
        if reference_mode == "random":
            references = references_for_splits(self.retrieval_store, self.splits, max(num_references, 1),
                                               reference_mode="random", seed=seed, groups=self.groups)
        elif reference_mode == "query_copies":
            references = {name: {q: [q] * num_references for q in ids} for name, ids in self.splits.items()}
        elif reference_mode == "mean":
            references = {name: None for name in self.splits}
            fill = self.node_store.rows(self.splits["train"]).float().mean(dim=0)
        by_id = self.frame.set_index(self.frame["image_id"].astype(str), drop=False)
        return {
            name: ReferenceGraphDataset(by_id.loc[ids].reset_index(drop=True), self.node_store, references[name],
                                        num_references, reference_fill=fill)
            for name, ids in self.splits.items()
        }


def prepare_reference_graph_data(
    frame: pd.DataFrame,
    image_dir: str | os.PathLike | None,
    splits: Mapping[str, Sequence[str]],
    *,
    node_backbone: tuple[str, str | None],
    retrieval_backbone: tuple[str, str | None],
    cache_dir: str | os.PathLike,
    k: int = 4,
    metric: Metric = "l2",
    image_size: int | None = None,
    retrieval_image_size: int | None = None,
    retrieval_transform: Callable | None = None,
    fingerprint: Literal["stat", "bytes"] = "stat",
    batch_size: int = 32,
    device: str | torch.device | None = None,
    groups: Mapping[str, str] | None = None,
    node_encoder: Callable[[], nn.Module] | None = None,
) -> ReferenceGraphData:
    """Cached node and retrieval features ((name, weights) pairs) of `frame`, and top-k train-only references per split.

    `groups` (id -> source group) keeps a query's own group out of its references; `node_encoder` builds the node
    feature extractor (e.g. MILNet's multi-level MLSP encoder) on a cache miss instead of the named backbone, whose
    name then keys the cache.

    `retrieval_transform` replaces the retrieval backbone's default eval transform (e.g. MILNet's as-published
    unnormalised full-resolution input; images of different sizes are then extracted one at a time).
    """
    kwargs = dict(cache_dir=cache_dir, fingerprint=fingerprint, device=device)
    node_store = extract_features(
        frame, image_dir, backbone_name=node_backbone[0], weights=node_backbone[1], image_size=image_size,
        backbone=node_encoder, batch_size=batch_size, **kwargs,
    )
    retrieval_size = retrieval_image_size if retrieval_image_size is not None else image_size
    same = tuple(retrieval_backbone) == tuple(node_backbone) and node_encoder is None
    if same and retrieval_size == image_size and retrieval_transform is None:
        retrieval_store = node_store
    elif retrieval_transform is not None:
        retrieval_store = extract_features(
            frame, image_dir, backbone_name=retrieval_backbone[0], weights=retrieval_backbone[1],
            transform=retrieval_transform, batch_size=1, **kwargs,
        )
    else:
        retrieval_store = extract_features(
            frame, image_dir, backbone_name=retrieval_backbone[0], weights=retrieval_backbone[1],
            image_size=retrieval_size, batch_size=batch_size, **kwargs,
        )
    splits = {name: [str(i) for i in ids] for name, ids in splits.items()}
    groups = None if groups is None else {str(i): str(g) for i, g in groups.items()}
    references = references_for_splits(retrieval_store, splits, k, metric=metric, groups=groups)
    return ReferenceGraphData(frame, splits, node_store, retrieval_store, references,
                              resolve(image_dir) if image_dir is not None else None, groups, metric)
