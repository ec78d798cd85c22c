"""The real-critique set: join, leak-free split, summaries; the text baselines and the papers' text-only heads,
all on small hand-made inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from iaa_lib.blocks.text import encode_texts
from iaa_lib.blocks.text_scoring import (EmbeddingTable, cached_text_embeddings, fit_ridge,
                                         fit_tfidf, pooled_embeddings, prediction_frame, top_terms)
from iaa_lib.data.critiques import (assert_no_shared_critiques, critique_split, critique_summary, join_critiques,
                                    normalise_critique)
from iaa_lib.data.labels import votes_to_frame
from iaa_lib.data.splits import SplitLeakError


def votes(ids, peak_bins):
    """Vote table with 10 votes on bin `peak` for each id (so mos == peak)."""
    rows = []
    for image_id, peak in zip(ids, peak_bins):
        row = {"image_id": image_id, **{f"votes_{k}": 0 for k in range(1, 11)}}
        row[f"votes_{peak}"] = 10
        rows.append(row)
    return votes_to_frame(pd.DataFrame(rows))


def critique_frame(n: int = 40, shared: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (5, 9))) -> pd.DataFrame:
    """n images with one own critique each; the pairs in `shared` also carry one common critique."""
    comments = {str(100 + i): [f"critique number {i} of image {i}"] for i in range(n)}
    for k, (a, b) in enumerate(shared):
        comments[str(100 + a)].append(f"Pasted  TEXT {k}")
        comments[str(100 + b)].append(f"pasted text {k} ")
    return join_critiques(comments, votes(list(comments), [1 + i % 10 for i in range(n)]))


def test_join_keeps_ids_with_both_critiques_and_votes_with_counts():
    comments = {"7": ["Nice colours.", "Too dark"], "12": ["ok"], "99": ["no votes for me"]}
    joined = join_critiques(comments, votes(["12", "7", "55"], [3, 8, 5]))
    assert joined["image_id"].tolist() == ["7", "12"]  # numeric order, the id without votes dropped
    assert joined["mos"].tolist() == [8.0, 3.0]
    assert joined["n_comments"].tolist() == [2, 1] and joined["n_words"].tolist() == [4, 1]
    assert joined["comments"].iloc[0] == ["Nice colours.", "Too dark"]
    with pytest.raises(ValueError, match="no image id"):
        join_critiques({"1": ["x"]}, votes(["2"], [5]))


def test_normalised_critiques_ignore_case_and_whitespace():
    assert normalise_critique("  Pasted\n TEXT  0 ") == "pasted text 0"


def test_split_is_seeded_sized_and_keeps_shared_critiques_together():
    frame = critique_frame()
    splits = critique_split(frame, seed=3, fractions={"test": 0.25, "val": 0.1})
    assert splits == critique_split(frame.sample(frac=1, random_state=1), seed=3, fractions={"test": 0.25, "val": 0.1})
    assert sorted(sum(splits.values(), []), key=int) == frame["image_id"].tolist()
    assert len(splits["test"]) >= 10 and len(splits["val"]) >= 4
    side = {i: name for name, ids in splits.items() for i in ids}
    assert side["100"] == side["101"] == side["102"] and side["105"] == side["109"]  # linked by pasted texts
    assert any(critique_split(frame, seed=s) != splits for s in range(4, 8))


def test_leak_guard_catches_shared_ids_and_shared_critique_texts():
    frame = critique_frame(n=6, shared=((0, 4),))
    assert_no_shared_critiques(frame, {"train": ["100", "104", "101"], "test": ["102", "103", "105"]})
    with pytest.raises(SplitLeakError, match="critique"):
        assert_no_shared_critiques(frame, {"train": ["100", "101"], "test": ["104", "102"]})
    with pytest.raises(SplitLeakError, match="share 1 id"):
        assert_no_shared_critiques(frame, {"train": ["100", "104"], "test": ["104", "102"]})


def test_split_rejects_fractions_that_leave_no_training_images():
    with pytest.raises(ValueError, match="fractions"):
        critique_split(critique_frame(), fractions={"test": 0.7, "val": 0.3})


def test_summary_counts_and_score_distribution():
    frame = critique_frame(n=4, shared=())  # mos 1, 2, 3, 4; one 6-word critique each
    full = votes([str(i) for i in range(10)], list(range(1, 11)))
    summary = critique_summary(frame, {"train": ["100", "101", "102"], "test": ["103"]}, full)
    assert summary.loc["train", "n_images"] == 3 and summary.loc["train", "n_critiques"] == 3
    assert summary.loc["train", "mos_mean"] == pytest.approx(2.0)
    assert summary.loc["train", "mos_std"] == pytest.approx(np.sqrt(2 / 3))
    assert summary.loc["all critiqued", "words_median"] == 6
    assert summary.loc["full AVA", "mos_mean"] == pytest.approx(5.5)
    assert summary.loc["full AVA", "share_high"] == pytest.approx(0.5)  # 6..10 of 1..10 are > 5
    assert np.isnan(summary.loc["full AVA", "n_critiques"])


class FakeEncoder(torch.nn.Module):
    """Embeds a text as (length, number of 'a's, 1); counts calls."""

    dim = 3

    def __init__(self):
        super().__init__()
        self.calls = 0

    def encode(self, texts, batch_size=64):
        self.calls += 1
        return torch.tensor([[len(t), t.count("a"), 1.0] for t in texts])


def test_encode_texts_keeps_input_order_while_batching_by_length():
    texts = ["aaaa", "b", "aa", "cccccc", "a"]
    out = encode_texts(FakeEncoder(), texts, batch_size=2, progress=False)
    assert out[:, 0].tolist() == [4, 1, 2, 6, 1] and out[:, 1].tolist() == [4, 0, 2, 0, 1]


def test_embedding_cache_encodes_each_text_once_and_loads_no_encoder_when_warm(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr("iaa_lib.blocks.backbones.create_text_encoder",
                        lambda name, weights=None: built.append(FakeEncoder()) or built[-1])
    first = cached_text_embeddings(["a", "bb"], tmp_path, progress=False)
    again = cached_text_embeddings(["bb", "a"], tmp_path, progress=False)
    assert len(built) == 1 and built[0].calls == 1  # the second call read the file and built no encoder
    assert torch.equal(again, first.flip(0))
    more = cached_text_embeddings(["a", "ccc"], tmp_path, progress=False)
    assert len(built) == 2 and built[1].calls == 1 and more[1].tolist() == [3.0, 0.0, 1.0]  # only "ccc" encoded
    assert len(list(tmp_path.glob("sentences_*.pt"))) == 1
    cached_text_embeddings(["a"], tmp_path, weights="other", progress=False)
    assert len(list(tmp_path.glob("sentences_*.pt"))) == 2  # other weights: another file


def test_an_unreadable_embedding_cache_is_rebuilt_with_a_warning(tmp_path, monkeypatch):
    encoder = FakeEncoder()
    monkeypatch.setattr("iaa_lib.blocks.backbones.create_text_encoder", lambda name, weights=None: encoder)
    first = cached_text_embeddings(["a", "bb"], tmp_path, progress=False)
    (cache,) = tmp_path.glob("sentences_*.pt")
    cache.write_bytes(cache.read_bytes()[:20])  # a file cut short
    with pytest.warns(UserWarning, match=cache.name):
        again = cached_text_embeddings(["a", "bb"], tmp_path, progress=False)
    assert torch.equal(first, again) and encoder.calls == 2


def test_embedding_table_and_pooling_by_hand():
    table = EmbeddingTable(["x", "y", "z"], torch.tensor([[3.0, 0.0], [0.0, 4.0], [1.0, 1.0]]))
    assert table.features(["z", "x"]).tolist() == [[1.0, 1.0], [3.0, 0.0]]
    with pytest.raises(KeyError, match="never|encode"):
        table.features(["w"])
    pooled = pooled_embeddings([["x", "y"], [], ["x"]], table)
    assert pooled[0] == pytest.approx([0.6, 0.8])  # mean (1.5, 2) has norm 2.5
    assert pooled[1].tolist() == [0.0, 0.0] and pooled[2] == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match="distinct"):
        EmbeddingTable(["x", "x"], torch.zeros(2, 2))


def test_ridge_keeps_the_alpha_with_the_best_validation_srcc():
    from sklearn.linear_model import Ridge

    from iaa_lib.metrics import srcc

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 40))
    y = x[:, 0] + 0.5 * rng.normal(size=60)
    fit = fit_ridge(x[:40], y[:40], x[40:], y[40:], alphas=(0.01, 10.0, 1e4))
    for alpha, score in fit.val_srcc.items():
        assert score == pytest.approx(srcc(Ridge(alpha=alpha).fit(x[:40], y[:40]).predict(x[40:]), y[40:]))
    assert fit.val_srcc[fit.alpha] == max(fit.val_srcc.values())
    assert fit.predict(x[40:]) == pytest.approx(Ridge(alpha=fit.alpha).fit(x[:40], y[:40]).predict(x[40:]))


def test_tfidf_ridge_learns_words_and_names_them():
    texts = ["great colours great light"] * 10 + ["blurry and dull"] * 10 + ["a photo of a cat"] * 10
    scores = np.array([7.0] * 10 + [3.0] * 10 + [5.0] * 10)
    vectorizer = fit_tfidf(texts)
    features = vectorizer.transform(texts)
    fit = fit_ridge(features, scores, features, scores, alphas=(0.1,))
    prediction = fit.predict(vectorizer.transform(["great light", "dull and blurry"]))
    assert prediction[0] > 5.5 > 4.5 > prediction[1]
    terms = top_terms(vectorizer, fit, k=2)
    assert set(terms.loc[terms["direction"] == "higher score", "term"]) <= {"great", "great colours", "colours",
                                                                         "great light", "light", "colours great"}
    assert set(terms.loc[terms["direction"] == "lower score", "term"]) <= {"blurry", "dull", "blurry and", "and dull",
                                                                        "and"}


def test_prediction_frame_columns():
    frame = prediction_frame([1, 2], np.array([5.0, 6.0]), np.full((2, 10), 0.1))
    assert list(frame.columns) == ["image_id", "pred_mos", *[f"pred_dist_{k}" for k in range(1, 11)]]
    assert frame["image_id"].tolist() == ["1", "2"]
    assert "pred_dist_1" not in prediction_frame([1], np.array([5.0]))
