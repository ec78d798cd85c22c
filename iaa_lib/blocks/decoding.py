"""Batched, KV-cached beam search and greedy decoding for prefix-conditioned language models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import torch
import torch.nn.functional as F

from iaa_lib.blocks.gpt import GPT


class StepDecoder(Protocol):
    """What the search needs from a model: first log-probs, one step on new tokens, and a state re-indexer."""

    def start(self) -> tuple[torch.Tensor, Any]:
        """Log-probs of the first token (B, V) and the model state for those B rows."""

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Append tokens (N,) to N running rows -> next-token log-probs (N, V) and the new state."""

    def reorder(self, state: Any, index: torch.Tensor) -> Any:
        """Select/duplicate rows of the state: new row i = old row index[i]."""


class PrefixLMDecoder:
    """StepDecoder for a GPT conditioned on prefix embeddings (B, P, D), with its KV cache as state."""

    def __init__(self, lm: GPT, prefix: torch.Tensor, temperature: float = 1.0) -> None:
        if prefix.ndim != 3 or prefix.shape[-1] != lm.cfg.d_model:
            raise ValueError(f"prefix must be (B, P, {lm.cfg.d_model}), got {tuple(prefix.shape)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.lm, self.prefix, self.temperature = lm, prefix, temperature

    def _log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(logits[:, -1].float() / self.temperature, dim=-1)

    def start(self) -> tuple[torch.Tensor, Any]:
        logits, cache = self.lm(inputs_embeds=self.prefix)
        return self._log_probs(logits), cache

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        logits, cache = self.lm(token_ids=tokens[:, None], past=state)
        return self._log_probs(logits), cache

    def reorder(self, state: Any, index: torch.Tensor) -> Any:
        return [(k.index_select(0, index), v.index_select(0, index)) for k, v in state]


@dataclass
class DecodeResult:
    """Best sequence per input (token ids, stop token included when one was emitted) and its score."""

    tokens: list[list[int]]
    scores: torch.Tensor  # (B,) length-normalised (or summed) log-probability


@torch.no_grad()
def beam_search(decoder: StepDecoder, beam_width: int, max_tokens: int, stop_ids: Sequence[int],
                length_normalise: bool = True, early_stopping: bool = True) -> DecodeResult:
    """Beam search over hypotheses that end at a stop token (or reach max_tokens); score = mean token log-prob.

    All inputs are searched together: each keeps `beam_width` running beams and a pool of its best
    `beam_width` finished hypotheses. With `early_stopping` the search ends once no running beam scores
    above the worst pooled one (a heuristic under length normalisation); without it, it runs to max_tokens,
    which makes it exact when beam_width covers every running prefix.
    """
    if beam_width < 1 or max_tokens < 1:
        raise ValueError(f"beam_width and max_tokens must be >= 1, got {beam_width}, {max_tokens}")
    stop = torch.as_tensor(list(stop_ids), dtype=torch.long)
    log_probs, state = decoder.start()
    batch, vocab = log_probs.shape
    device = log_probs.device
    stop = stop.to(device)
    width = beam_width
    rows = torch.arange(batch, device=device).repeat_interleave(width)
    state = decoder.reorder(state, rows)
    log_probs = log_probs.index_select(0, rows)
    running = torch.full((batch, width), float("-inf"), device=device)
    running[:, 0] = 0.0  # all beams start identical: keep one so the first step does not pick duplicates
    seqs = torch.zeros(batch, width, 0, dtype=torch.long, device=device)
    pool_scores = torch.full((batch, width), float("-inf"), device=device)
    pool_seqs = torch.zeros(batch, width, max_tokens, dtype=torch.long, device=device)
    pool_lengths = torch.zeros(batch, width, dtype=torch.long, device=device)

    def add_to_pool(scores: torch.Tensor, new_seqs: torch.Tensor) -> None:
        nonlocal pool_scores, pool_seqs, pool_lengths
        padded = F.pad(new_seqs, (0, max_tokens - new_seqs.shape[-1]))
        lengths = torch.full(scores.shape, new_seqs.shape[-1], dtype=torch.long, device=device)
        all_scores = torch.cat([pool_scores, scores], dim=1)
        all_seqs = torch.cat([pool_seqs, padded], dim=1)
        all_lengths = torch.cat([pool_lengths, lengths], dim=1)
        pool_scores, keep = all_scores.topk(width, dim=1)
        pool_seqs = all_seqs.gather(1, keep[..., None].expand(-1, -1, max_tokens))
        pool_lengths = all_lengths.gather(1, keep)

    for t in range(max_tokens):
        length = t + 1
        candidates = running[..., None] + log_probs.view(batch, width, vocab)  # (B, W, V) summed log-probs
        normaliser = length if length_normalise else 1
        stop_scores = candidates[:, :, stop] / normaliser  # (B, W, S)
        stop_seqs = torch.cat([seqs[:, :, None, :].expand(-1, -1, len(stop), -1),
                               stop.view(1, 1, -1, 1).expand(batch, width, -1, 1)], dim=-1)
        add_to_pool(stop_scores.reshape(batch, -1), stop_seqs.reshape(batch, width * len(stop), length))
        candidates[:, :, stop] = float("-inf")
        top_scores, flat_index = candidates.view(batch, -1).topk(width, dim=1)
        beam_index, token = flat_index // vocab, flat_index % vocab
        seqs = torch.cat([seqs.gather(1, beam_index[..., None].expand(-1, -1, t)), token[..., None]], dim=-1)
        running = top_scores
        if length == max_tokens:  # truncated hypotheses compete with the finished ones
            add_to_pool(running / normaliser, seqs)
            break
        if torch.isneginf(running).all():
            break
        if early_stopping and bool(((running.max(dim=1).values / normaliser) <= pool_scores[:, -1]).all()):
            break
        global_index = (beam_index + torch.arange(batch, device=device)[:, None] * width).view(-1)
        state = decoder.reorder(state, global_index)
        log_probs, state = decoder.step(token.view(-1), state)

    best = pool_scores.argmax(dim=1)
    tokens = [pool_seqs[b, best[b], : pool_lengths[b, best[b]]].tolist() for b in range(batch)]
    return DecodeResult(tokens=tokens, scores=pool_scores.gather(1, best[:, None]).squeeze(1))


@torch.no_grad()
def greedy_decode(decoder: StepDecoder, max_tokens: int, stop_ids: Sequence[int],
                  length_normalise: bool = True) -> DecodeResult:
    """Pick the most likely token at each step until a stop token or max_tokens; same scoring as beam_search."""
    stop = torch.as_tensor(list(stop_ids), dtype=torch.long)
    log_probs, state = decoder.start()
    batch = log_probs.shape[0]
    device = log_probs.device
    stop = stop.to(device)
    total = torch.zeros(batch, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    tokens = torch.zeros(batch, max_tokens, dtype=torch.long, device=device)
    for t in range(max_tokens):
        best_lp, token = log_probs.max(dim=-1)
        total = torch.where(done, total, total + best_lp)
        lengths = lengths + (~done).long()
        tokens[:, t] = torch.where(done, tokens[:, t], token)
        done = done | torch.isin(token, stop)
        if bool(done.all()) or t == max_tokens - 1:
            break
        log_probs, state = decoder.step(token, state)
    scores = total / lengths.clamp(min=1) if length_normalise else total
    return DecodeResult(tokens=[tokens[b, : lengths[b]].tolist() for b in range(batch)], scores=scores)
