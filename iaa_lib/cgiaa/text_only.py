"""CG-IAA's critique fusion (MAP) head fed real critiques as text-only input.

MAP concatenates one critique embedding per attribute (colour & light, composition, depth & focus, general).
Here the four "critiques" of an image are its real comment sentences grouped by attribute (AttributeSplitter:
lexicon, zero-shot MiniLM where unsure), each group embedded as the unit-norm mean of its sentence embeddings
(a zero vector when the image has no sentence on that attribute). The head is MAPHead with visual_dim = 0,
trained by map_stage (EMD r = 2 per sample, AdamW, cosine, best val SRCC).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch.utils.data import DataLoader

from iaa_lib.cgiaa.attributes import ATTRIBUTES, PROMPTS, AttributeSplitter
from iaa_lib.cgiaa.pipeline import FeatureDataset, map_stage
from iaa_lib.paths import resolve

PROMPT_TEXTS = tuple(p for attribute in ATTRIBUTES for p in PROMPTS[attribute])


def sentence_attributes(sentences: Sequence[str], encoder) -> dict[str, str]:
    """{sentence: attribute} for distinct sentences; `encoder(texts) -> (N, D)` must also embed PROMPT_TEXTS."""
    assignments = AttributeSplitter(encoder=encoder).classify(list(sentences))
    return {a.sentence: a.attribute for a in assignments}


def attribute_critique_embeddings(sentences: Sequence[Sequence[str]], attribute_of: Mapping[str, str],
                                  encoder) -> torch.Tensor:
    """(n_images, 4, D): per image and attribute, the unit-norm mean embedding of its sentences on that attribute."""
    out = None
    for image, texts in enumerate(sentences):
        for slot, attribute in enumerate(ATTRIBUTES):
            chosen = [t for t in texts if attribute_of[t] == attribute]
            if not chosen:
                continue
            mean = encoder(chosen).float().mean(0)
            if out is None:
                out = torch.zeros(len(sentences), len(ATTRIBUTES), mean.shape[0])
            out[image, slot] = torch.nn.functional.normalize(mean, dim=0)
    if out is None:
        raise ValueError("attribute_critique_embeddings: no image has any sentence")
    return out


def _rows(frame: pd.DataFrame, splits: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    position = {i: row for row, i in enumerate(frame["image_id"].astype(str))}
    return {name: [position[str(i)] for i in ids] for name, ids in splits.items()}


def fit_text_only_map(critiques: torch.Tensor, frame: pd.DataFrame, splits: Mapping[str, Sequence[str]],
                      run_dir: str, epochs: int = 20, lr: float = 1e-3, batch_size: int = 64, hidden: int = 128,
                      seed: int = 0):
    """Train (or load) a text-only MAPHead on (n_images, 4, D) attribute critiques; (head, history, test predictions)."""
    head, history, _, predictions = map_stage("text_only_real_critiques", None, critiques, frame.reset_index(drop=True),
                                              _rows(frame, splits), resolve(run_dir), epochs=epochs, lr=lr,
                                              batch_size=batch_size, hidden=hidden, seed=seed)
    return head, history, predictions


@torch.no_grad()
def predict_map(head: torch.nn.Module, critiques: torch.Tensor, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions frame (image_id, mos, pred_mos, pred_dist_1..10) of a text-only head on the frame's rows."""
    from iaa_lib.training import evaluate

    dataset = FeatureDataset(torch.zeros(len(frame), 0), critiques, frame)
    _, predictions = evaluate(head, DataLoader(dataset, batch_size=512), return_predictions=True)
    return predictions
