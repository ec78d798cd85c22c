"""Critique tokenizers for the decoder: open_clip's bundled BPE (offline) with an optional compact vocabulary."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import torch

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:)'%])")
_SPACE_AFTER_OPEN = re.compile(r"([(])\s+")
_SPACED_HYPHEN = re.compile(r"\s*-\s*")


def canonical_text(text: str) -> str:
    """The form a critique takes after a BPE round trip: lower case, single spaces, no space before punctuation
    or around hyphens (CLIP's BPE does not record whether a word was followed by a space)."""
    text = _SPACED_HYPHEN.sub("-", " ".join(text.lower().split()))
    return _SPACE_AFTER_OPEN.sub(r"\1", _SPACE_BEFORE_PUNCT.sub(r"\1", text))


class ClipBPETokenizer:
    """open_clip's byte-level BPE (49,408 ids, works offline); optionally remapped to a compact vocabulary.

    The compact vocabulary keeps only the BPE ids seen in a corpus (plus "!", "." and end-of-text): a tiny
    decoder then computes logits over a few hundred ids instead of 49,408. Id 0 is an exclamation mark in both
    layouts (the compact one puts the common word-final "!" there, as GPT-2's id 0), which is what the
    as-published caption loss (padding = id 0, ignore_index = 0) silently never learns.
    """

    def __init__(self, vocabulary: Sequence[int] | None = None) -> None:
        from open_clip.tokenizer import SimpleTokenizer

        self.bpe = SimpleTokenizer()
        self.period_bpe = self.bpe.encoder[".</w>"]
        self.eot_bpe = self.bpe.encoder["<end_of_text>"]
        self.bang_bpe = self.bpe.encoder["!</w>"]
        if vocabulary is None:
            self.vocabulary: list[int] | None = None
            self.vocab_size = self.bpe.vocab_size
        else:
            required = [self.bang_bpe, self.period_bpe, self.eot_bpe]
            ids = required[:1] + sorted(set(vocabulary) - {self.bang_bpe})
            ids += [i for i in required[1:] if i not in ids]
            self.vocabulary = ids
            self.vocab_size = len(ids)
            self._to_compact = {bpe: i for i, bpe in enumerate(ids)}
        self.period_id = self._compact(self.period_bpe)
        self.eot_id = self._compact(self.eot_bpe)
        self.stop_ids = (self.period_id, self.eot_id)

    @classmethod
    def fit(cls, texts: Iterable[str]) -> "ClipBPETokenizer":
        """A tokenizer whose compact vocabulary covers every BPE id of `texts`."""
        full = cls()
        seen: set[int] = set()
        for text in texts:
            seen.update(full.bpe.encode(text))
        return cls(vocabulary=sorted(seen))

    def _compact(self, bpe_id: int) -> int:
        return bpe_id if self.vocabulary is None else self._to_compact[bpe_id]

    def encode(self, text: str) -> list[int]:
        """Text -> token ids; with a compact vocabulary, BPE ids outside it raise a ValueError."""
        bpe_ids = self.bpe.encode(text)
        if self.vocabulary is None:
            return bpe_ids
        unknown = [i for i in bpe_ids if i not in self._to_compact]
        if unknown:
            words = sorted({self.bpe.decoder[i].replace("</w>", "") for i in unknown})
            raise ValueError(f"text uses tokens outside the fitted vocabulary: {words[:10]}; refit the tokenizer "
                             "on a corpus that contains them")
        return [self._to_compact[i] for i in bpe_ids]

    def decode(self, ids: Sequence[int]) -> str:
        """Token ids -> text in canonical form (end-of-text ids dropped)."""
        bpe_ids = list(ids) if self.vocabulary is None else [self.vocabulary[i] for i in ids]
        return canonical_text(self.bpe.decode([i for i in bpe_ids if i != self.eot_bpe]))

    def encode_captions(self, texts: Sequence[str], max_tokens: int, pad_id: int = 0
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> ids (N, max_tokens) and mask (N, max_tokens); a final "." is added, long ones truncated."""
        ids = torch.full((len(texts), max_tokens), pad_id, dtype=torch.long)
        mask = torch.zeros(len(texts), max_tokens, dtype=torch.bool)
        for row, text in enumerate(texts):
            tokens = self.encode(text.strip())
            if not tokens or tokens[-1] != self.period_id:
                tokens.append(self.period_id)
            tokens = tokens[:max_tokens]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = True
        return ids, mask


class LocalGPT2Tokenizer:
    """GPT-2's own BPE from a folder holding vocab.json + merges.txt (or the hub name "gpt2", see
    iaa_lib.blocks.gpt.gpt2_folder), for decoders loaded from GPT-2 weights."""

    def __init__(self, folder: str) -> None:
        from iaa_lib.blocks.gpt import gpt2_folder

        path = gpt2_folder(folder)
        if not ((path / "vocab.json").exists() and (path / "merges.txt").exists()):
            raise FileNotFoundError(f"{path} must hold GPT-2's vocab.json and merges.txt (download `gpt2` from the "
                                    "Hugging Face hub to that folder)")
        from transformers import GPT2TokenizerFast

        self.tok = GPT2TokenizerFast.from_pretrained(str(path), local_files_only=True)
        self.vocab_size = len(self.tok)
        self.period_id = self.tok.encode(".")[0]
        self.eot_id = self.tok.eos_token_id
        self.stop_ids = (self.period_id, self.eot_id)

    def encode(self, text: str) -> list[int]:
        """Text -> GPT-2 ids."""
        return self.tok.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        """GPT-2 ids -> text (end-of-text dropped)."""
        return self.tok.decode([i for i in ids if i != self.eot_id]).strip()

    encode_captions = ClipBPETokenizer.encode_captions
