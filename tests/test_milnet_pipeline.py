"""Tests of the MILNet chapter pipeline: cached synthetic data, as-published retrieval input, recipes, training."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from iaa_lib.data.labelled_sets import cached_synthetic
from iaa_lib.losses import EMDLoss
from iaa_lib.milnet.model import TracedAdaEMDLoss
from iaa_lib.milnet.pipeline import (
    MILNetRecipe,
    as_published_retrieval_transform,
    make_loss,
    milnet_graph_data,
    train_milnet,
)
from iaa_lib.blocks.retrieval import FeatureStore, ReferenceGraphData, references_for_splits


pytestmark = pytest.mark.usefixtures("one_thread")


def test_as_published_retrieval_input_is_full_resolution_and_unnormalised():
    image = Image.new("RGB", (37, 21), color=(255, 0, 51))
    tensor = as_published_retrieval_transform()(image)
    assert tensor.shape == (3, 21, 37) and tensor.dtype == torch.float32
    assert torch.allclose(tensor[:, 0, 0], torch.tensor([1.0, 0.0, 0.2]))


def test_cached_synthetic_is_generated_once(tmp_path):
    first = cached_synthetic(4, tmp_path / "syn", image_size=32, seed=1)
    mtimes = [Path(p).stat().st_mtime_ns for p in first["path"]]
    again = cached_synthetic(4, tmp_path / "syn", image_size=32, seed=1)
    assert again["image_id"].tolist() == first["image_id"].tolist()
    assert [Path(p).stat().st_mtime_ns for p in again["path"]] == mtimes
    other = cached_synthetic(5, tmp_path / "syn", image_size=32, seed=1)  # other parameters: regenerated
    assert len(other) == 5


def test_recipes_and_losses():
    assert MILNetRecipe().slug() != MILNetRecipe(inner="milnet_abs_inside").slug() != MILNetRecipe(loss="emd").slug()
    assert isinstance(make_loss(MILNetRecipe()), TracedAdaEMDLoss) and make_loss(MILNetRecipe()).inner == "true_emd"
    assert make_loss(MILNetRecipe(inner="milnet_abs_inside")).inner == "milnet_abs_inside"
    assert isinstance(make_loss(MILNetRecipe(loss="emd")), EMDLoss)
    with pytest.raises(ValueError, match="dataset must be"):
        milnet_graph_data("imagenet")


def test_train_milnet_learns_and_reloads(tmp_path):
    generator = torch.Generator().manual_seed(0)
    n, dim = 48, 8
    features = torch.randn(n, dim, generator=generator)
    score = features[:, 0]
    centres = 5.5 + 1.5 * score
    bins = torch.arange(1, 11, dtype=torch.float32)
    dist = torch.softmax(-((bins[None] - centres[:, None]) ** 2) / 2, dim=1)
    ids = [f"s{i}" for i in range(n)]
    frame = pd.DataFrame({"image_id": ids, "mos": (dist * bins).sum(1).numpy().astype(float),
                          **{f"dist_{k + 1}": dist[:, k].numpy().astype(float) for k in range(10)}})
    store = FeatureStore(ids, features)
    splits = {"train": ids[:32], "val": ids[32:40], "test": ids[40:]}
    data = ReferenceGraphData(frame, splits, store, store, references_for_splits(store, splits, k=2))
    recipe = MILNetRecipe(num_references=2, epochs=4, batch_size=8, lr=3e-3)
    first = train_milnet(data, recipe, tmp_path, "toy")
    losses = [row["train_loss"] for row in first.history["epochs"]]
    assert losses[-1] < losses[0] and first.model.num_nodes == 3
    trace = first.loss_fn.trace_frame()
    assert len(trace) == 4 * 4  # 32 graphs / batch 8 = 4 steps per epoch
    again = train_milnet(data, recipe, tmp_path, "toy")  # finished run: loaded, not retrained
    assert again.out_dir == first.out_dir and again.loss_fn.trace_frame().equals(trace)
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # the same run asked for under another folder (the comparison after the chapter): loaded through the run index,
    # AdaEMD's traced state with it, nothing trained or written there
    elsewhere = train_milnet(data, recipe, tmp_path / "compare", "toy")
    assert elsewhere.loss_fn.trace_frame().equals(trace) and not (elsewhere.out_dir / "last.pt").exists()
    for a, b in zip(first.model.state_dict().values(), elsewhere.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_reference_graph_drawing_checks_shapes_and_draws(tmp_path):
    import matplotlib.pyplot as plt

    from iaa_lib.milnet.figures import draw_reference_graph

    paths = []
    for i in range(3):
        Image.new("RGB", (20, 12), color=(80 * i, 90, 200)).save(tmp_path / f"n{i}.png")
        paths.append(tmp_path / f"n{i}.png")
    fig, ax = plt.subplots()
    affinity = torch.rand(3, 3).numpy()
    draw_reference_graph(affinity, paths, ["q", "1", "2"], ax, title="layer 1")
    assert len(ax.lines) == 3 and len(ax.artists) == 3  # 3 edges, 3 thumbnails
    with pytest.raises(ValueError, match="N image paths"):
        draw_reference_graph(affinity, paths[:2], ["q", "1"], ax)
    plt.close(fig)
