"""MILNet's entry in the book: registry name, benchmark, comparison recipe, published rows."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from iaa_lib.blocks.retrieval import prepare_reference_graph_data
from iaa_lib.milnet.chapter import PROFILES
from iaa_lib.milnet.model import RETRIEVAL_FEATURES
from iaa_lib.milnet.pipeline import node_feature_options, reduce_nodes, train_milnet
from iaa_lib.profiles import PROFILE_NAMES
from iaa_lib.spec import BenchSpec, PaperSpec
from iaa_lib.training import evaluate


def build(config: str) -> nn.Module:
    """MILNet's graph head at `config` with random weights (for the benchmark)."""
    from iaa_lib.milnet.model import MILNet

    return MILNet(config=config)


def example_inputs(model: nn.Module, batch: int, device: torch.device) -> dict[str, Tensor]:
    """Random node features (batch, num_nodes, in_dim)."""
    return {"nodes": torch.randn(batch, model.num_nodes, model.in_dim, device=device)}


def compare(data, s: dict, out_dir: Path, seed: int):
    """Train MILNet with the chapter's recipe on the protocol's split (features and references cached)."""
    recipe = replace(s["recipe"], seed=seed)
    graph = reduce_nodes(prepare_reference_graph_data(
        data.frame, None, data.splits, **node_feature_options(recipe.config),
        retrieval_backbone=RETRIEVAL_FEATURES[recipe.config], cache_dir=out_dir.parent / "features",
        k=recipe.num_references, image_size=s["image_size"], fingerprint="stat" if data.dataset == "ava" else "bytes"),
        recipe.config)
    trained = train_milnet(graph, recipe, out_dir, data.dataset)
    test = trained.loaders["test"].dataset
    references = {row[0]: list(row[1:]) for row in test.node_ids}
    _, predictions = evaluate(trained.model, trained.loaders["test"], return_predictions=True)
    return trained.model, trained.history, predictions, {"references": references}


SPEC = PaperSpec(
    name="milnet",
    title="MILNet",
    models={"milnet": "iaa_lib.milnet.model:milnet"},
    bench=BenchSpec(
        "MILNet (RsGCN head)", "node features 5×6144 (frozen extractor, precomputed)",
        "graph head only: the MLSP feature extractor is frozen and its features are cached",
        build, example_inputs),
    compare_settings={  # the chapter's recipe, node features at its image_size px (None: the backbone's own)
        name: dict(recipe=PROFILES.get(name).recipe(), image_size=PROFILES.get(name).image_size)
        for name in PROFILE_NAMES
    },
    compare=compare,
)
