"""Attribute labels for comment sentences: a keyword lexicon, refined by zero-shot text similarity where it is unsure.

CG-IAA's "knowledge transfer" classifier is unreleased [inferred in the spec]; this is the project's documented
replacement. Each sentence gets one of ATTRIBUTES:

1. lexicon: count whole-word keyword hits per attribute (colour & light, composition, depth & focus);
   a unique maximum > 0 decides ("lexicon").
2. zero-shot (when an encoder is given): ties between attributes, and sentences without any hit, are embedded
   and compared (cosine) with the mean embedding of a few descriptions per attribute. A tie goes to the most
   similar tied attribute; a hit-less sentence goes to the most similar specific attribute only if it beats
   the "general" descriptions by `margin`, else to "general" ("zero-shot").
3. without an encoder: a tie goes to the attribute whose keyword comes first, no hit -> "general" ("default").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import pandas as pd
import torch

from iaa_lib.blocks.text import split_sentences

ATTRIBUTES = ("colour_and_light", "composition", "depth_and_focus", "general")
SPECIFIC_ATTRIBUTES = ATTRIBUTES[:3]

LEXICON: dict[str, tuple[str, ...]] = {
    "colour_and_light": (
        r"colou?rs?", r"colou?rful\w*", r"saturat\w*", r"desaturat\w*", r"vivid\w*", r"vibran\w*", r"hues?", r"tones?",
        r"tonal\w*", r"light(?:s|ing|ed)?", r"lit", r"shadows?", r"highlights?", r"contrast\w*", r"bright\w*",
        r"dark\w*", r"exposure\w*", r"exposed", r"overexposed", r"underexposed", r"white balance", r"monochrome",
        r"black and white", r"b&w", r"gr[ae]y\w*", r"muted", r"washed out", r"glow\w*", r"warm\w*", r"sunlight",
        r"sunset", r"hdr", r"blown", r"dull", r"punchy", r"red", r"blue", r"green", r"yellow", r"orange",
    ),
    "composition": (
        r"compos\w*", r"crop\w*", r"fram(?:e|ed|es|ing)", r"thirds?", r"placement", r"placed", r"plac\w+",
        r"balanc\w*", r"symmetr\w*", r"cent(?:er|re)d?", r"horizon\w*", r"leading lines?", r"lines?",
        r"perspective", r"angles?", r"diagonal\w*", r"layout", r"position\w*", r"tilt\w*", r"negative space",
        r"empty space", r"clutter\w*", r"busy", r"distract\w*", r"background", r"foreground", r"edges?",
    ),
    "depth_and_focus": (
        r"focus\w*", r"sharp\w*", r"blur\w*", r"soft\w*", r"bokeh", r"depth of field", r"dof", r"crisp\w*",
        r"details?", r"noise", r"noisy", r"grain\w*", r"shallow", r"aperture", r"f/\d+(?:\.\d+)?", r"motion",
        r"shake", r"camera shake", r"in focus", r"out of focus",
    ),
}

PROMPTS: dict[str, tuple[str, ...]] = {
    "colour_and_light": ("A comment about the colours and saturation of the photo.",
                         "A comment about the lighting, exposure and contrast of the photo."),
    "composition": ("A comment about the composition and framing of the photo.",
                    "A comment about where the subject is placed and the balance of the photo."),
    "depth_and_focus": ("A comment about focus and sharpness of the photo.",
                        "A comment about depth of field and blur in the photo."),
    "general": ("A general impression of the photo.", "A comment about the subject and how the photo feels."),
}

_PATTERNS = {a: [re.compile(rf"(?<![\w&]){p}(?![\w&])", re.IGNORECASE) for p in words] for a, words in LEXICON.items()}

Encoder = Callable[[list[str]], torch.Tensor]  # texts -> embeddings (N, D)


def keyword_hits(sentence: str) -> dict[str, list[int]]:
    """Distinct start offsets of lexicon matches per specific attribute (overlapping patterns count once)."""
    return {a: sorted({m.start() for p in patterns for m in p.finditer(sentence)}) for a, patterns in _PATTERNS.items()}


@dataclass(frozen=True)
class Assignment:
    """One labelled sentence: its attribute and which rule decided it (lexicon / zero-shot / default)."""

    sentence: str
    attribute: str
    method: str


class AttributeSplitter:
    """Labels sentences with ATTRIBUTES (keyword lexicon, zero-shot refinement with `encoder` when given)."""

    def __init__(self, encoder: Encoder | None = None, margin: float = 0.05) -> None:
        self.encoder, self.margin = encoder, margin
        self._prototypes: torch.Tensor | None = None

    def prototypes(self) -> torch.Tensor:
        """Unit-norm mean embedding of each attribute's descriptions (4, D), in ATTRIBUTES order."""
        if self._prototypes is None:
            rows = []
            for attribute in ATTRIBUTES:
                emb = torch.nn.functional.normalize(self.encoder(list(PROMPTS[attribute])).float(), dim=-1)
                rows.append(torch.nn.functional.normalize(emb.mean(0), dim=0))
            self._prototypes = torch.stack(rows)
        return self._prototypes

    def classify(self, sentences: Sequence[str]) -> list[Assignment]:
        """Attribute of each sentence (see the module docstring for the rules)."""
        decided: list[Assignment | None] = []
        unsure: list[tuple[int, list[str]]] = []  # (index, candidate attributes; [] = no hit)
        for index, sentence in enumerate(sentences):
            hits = keyword_hits(sentence)
            counts = {a: len(h) for a, h in hits.items()}
            best = max(counts.values())
            tied = [a for a in SPECIFIC_ATTRIBUTES if counts[a] == best and best > 0]
            if len(tied) == 1:
                decided.append(Assignment(sentence, tied[0], "lexicon"))
            elif self.encoder is None:
                label = min(tied, key=lambda a: hits[a][0]) if tied else "general"
                decided.append(Assignment(sentence, label, "default"))
            else:
                decided.append(None)
                unsure.append((index, tied))
        if unsure:
            embeddings = torch.nn.functional.normalize(
                self.encoder([sentences[i] for i, _ in unsure]).float(), dim=-1)
            similarity = embeddings @ self.prototypes().t().to(embeddings.device)  # (N, 4)
            for (index, tied), sims in zip(unsure, similarity.tolist()):
                by_name = dict(zip(ATTRIBUTES, sims))
                if tied:
                    label = max(tied, key=by_name.__getitem__)
                else:
                    specific = max(SPECIFIC_ATTRIBUTES, key=by_name.__getitem__)
                    label = specific if by_name[specific] > by_name["general"] + self.margin else "general"
                decided[index] = Assignment(sentences[index], label, "zero-shot")
        return decided  # type: ignore[return-value]


def label_comments(comments: Mapping[str, Iterable[str]], splitter: AttributeSplitter) -> pd.DataFrame:
    """{image_id: [comment, ...]} -> one row per sentence: image_id, sentence, attribute, method."""
    rows = [(image_id, s) for image_id, texts in comments.items() for text in texts
            for s in split_sentences(text, "punctuated")]
    labelled = splitter.classify([s for _, s in rows])
    return pd.DataFrame({"image_id": [i for i, _ in rows], "sentence": [a.sentence for a in labelled],
                         "attribute": [a.attribute for a in labelled], "method": [a.method for a in labelled]})


def attribute_counts(labelled: pd.DataFrame) -> pd.DataFrame:
    """Sentences per attribute and per deciding rule (rows ATTRIBUTES, columns methods + total)."""
    table = pd.crosstab(labelled["attribute"], labelled["method"]).reindex(ATTRIBUTES, fill_value=0)
    table["total"] = table.sum(axis=1)
    return table
