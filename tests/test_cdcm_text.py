"""CDCM-Net text side: sentence splitting variants, padded per-image comment features, the sentence cache, the dataset."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.cdcm.data import CDCMFeatureDataset, subset_rows
from iaa_lib.blocks.text import SentenceFeatureCache, comment_feature_rows, sentence_counts, split_sentences


def test_textbook_split_strips_digits_and_punctuation_and_drops_blank_pieces():
    comment = "Nice shot, 10/10! Is the horizon level? Sharp eyes. "
    assert split_sentences(comment) == ["Nice shot", "Is the horizon level", "Sharp eyes"]


def test_as_published_split_reproduces_the_mis_escaped_class():
    comment = "Shot 1 of 4S, so 2 0 9 \\ ok. "
    # keeps 1, 2, 3 and the backslash, deletes 0, 4-9 and every capital S; the trailing " " piece is kept
    assert split_sentences(comment, "as_published") == ["hot 1 of  so 2   \\ ok", " "]
    assert split_sentences(comment, "textbook") == ["Shot of S so ok"]
    with pytest.raises(ValueError, match="variant"):
        split_sentences(comment, "paper")


class CountingEncoder(nn.Module):
    """Deterministic 3-d 'embedding' (length, vowels, 1) that counts how many texts it encoded."""

    dim = 3

    def __init__(self):
        super().__init__()
        self.calls = 0

    def encode(self, texts, batch_size=64):
        self.calls += len(texts)
        return torch.tensor([[len(t), sum(c in "aeiou" for c in t), 1.0] for t in texts])


def test_comment_rows_are_padded_truncated_and_cached(tmp_path):
    encoder = CountingEncoder()
    cache = SentenceFeatureCache(encoder, "counting", None, tmp_path)
    comments = {"a": ["One. Two. Three."], "b": ["Two. Four", "Five. Six."]}
    features, mask, sentences = comment_feature_rows(["a", "b", "c"], comments, cache, max_sentences=3)
    assert features.shape == (3, 3, 3) and mask.tolist() == [[True] * 3, [True] * 3, [False] * 3]
    assert sentences[1] == ["Two", "Four", "Five"]  # truncated to 3 rows
    torch.testing.assert_close(features[0, 1], torch.tensor([3.0, 1.0, 1.0]))
    assert features[2].abs().sum() == 0
    assert encoder.calls == 5  # "Two" once
    again = SentenceFeatureCache(CountingEncoder(), "counting", None, tmp_path)
    again_features, _, _ = comment_feature_rows(["a", "b", "c"], comments, again, max_sentences=5)
    assert again.encoder.calls == 1  # only "Six" was not cached
    assert again_features.shape == (3, 5, 3)
    assert sentence_counts(["a", "b", "c"], comments) == {"a": 3, "b": 4, "c": 0}


def test_cache_refuses_another_encoders_file(tmp_path):
    cache = SentenceFeatureCache(CountingEncoder(), "counting", None, tmp_path)
    cache.features(["x"])
    cache.path.rename(tmp_path / "moved.pt")
    other = SentenceFeatureCache(CountingEncoder(), "other", None, tmp_path)
    (tmp_path / "moved.pt").rename(other.path)
    with pytest.raises(ValueError, match="delete it"):
        SentenceFeatureCache(CountingEncoder(), "other", None, tmp_path)


def test_feature_dataset_items_and_bad_shapes():
    frame = pd.DataFrame({"image_id": ["a", "b"], "mos": [5.0, 6.0], **{c: [0.1, 0.1] for c in DIST_COLUMNS}})
    data = CDCMFeatureDataset(frame, torch.randn(2, 4, 6), torch.randn(2, 3, 5), torch.ones(2, 3, dtype=torch.bool))
    item = data[1]
    assert item["visual_tokens"].shape == (4, 6) and item["comment_features"].shape == (3, 5)
    assert item["dist"].shape == (10,) and item["image_id"] == "b"
    with pytest.raises(ValueError, match="visual_tokens"):
        CDCMFeatureDataset(frame, torch.randn(3, 4, 6), torch.randn(2, 3, 5), torch.ones(2, 3, dtype=torch.bool))
    assert subset_rows(["b"], ["a", "b"]).tolist() == [1]
    with pytest.raises(KeyError, match="z"):
        subset_rows(["z"], ["a", "b"])
