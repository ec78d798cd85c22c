"""Comments -> sentences -> per-sentence text features, cached on disk by encoder and text.

Sentence splitting, one function with three rules (``split_sentences(comment, variant)``):
- ``"textbook"`` (default) and ``"as_published"`` follow CDCM-Net's AVA script (cdcm spec section 1): split on
  [.?!], delete the characters of a strip class from every piece, drop pieces that end up empty. Textbook: the
  intended strip class (all digits, ASCII punctuation, full-width CJK punctuation), whitespace-only pieces
  dropped too, the surviving pieces whitespace-trimmed. As published: the mis-escaped class of the released
  script, which deletes 0 and 4-9 and every capital ``S`` but keeps 1, 2, 3 and the backslash; whitespace-only
  pieces (e.g. after a final ". ") are kept and count as sentences.
- ``"punctuated"`` (CG-IAA's attribute labels and captions): split after . ! ? followed by white space, and at
  line breaks, so "f/2.8" or "1/250s" stay whole; the punctuation stays; pieces of fewer than two words are
  dropped.
"""
from __future__ import annotations

import os
import re
import string
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from iaa_lib.files import atomic_torch_save, read_torch_cache
from iaa_lib.paths import resolve
from iaa_lib.training.fingerprint import fingerprint

SPLIT_VARIANTS = ("textbook", "as_published", "punctuated")
SENTENCE_END = re.compile(r"[.?!]")
PUNCTUATED_END = re.compile(r"(?<=[.!?])\s+|\n+")
PUNCTUATED_MIN_WORDS = 2
CJK_PUNCTUATION = "，。！？、；：“”‘’（）【】《》…—～￥"
TEXTBOOK_STRIP = set(string.digits) | set(string.punctuation) | set(CJK_PUNCTUATION)
AS_PUBLISHED_STRIP = (TEXTBOOK_STRIP - set("123\\")) | {"S"}


def split_sentences(comment: str, variant: str = "textbook") -> list[str]:
    """Sentences of one comment by the rule `variant` (module docstring)."""
    if variant not in SPLIT_VARIANTS:
        raise ValueError(f"split_sentences: variant must be one of {SPLIT_VARIANTS}, got {variant!r}")
    if not isinstance(comment, str):
        raise ValueError(f"split_sentences: comment must be a str, got {type(comment).__name__}")
    if variant == "punctuated":
        pieces = (p.strip() for p in PUNCTUATED_END.split(comment))
        return [p for p in pieces if len(p.split()) >= PUNCTUATED_MIN_WORDS]
    strip = TEXTBOOK_STRIP if variant == "textbook" else AS_PUBLISHED_STRIP
    sentences = []
    for piece in SENTENCE_END.split(comment):
        cleaned = "".join(ch for ch in piece if ch not in strip)
        if variant == "textbook":
            cleaned = " ".join(cleaned.split())
        if cleaned:
            sentences.append(cleaned)
    return sentences


def comment_sentences(comments: Sequence[str], variant: str = "textbook") -> list[str]:
    """All sentences of an image's comments, in comment order."""
    return [s for comment in comments for s in split_sentences(comment, variant)]


def encode_texts(encoder: nn.Module, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """[len(texts), dim] float32 CPU embeddings; texts are batched by length (less padding), optionally behind a
    tqdm bar."""
    from tqdm.auto import tqdm

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.zeros(len(texts), int(encoder.dim))
    for start in tqdm(range(0, len(order), batch_size), desc="encoding texts", unit="batch", disable=not progress):
        rows = order[start:start + batch_size]
        out[torch.tensor(rows)] = encoder.encode([texts[i] for i in rows], batch_size=batch_size).float().cpu()
    return out


class SentenceFeatureCache:
    """The book's one cache of frozen sentence features: per-text rows of one text encoder in
    <cache_dir>/sentences_<fingerprint of encoder name + weights>.pt (written atomically; a truncated cache is
    reported with a warning and rebuilt).

    encoder: the module, or a zero-argument factory called only when a text is missing (a warm cache then loads no
    model). features(texts) encodes only texts not cached yet and returns [len(texts), dim] float32 rows."""

    def __init__(self, encoder: nn.Module | Callable[[], nn.Module], encoder_name: str, weights: str | None,
                 cache_dir: str | os.PathLike, batch_size: int = 128, progress: bool = False) -> None:
        self.encoder = encoder if isinstance(encoder, nn.Module) else None
        self._factory = None if isinstance(encoder, nn.Module) else encoder
        self.batch_size, self.progress = batch_size, progress
        key = fingerprint(encoder_name, str(weights))
        self.path = resolve(cache_dir) / f"sentences_{key}.pt"
        self.rows: dict[str, int] = {}
        self.table: torch.Tensor | None = None
        saved = read_torch_cache(self.path)
        if saved is not None:
            if saved["encoder"] != encoder_name or saved["weights"] != str(weights):
                raise ValueError(f"{self.path}: cache belongs to {saved['encoder']}/{saved['weights']}; delete it")
            self.rows = {t: i for i, t in enumerate(saved["texts"])}
            self.table = saved["features"]
        self.encoder_name, self.weights = encoder_name, str(weights)

    def _encoder(self) -> nn.Module:
        if self.encoder is None:
            self.encoder = self._factory()
        return self.encoder

    def features(self, texts: Sequence[str]) -> torch.Tensor:
        """[len(texts), dim] float32 features (CPU), encoding and saving the missing ones."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.rows))
        if missing:
            new = encode_texts(self._encoder(), missing, self.batch_size, self.progress)
            self.rows.update({t: len(self.rows) + i for i, t in enumerate(missing)})
            self.table = new if self.table is None else torch.cat([self.table, new])
            atomic_torch_save({"encoder": self.encoder_name, "weights": self.weights, "texts": list(self.rows),
                               "features": self.table}, self.path)
        if not texts:
            dim = self.table.shape[1] if self.table is not None else int(self._encoder().dim)
            return torch.zeros(0, dim)
        return self.table[torch.tensor([self.rows[t] for t in texts])]


def comment_feature_rows(
    image_ids: Sequence[str], comments: Mapping[str, Sequence[str]], cache: SentenceFeatureCache,
    max_sentences: int, variant: str = "textbook",
) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """Per image: its sentence features zero-padded / truncated to max_sentences rows.

    Returns features [n, max_sentences, dim] float32, mask [n, max_sentences] bool (True = a real sentence) and
    the kept sentences per image. Images without comments get all-zero rows and an all-False mask."""
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
    per_image = [comment_sentences(comments.get(str(i), []), variant)[:max_sentences] for i in image_ids]
    flat = [s for sentences in per_image for s in sentences]
    table = cache.features(flat)
    features = torch.zeros(len(per_image), max_sentences, table.shape[1])
    mask = torch.zeros(len(per_image), max_sentences, dtype=torch.bool)
    start = 0
    for row, sentences in enumerate(per_image):
        features[row, : len(sentences)] = table[start : start + len(sentences)]
        mask[row, : len(sentences)] = True
        start += len(sentences)
    return features, mask, per_image


def sentence_counts(image_ids: Sequence[str], comments: Mapping[str, Sequence[str]],
                    variant: str = "textbook") -> dict[str, int]:
    """Number of sentences per image id (0 for images without comments), for the >= 5-sentence AVA filter."""
    return {str(i): len(comment_sentences(comments.get(str(i), []), variant)) for i in image_ids}

