"""Scores from text alone: frozen sentence embeddings (the one sentence cache of blocks.text), image-level pooling, and the two
linear baselines (TF-IDF + ridge, the floor; mean MiniLM sentence embedding + ridge), ridge strength chosen on val.

Predictions come as frames (image_id, pred_mos[, pred_dist_1..10]) so every text model is scored the same way.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from iaa_lib.blocks.text import SentenceFeatureCache
from iaa_lib.metrics import srcc

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0)


def cached_text_embeddings(texts: Sequence[str], cache_dir: str | os.PathLike, encoder_name: str = "minilm",
                           weights: str | None = None, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """[len(texts), dim] embeddings through the book's one sentence cache (blocks.text.SentenceFeatureCache in
    cache_dir), encoding (and saving) only the texts it does not hold yet."""
    from iaa_lib.blocks.backbones import create_text_encoder

    cache = SentenceFeatureCache(lambda: create_text_encoder(encoder_name, weights=weights), encoder_name, weights,
                                 cache_dir, batch_size=batch_size, progress=progress)
    return cache.features(texts)


class EmbeddingTable:
    """Embeddings of a fixed list of distinct texts, looked up by text (the `cache` that comment_feature_rows reads)."""

    def __init__(self, texts: Sequence[str], features: torch.Tensor) -> None:
        if len(texts) != len(features):
            raise ValueError(f"EmbeddingTable: {len(texts)} texts but {len(features)} embedding rows")
        self.rows = {t: i for i, t in enumerate(texts)}
        if len(self.rows) != len(texts):
            raise ValueError("EmbeddingTable: texts must be distinct")
        self.table = features.float()

    def features(self, texts: Sequence[str]) -> torch.Tensor:
        """[len(texts), dim] rows; KeyError naming the first text that was never encoded."""
        missing = next((t for t in texts if t not in self.rows), None)
        if missing is not None:
            raise KeyError(f"text not in the embedding table (encode it first): {missing[:80]!r}")
        if not texts:
            return torch.zeros(0, self.table.shape[1])
        return self.table[torch.tensor([self.rows[t] for t in texts])]


def pooled_embeddings(sentences: Sequence[Sequence[str]], table: EmbeddingTable) -> np.ndarray:
    """[n_images, dim] float64: the unit-norm mean of each image's sentence embeddings; zeros without sentences."""
    pooled = np.zeros((len(sentences), table.table.shape[1]))
    for image, texts in enumerate(sentences):
        if texts:
            pooled[image] = table.features(texts).double().mean(0).numpy()
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.divide(pooled, norms, out=np.zeros_like(pooled), where=norms > 0)


@dataclass
class RidgeFit:
    """A ridge regressor with the strength chosen on val: the model, its alpha and the val SRCC of every alpha."""

    model: object
    alpha: float
    val_srcc: dict[float, float]

    def predict(self, features) -> np.ndarray:
        """Predicted mean scores [n] (1..10 scale of the targets)."""
        return np.asarray(self.model.predict(features), dtype=np.float64)


def fit_ridge(train_x, train_y: np.ndarray, val_x, val_y: np.ndarray, alphas: Sequence[float] = RIDGE_ALPHAS) -> RidgeFit:
    """Ridge (sklearn, with intercept) on train for each alpha; keeps the alpha of the best val SRCC."""
    from sklearn.linear_model import Ridge

    fits, scores = {}, {}
    for alpha in alphas:
        fits[alpha] = Ridge(alpha=alpha).fit(train_x, train_y)
        scores[alpha] = srcc(fits[alpha].predict(val_x), val_y)
    best = max(scores, key=scores.__getitem__)
    return RidgeFit(fits[best], float(best), {float(a): s for a, s in scores.items()})


def fit_tfidf(train_texts: Sequence[str], min_df: int = 2, ngram_range: tuple[int, int] = (1, 2)):
    """TF-IDF vectoriser (sublinear tf; word unigrams and bigrams of sklearn's default tokeniser that occur in
    >= min_df training texts), fitted on the training texts only."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=ngram_range, min_df=min_df, sublinear_tf=True).fit(train_texts)


def top_terms(vectorizer, ridge: RidgeFit, k: int = 15) -> pd.DataFrame:
    """The k terms with the most positive and the k with the most negative ridge weight: term, weight, direction."""
    terms = np.asarray(vectorizer.get_feature_names_out())
    weights = np.asarray(ridge.model.coef_, dtype=np.float64)
    order = np.argsort(weights)
    rows = [(terms[i], weights[i], "higher score") for i in order[::-1][:k]]
    rows += [(terms[i], weights[i], "lower score") for i in order[:k]]
    return pd.DataFrame(rows, columns=["term", "weight", "direction"])


def prediction_frame(image_ids: Sequence[str], pred_mos: np.ndarray, pred_dist: np.ndarray | None = None) -> pd.DataFrame:
    """image_id, pred_mos and, for a 10-bin distribution, pred_dist_1..10: the frame the bootstrap scorer reads."""
    frame = pd.DataFrame({"image_id": [str(i) for i in image_ids], "pred_mos": np.asarray(pred_mos, np.float64)})
    if pred_dist is not None:
        for k in range(pred_dist.shape[1]):
            frame[f"pred_dist_{k + 1}"] = pred_dist[:, k]
    return frame
