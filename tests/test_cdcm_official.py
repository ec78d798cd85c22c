"""CDCM-Net's released weights: the official key layout (written out from leiyaqi/CDCM-Net@18a75e2's MMDF and
Memory modules) maps onto CDCMNet key for key and shape for shape, and loads only into the as-published variant."""
from __future__ import annotations

import pytest
import torch

from iaa_lib.cdcm.model import CDCMNet
from iaa_lib.cdcm.official import load_official_cdcm, official_key_map

TINY = dict(dim=32, visual_dim=32, text_dim=32, n_slot=8, heads=4, mlp_dim=64, image_depth=1, text_depth=1, fusion_depth=2)


def official_shapes(dim=512, mlp=1024, slots=512, depths=(3, 3, 6), bins=10) -> tuple[dict, dict]:
    """({MMDF key: shape}, {Memory key: shape}) as the official modules name and size them."""
    fusion = {}
    for encoder, depth in zip(("img_encoder", "text_encoder", "fusion_encoder"), depths):
        for i in range(depth):
            p = f"{encoder}.layer.{i}."
            for norm in ("attention_norm", "ffn_norm"):
                fusion[p + norm + ".weight"] = fusion[p + norm + ".bias"] = (dim,)
            for proj in ("query", "key", "value", "out"):
                fusion[p + f"attn.{proj}.weight"], fusion[p + f"attn.{proj}.bias"] = (dim, dim), (dim,)
            fusion[p + "ffn.fc1.weight"], fusion[p + "ffn.fc1.bias"] = (mlp, dim), (mlp,)
            fusion[p + "ffn.fc2.weight"], fusion[p + "ffn.fc2.bias"] = (dim, mlp), (dim,)
        fusion[f"{encoder}.encoder_norm.weight"] = fusion[f"{encoder}.encoder_norm.bias"] = (dim,)
    for view in (0, 1):
        c = f"Confidence.{{}}.{view}.clf.0."
        fusion[c.format("FeatureInforEncoder") + "weight"], fusion[c.format("FeatureInforEncoder") + "bias"] = (dim, dim), (dim,)
        fusion[c.format("ConfidenceLayer") + "weight"], fusion[c.format("ConfidenceLayer") + "bias"] = (1, dim), (1,)
        fusion[c.format("ClassifierLayer") + "weight"], fusion[c.format("ClassifierLayer") + "bias"] = (bins, dim), (bins,)
    fusion.update({"proj.0.weight": (dim, 2 * dim), "proj.0.bias": (dim,), "proj.1.weight": (bins, dim), "proj.1.bias": (bins,)})
    memory = {"key": (slots, dim), "value": (slots, dim), "q_embd.weight": (dim, dim), "q_embd.bias": (dim,),
              "v_embd.weight": (dim, dim), "v_embd.bias": (dim,), "fusion.weight": (dim, 2 * dim), "fusion.bias": (dim,)}
    return fusion, memory


def random_state(shapes: dict, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=generator) for k, shape in shapes.items()}


def numel(shapes: dict) -> int:
    return sum(torch.Size(s).numel() for s in shapes.values())


def test_official_layout_has_the_spec_parameter_counts_and_matches_the_full_model():
    fusion, memory = official_shapes()
    assert numel(fusion) == 26_303_008 and numel(memory) == 1_574_400  # MMDF and Memory sizes in the CDCM spec
    with torch.device("meta"):
        model = CDCMNet("full", variant="as_published")
    own = model.state_dict()
    mapped = {(file, key): tuple(own[ours].shape) for ours, (file, key) in official_key_map(model).items()}
    unused = {k for k in fusion if k.startswith("Confidence.FeatureInforEncoder.")}
    assert mapped == {**{("mmfusion", k): s for k, s in fusion.items() if k not in unused},
                      **{("memory", k): s for k, s in memory.items()}}


def test_released_files_load_into_the_as_published_model(tmp_path):
    fusion_shapes, memory_shapes = official_shapes(dim=32, mlp=64, slots=8, depths=(1, 1, 2))
    fusion, memory = random_state(fusion_shapes, 0), random_state(memory_shapes, 1)
    torch.save({"module." + k: v for k, v in fusion.items()}, tmp_path / "0.87AVA_mem_conf_mmfusion.pth")
    torch.save(memory, tmp_path / "0.87AVA_mem_conf_memory.pth")
    model = CDCMNet("full", variant="as_published", **TINY).eval()
    report = load_official_cdcm(model, tmp_path / "0.87AVA_mem_conf_mmfusion.pth", tmp_path / "0.87AVA_mem_conf_memory.pth")
    assert report["dropped"] == sorted(f"mmfusion:{k}" for k in fusion if "FeatureInforEncoder" in k)
    assert len(report["loaded"]) == len(model.state_dict())
    assert torch.equal(model.image_encoder.blocks[0].query.weight, fusion["img_encoder.layer.0.attn.query.weight"])
    assert torch.equal(model.fusion_encoder.blocks[1].mlp_norm.bias, fusion["fusion_encoder.layer.1.ffn_norm.bias"])
    assert torch.equal(model.text_encoder.norm.weight, fusion["text_encoder.encoder_norm.weight"])
    assert torch.equal(model.modality_confidence["text"].weight, fusion["Confidence.ConfidenceLayer.1.clf.0.weight"])
    assert torch.equal(model.modality_classifier["image"].bias, fusion["Confidence.ClassifierLayer.0.clf.0.bias"])
    assert torch.equal(model.head_hidden.weight, fusion["proj.0.weight"]) and torch.equal(model.head_out.bias, fusion["proj.1.bias"])
    assert torch.equal(model.memory.text_query_proj.weight, memory["v_embd.weight"])
    assert torch.equal(model.memory.recall_proj.weight, memory["fusion.weight"])
    assert torch.equal(model.memory.key, memory["key"])
    with torch.no_grad():
        pred = model(visual_tokens=torch.randn(2, 50, 32))["pred"]
    assert pred.shape == (2, 10) and torch.allclose(pred.sum(-1), torch.ones(2), atol=1e-5)


def test_converter_refuses_other_variants_and_mismatched_files(tmp_path):
    fusion_shapes, memory_shapes = official_shapes(dim=32, mlp=64, slots=8, depths=(1, 1, 2))
    torch.save(random_state(fusion_shapes, 0), tmp_path / "mmfusion.pth")
    torch.save(random_state(memory_shapes, 1), tmp_path / "memory.pth")
    with pytest.raises(ValueError, match=r"variant='as_published'.*this model has variant='textbook'"):
        load_official_cdcm(CDCMNet("full", variant="textbook", **TINY), tmp_path / "mmfusion.pth", tmp_path / "memory.pth")
    with pytest.raises(ValueError, match="needs the memory state dict"):
        load_official_cdcm(CDCMNet("full", variant="as_published", **TINY), tmp_path / "mmfusion.pth")
    wider = CDCMNet("full", variant="as_published", **{**TINY, "mlp_dim": 128})
    with pytest.raises(ValueError, match=r"ffn.fc1.weight has shape \(64, 32\), model image_encoder.blocks.0.fc1.weight"):
        load_official_cdcm(wider, tmp_path / "mmfusion.pth", tmp_path / "memory.pth")
    with pytest.raises(FileNotFoundError, match="0.87AVA_mem_conf_mmfusion.pth"):
        load_official_cdcm(CDCMNet("full", variant="as_published", **TINY), tmp_path / "absent.pth")
    real_text = CDCMNet("full", variant="as_published", modality="real", **TINY)  # MMDF with ismemroy=False
    assert "memory.key" not in load_official_cdcm(real_text, tmp_path / "mmfusion.pth")["loaded"]
