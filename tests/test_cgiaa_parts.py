"""CG-IAA unit tests: attribute labelling, VLAP training loop and its checkpoint, MAP end-to-end model, catalogue."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from iaa_lib.blocks.text import split_sentences
from iaa_lib.cgiaa.attributes import (ATTRIBUTES, PROMPTS, AttributeSplitter, attribute_counts, keyword_hits,
                                      label_comments)
from iaa_lib.cgiaa.pipeline import VLAPSchedule, attribute_splitter, train_vlap
from iaa_lib.cgiaa.model import AestheticCLIP, CGIAA, MAPHead


def test_punctuated_split_keeps_real_sentences():
    text = "Great light! The horizon is tilted. Ok\nNice bokeh though? Shot at f/2.8 and 1/250s."
    assert split_sentences(text, "punctuated") == ["Great light!", "The horizon is tilted.", "Nice bokeh though?",
                                                   "Shot at f/2.8 and 1/250s."]


@pytest.mark.parametrize("sentence, attribute", [
    ("The colours are vivid and the lighting is warm.", "colour_and_light"),
    ("I would crop tighter and put the horizon on a third.", "composition"),
    ("The eyes are not in focus, too much blur.", "depth_and_focus"),
    ("I love the mood of this one.", "general"),
])
def test_lexicon_labels_hand_checked_sentences(sentence, attribute):
    [assignment] = AttributeSplitter().classify([sentence])
    assert assignment.attribute == attribute
    assert assignment.method == ("default" if attribute == "general" else "lexicon")


def test_overlapping_keywords_count_once_and_ties_go_to_first_keyword():
    assert len(keyword_hits("Good placement")["composition"]) == 1  # "placement" and "plac\w+" overlap
    [tie] = AttributeSplitter().classify(["Sharp subject, nice background."])  # sharp (focus) vs background
    assert tie.attribute == "depth_and_focus" and tie.method == "default"


def _fake_encoder(vectors: dict[str, list[float]]):
    """Text encoder from a lookup table; every attribute prompt maps to its own axis."""
    table = dict(vectors)
    for k, attribute in enumerate(ATTRIBUTES):
        for prompt in PROMPTS[attribute]:
            table[prompt] = [1.0 if i == k else 0.0 for i in range(4)]
    return lambda texts: torch.tensor([table[t] for t in texts])


def test_zero_shot_refines_ties_and_hitless_sentences_with_margin():
    encoder = _fake_encoder({
        "Sharp subject, nice background.": [0.0, 0.9, 0.3, 0.0],  # tie focus/composition -> composition
        "What a mood here.": [0.6, 0.0, 0.0, 0.5],  # no keyword; colour beats general by 0.1 > margin
        "Nice one indeed.": [0.52, 0.0, 0.0, 0.5],  # no keyword; within the margin -> general
    })
    labels = AttributeSplitter(encoder=encoder, margin=0.05).classify(
        ["Sharp subject, nice background.", "What a mood here.", "Nice one indeed.", "Tack sharp focus."])
    assert [a.attribute for a in labels] == ["composition", "colour_and_light", "general", "depth_and_focus"]
    assert [a.method for a in labels] == ["zero-shot", "zero-shot", "zero-shot", "lexicon"]


def test_attribute_splitter_is_the_lexicon_unless_zero_shot():
    splitter = attribute_splitter(zero_shot=False)
    assert splitter.encoder is None
    assert [a.attribute for a in splitter.classify(["I would crop tighter and put the horizon on a third."])] == ["composition"]


def test_label_comments_and_counts_table():
    frame = label_comments({"1": ["Lovely colours. Bad crop."], "2": ["Meh, not for me."]}, AttributeSplitter())
    assert list(frame["image_id"]) == ["1", "1", "2"]
    counts = attribute_counts(frame)
    assert list(counts.index) == list(ATTRIBUTES) and counts["total"].sum() == 3
    assert counts.loc["composition", "total"] == 1


class _TinyText(nn.Module):
    """Bag-of-token text tower for tests: tokens (N, L) -> (N, E)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(49408, dim, mode="mean")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens)


def _tiny_clip() -> AestheticCLIP:
    torch.manual_seed(0)
    image_tower = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())  # (B, 3, H, W) -> (B, 12)
    return AestheticCLIP(image_tower, 12, _TinyText(8), 8, context_length=16, mean=(0.5,) * 3, std=(0.5,) * 3,
                         image_size=8, temperature=0.07)


def test_train_vlap_lowers_the_contrastive_loss():
    clip = _tiny_clip()
    features = torch.randn(16, 12)
    words = ["red", "blue", "sharp", "blurry", "tilted", "centred", "dark", "bright"]
    pairs = pd.DataFrame({"image_index": list(range(16)), "text": [f"very {words[i % 8]}." for i in range(16)]})
    history = train_vlap(clip, pairs, lambda idx: features[idx], VLAPSchedule(steps=60, batch_size=8, lr=0.05))
    assert sum(history["loss"][-10:]) / 10 < sum(history["loss"][:10]) / 10
    with pytest.raises(ValueError, match="image_index and text"):
        train_vlap(clip, pairs.rename(columns={"text": "comment"}), lambda idx: features[idx], VLAPSchedule(steps=1))


def test_cgiaa_end_to_end_shapes_gradients_and_errors():
    clip = _tiny_clip()
    model = CGIAA(clip, MAPHead(12, 8, n_critiques=4, hidden=16))
    image = torch.randn(2, 3, 8, 8, requires_grad=True)
    tokens = clip.tokenize(["nice light.", "tilted.", "soft focus.", "ok."] * 2).view(2, 4, -1)
    out = model(image, tokens)
    assert out.shape == (2, 10) and torch.allclose(out.sum(1), torch.ones(2))
    out[:, -1].sum().backward()
    assert image.grad is not None and clip.text_tower.embed.weight.grad.abs().sum() > 0
    assert model.input_keys == ("image", "critique_tokens")
    with pytest.raises(ValueError, match="critique_tokens"):
        model(image.detach(), tokens[0])
    with pytest.raises(ValueError, match="image must be"):
        model(torch.randn(2, 8, 8), tokens)


def test_train_vlap_checkpoint_is_loaded_for_the_same_settings(tmp_path):
    features = torch.randn(16, 12)
    pairs = pd.DataFrame({"image_index": list(range(16)), "text": [f"tone {i % 4}." for i in range(16)]})
    trained = _tiny_clip()
    history = train_vlap(trained, pairs, lambda idx: features[idx], VLAPSchedule(steps=5, batch_size=8, lr=0.05),
                         tmp_path, {"run": 1})
    loaded = _tiny_clip()
    assert train_vlap(loaded, pairs, lambda idx: features[idx], VLAPSchedule(steps=5, batch_size=8, lr=0.05),
                      tmp_path, {"run": 1})["loss"] == history["loss"]
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))
    assert not torch.equal(_tiny_clip().proj.weight, loaded.proj.weight)


def test_book_catalogue_splits_and_catalogue_sentences(tmp_path):
    from iaa_lib.cgiaa.chapter import book_catalogue
    from iaa_lib.cgiaa.pipeline import catalogue_sentences

    catalogue = book_catalogue(tmp_path, n_synthetic=10, image_size=32, seed=1)
    assert book_catalogue(tmp_path, n_synthetic=10, image_size=32, seed=1).equals(catalogue)  # read back
    assert list(catalogue["source"].value_counts().sort_index()) == [77, 10]
    assert set(catalogue["split"]) == {"train", "val", "test"}
    synthetic = catalogue[catalogue["source"] == "synthetic"]
    sentences = catalogue_sentences(synthetic, ("train", "val", "test"))
    assert set(sentences["true_attribute"]) == set(ATTRIBUTES)
    assert sentences["image_index"].isin(synthetic.index).all()
