"""CG-IAA unit tests: tokenizer, GPT decoder (causality, cache, GPT-2 key layout), beam search, losses, shapes."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from iaa_lib.cgiaa.contrastive import info_nce
from iaa_lib.cgiaa.tokenizer import ClipBPETokenizer, canonical_text
from iaa_lib.cgiaa.model import (CONFIGS, CritiqueExperts, MAPHead, PrefixMapper, build_decoder, caption_loss,
                                  get_config)
from iaa_lib.blocks.decoding import PrefixLMDecoder, beam_search, greedy_decode
from iaa_lib.blocks.gpt import GPT, GPT2_SMALL, GPTConfig, load_gpt2

TINY = GPTConfig(vocab_size=7, n_positions=16, d_model=16, n_layers=2, n_heads=2)


@pytest.fixture(scope="module")
def bpe() -> ClipBPETokenizer:
    return ClipBPETokenizer()


# ----------------------------------------------------------------------------------------------- tokenizer
@pytest.mark.parametrize("text", ["Nice colours, but the horizon is tilted!", "Tack sharp.  Great   light",
                                  "the rule-of-thirds works (mostly)."])
def test_tokenizer_round_trip(bpe, text):
    assert bpe.decode(bpe.encode(text)) == canonical_text(text)


def test_compact_vocabulary_round_trip_and_unknown_word():
    corpus = ["Vivid, saturated colours that pop.", "Focus is a little soft!"]
    tok = ClipBPETokenizer.fit(corpus)
    assert tok.vocab_size < 30
    assert tok.decode(tok.encode(corpus[0])) == "vivid, saturated colours that pop."
    assert tok.encode("!") == [0]  # id 0 is "!" as in the full BPE
    with pytest.raises(ValueError, match="outside the fitted vocabulary"):
        tok.encode("giraffe")


def test_encode_captions_appends_period_pads_and_truncates(bpe):
    ids, mask = bpe.encode_captions(["good light", "a b c d e f g h"], max_tokens=4)
    assert ids[0, :3].tolist() == bpe.encode("good light.") and mask[0].tolist() == [True, True, True, False]
    assert ids[0, 3] == 0 and mask[1].all()
    assert ids[1].tolist() == bpe.encode("a b c d")


# ----------------------------------------------------------------------------------------------- decoder
def test_future_token_cannot_change_past_logits():
    torch.manual_seed(0)
    model = GPT(TINY).eval()
    tokens = torch.tensor([[1, 2, 3, 4, 5, 6]])
    changed = tokens.clone()
    changed[0, 4] = 0
    with torch.no_grad():
        a, _ = model(tokens)
        b, _ = model(changed)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-4)


def test_kv_cache_matches_full_forward():
    torch.manual_seed(0)
    model = GPT(TINY).eval()
    tokens = torch.randint(0, 7, (2, 6))
    with torch.no_grad():
        full, _ = model(tokens)
        first, cache = model(tokens[:, :3])
        second, cache = model(tokens[:, 3:5], past=cache)
        third, _ = model(tokens[:, 5:], past=cache)
    assert torch.allclose(torch.cat([first, second, third], 1), full, atol=1e-5)


def _hf_layout_state(cfg: GPTConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors named and shaped like a HF GPT2LMHeadModel (Conv1D weights stored as (in, out))."""
    g = torch.Generator().manual_seed(seed)
    d, hidden = cfg.d_model, int(cfg.d_model * cfg.mlp_ratio)
    rnd = lambda *shape: 0.2 * torch.randn(*shape, generator=g)  # noqa: E731
    state = {"transformer.wte.weight": rnd(cfg.vocab_size, d), "transformer.wpe.weight": rnd(cfg.n_positions, d),
             "transformer.ln_f.weight": 1 + rnd(d), "transformer.ln_f.bias": rnd(d)}
    for i in range(cfg.n_layers):
        p = f"transformer.h.{i}."
        state.update({p + "ln_1.weight": 1 + rnd(d), p + "ln_1.bias": rnd(d), p + "attn.c_attn.weight": rnd(d, 3 * d),
                      p + "attn.c_attn.bias": rnd(3 * d), p + "attn.c_proj.weight": rnd(d, d),
                      p + "attn.c_proj.bias": rnd(d), p + "ln_2.weight": 1 + rnd(d), p + "ln_2.bias": rnd(d),
                      p + "mlp.c_fc.weight": rnd(d, hidden), p + "mlp.c_fc.bias": rnd(hidden),
                      p + "mlp.c_proj.weight": rnd(hidden, d), p + "mlp.c_proj.bias": rnd(d),
                      p + "attn.bias": torch.ones(1, 1, cfg.n_positions, cfg.n_positions)})
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def _reference_gpt2_logits(state: dict[str, torch.Tensor], tokens: torch.Tensor, n_layers: int, n_heads: int):
    """GPT-2 forward written directly on the HF tensors (x @ W + b for Conv1D), one sequence (T,)."""
    s = {k.removeprefix("transformer."): v for k, v in state.items()}
    length = tokens.shape[0]
    x = s["wte.weight"][tokens] + s["wpe.weight"][:length]
    d = x.shape[1]
    head = d // n_heads
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    ln = lambda t, p: F.layer_norm(t, (d,), s[p + ".weight"], s[p + ".bias"])  # noqa: E731
    for i in range(n_layers):
        p = f"h.{i}."
        qkv = ln(x, p + "ln_1") @ s[p + "attn.c_attn.weight"] + s[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(d, dim=1)
        heads_out = []
        for h in range(n_heads):
            sl = slice(h * head, (h + 1) * head)
            scores = (q[:, sl] @ k[:, sl].t() / math.sqrt(head)).masked_fill(~causal, float("-inf"))
            heads_out.append(scores.softmax(-1) @ v[:, sl])
        x = x + torch.cat(heads_out, 1) @ s[p + "attn.c_proj.weight"] + s[p + "attn.c_proj.bias"]
        hidden = F.gelu(ln(x, p + "ln_2") @ s[p + "mlp.c_fc.weight"] + s[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + hidden @ s[p + "mlp.c_proj.weight"] + s[p + "mlp.c_proj.bias"]
    return ln(x, "ln_f") @ s["wte.weight"].t()


def test_gpt2_weights_in_hf_layout_load_and_match_reference_forward():
    cfg = GPTConfig(vocab_size=11, n_positions=8, d_model=8, n_layers=2, n_heads=2)
    state = _hf_layout_state(cfg)
    model = load_gpt2(state, n_heads=2).eval()
    assert model.cfg == cfg
    tokens = torch.tensor([3, 1, 4, 1, 5])
    with torch.no_grad():
        ours, _ = model(tokens[None])
    assert torch.allclose(ours[0], _reference_gpt2_logits(state, tokens, 2, 2), atol=1e-5)


def test_gpt2_loader_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_gpt2(tmp_path)
    state = _hf_layout_state(GPTConfig(vocab_size=5, n_positions=4, d_model=4, n_layers=1, n_heads=1))
    del state["transformer.h.0.mlp.c_fc.bias"]
    with pytest.raises(KeyError, match="c_fc.bias"):
        load_gpt2(state, n_heads=1)


def test_gpt2_small_parameter_count_and_full_mapper_shape():
    with torch.device("meta"):
        assert sum(p.numel() for p in GPT(GPT2_SMALL).parameters()) == 124_439_808  # GPT-2 small, tied head
        full = CONFIGS["full"]
        mapper = PrefixMapper(full.embed_dim, 768, full.prefix_length, full.mapper_layers, full.mapper_heads)
        prefix = mapper(torch.empty(3, 512))
    assert prefix.shape == (3, 40, 768)
    assert len(mapper.blocks) == 8 and mapper.blocks[0].mlp[0].out_features == 1536 and mapper.blocks[0].q.bias is None


def test_full_experts_without_gpt2_weights_raise_clear_error():
    with pytest.raises(ValueError, match="gpt2_path"):
        build_decoder(get_config("full"), 50257)


# ----------------------------------------------------------------------------------------------- beam search
class TableDecoder:
    """Hand-built model: next-token probabilities from `table` (history -> probs), else a seeded random function
    of the whole history; deterministic, so an exhaustive search can score every sequence."""

    def __init__(self, table: dict[tuple[int, ...], list[float]], vocab: int, batch: int = 1) -> None:
        self.table, self.vocab, self.batch = table, vocab, batch

    def log_probs(self, history: tuple[int, ...]) -> torch.Tensor:
        if history in self.table:
            return torch.tensor(self.table[history]).log()
        g = torch.Generator().manual_seed(hash(history) % (2 ** 31))
        return (2 * torch.randn(self.vocab, generator=g)).log_softmax(-1)

    def start(self):
        return torch.stack([self.log_probs(()) for _ in range(self.batch)]), [() for _ in range(self.batch)]

    def step(self, tokens, state):
        new_state = [h + (int(t),) for h, t in zip(state, tokens)]
        return torch.stack([self.log_probs(h) for h in new_state]), new_state

    def reorder(self, state, index):
        return [state[int(i)] for i in index]


def brute_force(log_prob_fn, vocab: int, max_tokens: int, stop: set[int]):
    """Best (mean log-prob, sequence) over all sequences ending in a stop token or reaching max_tokens."""
    cache: dict[tuple[int, ...], torch.Tensor] = {}
    best_score, best_seq = float("-inf"), None
    for length in range(1, max_tokens + 1):
        for seq in itertools.product(range(vocab), repeat=length):
            if any(t in stop for t in seq[:-1]) or (length < max_tokens and seq[-1] not in stop):
                continue
            for i in range(length):
                if seq[:i] not in cache:
                    cache[seq[:i]] = log_prob_fn(seq[:i])
            score = sum(float(cache[seq[:i]][seq[i]]) for i in range(length)) / length
            if score > best_score:
                best_score, best_seq = score, seq
    return best_score, best_seq


def test_beam_search_covering_all_prefixes_equals_exhaustive_search():
    decoder = TableDecoder({}, vocab=4)
    score, seq = brute_force(decoder.log_probs, 4, 4, {0})
    result = beam_search(decoder, beam_width=27, max_tokens=4, stop_ids=[0], early_stopping=False)
    assert tuple(result.tokens[0]) == seq
    assert result.scores[0].item() == pytest.approx(score, abs=1e-5)


def test_beam_search_finds_the_optimum_that_greedy_misses():
    # greedy takes token 1 (p = 0.6) then faces a flat tail; token 2 (p = 0.4) leads to a near-certain stop.
    table = {(): [0.0, 0.6, 0.4], (1,): [0.34, 0.33, 0.33], (2,): [0.98, 0.01, 0.01],
             (1, 1): [1 / 3] * 3, (1, 2): [1 / 3] * 3, (2, 1): [1 / 3] * 3, (2, 2): [1 / 3] * 3}
    decoder = TableDecoder(table, vocab=3)
    best_score, best_seq = brute_force(decoder.log_probs, 3, 3, {0})
    assert best_seq == (2, 0)
    greedy = greedy_decode(decoder, max_tokens=3, stop_ids=[0])
    assert tuple(greedy.tokens[0]) != best_seq
    beam = beam_search(decoder, beam_width=2, max_tokens=3, stop_ids=[0])
    assert tuple(beam.tokens[0]) == best_seq and beam.scores[0].item() == pytest.approx(best_score, abs=1e-5)
    assert beam.scores[0] > greedy.scores[0]


def test_batched_kv_cached_beam_search_on_tiny_gpt_matches_exhaustive():
    torch.manual_seed(1)
    lm = GPT(GPTConfig(vocab_size=4, n_positions=8, d_model=8, n_layers=1, n_heads=2)).eval()
    for p in lm.parameters():
        p.data.mul_(40)  # sharpen the distributions so the optimum is unique
    prefix = torch.randn(2, 2, 8)
    result = beam_search(PrefixLMDecoder(lm, prefix), beam_width=9, max_tokens=3, stop_ids=[0],
                         early_stopping=False)
    for b in range(2):
        def log_probs(history, b=b):
            inputs = torch.cat([prefix[b:b + 1], lm.embed(torch.tensor([history], dtype=torch.long))], 1)
            with torch.no_grad():
                return lm(inputs_embeds=inputs)[0][0, -1].log_softmax(-1)
        score, seq = brute_force(log_probs, 4, 3, {0})
        assert tuple(result.tokens[b]) == seq
        assert result.scores[b].item() == pytest.approx(score, abs=1e-4)


# ----------------------------------------------------------------------------------------------- losses
def test_info_nce_matches_hand_computed_value():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # cosines: [[1, .7071], [0, .7071]]
    c = 1 / math.sqrt(2)
    t = 0.5
    row0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(c / t)))
    row1 = -math.log(math.exp(c / t) / (math.exp(0) + math.exp(c / t)))
    col0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0)))
    col1 = -math.log(math.exp(c / t) / (math.exp(c / t) + math.exp(c / t)))
    expected = (row0 + row1) / 2 + (col0 + col1) / 2
    assert info_nce(image, text, temperature=t).item() == pytest.approx(expected, rel=1e-5)
    assert info_nce(image, text, temperature=t, combine="mean").item() == pytest.approx(expected / 2, rel=1e-5)


def test_info_nce_extra_positives_spread_the_target():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # the same comment on both images
    t = 1.0
    both = torch.ones(2, 2, dtype=torch.bool)
    # every row and column is uniform-target cross-entropy: -mean(log_softmax)
    rows = [torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])]
    cols = [torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])]
    expected = sum(-v.log_softmax(0).mean() for v in rows) / 2 + sum(-v.log_softmax(0).mean() for v in cols) / 2
    assert info_nce(image, text, temperature=t, positives=both).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="B, E"):
        info_nce(image, text[:1])


def test_caption_loss_masking_mask_vs_as_published():
    torch.manual_seed(0)
    prefix_length, vocab = 2, 5
    logits = torch.randn(1, prefix_length + 3, vocab)
    tokens = torch.tensor([[3, 0, 0]])  # "x", a real "!" (id 0), then padding
    mask = torch.tensor([[True, True, False]])
    ce = lambda pos, tok: -logits[0, pos].log_softmax(-1)[tok].item()  # noqa: E731
    assert caption_loss(logits, tokens, mask, prefix_length).item() == pytest.approx((ce(1, 3) + ce(2, 0)) / 2, rel=1e-6)
    assert caption_loss(logits, tokens, mask, prefix_length, "as_published").item() == pytest.approx(ce(1, 3), rel=1e-6)
    with pytest.raises(ValueError, match="loss_padding"):
        caption_loss(logits, tokens, mask, prefix_length, "ignore")


# ----------------------------------------------------------------------------------------------- experts and MAP
def _tiny_experts() -> CritiqueExperts:
    lm = GPT(GPTConfig(vocab_size=9, n_positions=12, d_model=8, n_layers=1, n_heads=2))
    return CritiqueExperts(lm, embed_dim=6, attributes=("a", "b"), prefix_length=3, mapper_layers=1, mapper_heads=2)


def test_expert_loss_gradients_reach_both_mappers_and_the_lm():
    torch.manual_seed(0)
    experts = _tiny_experts()
    tokens = torch.randint(1, 9, (4, 5))
    loss = experts.loss(torch.randn(4, 6), torch.tensor([0, 1, 0, 1]), tokens, torch.ones(4, 5, dtype=torch.bool))
    loss.backward()
    for name in ("mappers.a.linear.weight", "mappers.b.constant", "lm.wte.weight", "lm.blocks.0.attn.qkv.weight"):
        grad = dict(experts.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_expert_generation_shapes_and_greedy_option():
    torch.manual_seed(0)
    experts = _tiny_experts().eval()
    emb = torch.randn(3, 6)
    beam = experts.generate("a", emb, stop_ids=[1], max_tokens=5, beam_width=3)
    greedy = experts.generate("b", emb, stop_ids=[1], max_tokens=5, beam_width=1)
    for result in (beam, greedy):
        assert len(result.tokens) == 3 and result.scores.shape == (3,)
        assert all(1 <= len(t) <= 5 for t in result.tokens)
    with pytest.raises(KeyError, match="unknown attribute"):
        experts.prefix("c", emb)


def test_map_head_shapes_distribution_and_errors():
    head = MAPHead(visual_dim=768, text_dim=512, n_critiques=4)
    assert head.mlp[0].in_features == 2816  # 4 x 512 + 768, as the spec infers
    small = MAPHead(visual_dim=6, text_dim=4, n_critiques=2, hidden=8)
    out = small(torch.randn(3, 6), torch.randn(3, 2, 4))
    assert out.shape == (3, 10) and torch.allclose(out.sum(1), torch.ones(3))
    image_only = MAPHead(visual_dim=6, text_dim=4, n_critiques=0, hidden=8)
    assert image_only(torch.randn(3, 6), None).shape == (3, 10)
    assert MAPHead(0, 4, 2, hidden=8, n_bins=1)(None, torch.randn(3, 2, 4)).shape == (3,)
    with pytest.raises(ValueError, match="critique_embeddings"):
        small(torch.randn(3, 6), torch.randn(3, 3, 4))
    with pytest.raises(ValueError, match="visual_feature"):
        small(torch.randn(3, 5), torch.randn(3, 2, 4))


def test_config_overrides_and_unknown_keys():
    assert get_config("smoke", beam_width=3).beam_width == 3
    assert CONFIGS["full"].prefix_length == 40 and CONFIGS["full"].mapper_layers == 8
    assert CONFIGS["full"].beam_width == 5 and CONFIGS["full"].temperature == 0.07
    with pytest.raises(TypeError, match="unknown CG-IAA config keys"):
        get_config("smoke", beam=3)
    with pytest.raises(ValueError, match="unknown CG-IAA config"):
        get_config("medium")


def test_full_clip_without_network_raises_weights_error_naming_the_download():
    from iaa_lib.blocks.backbones import WeightsUnavailableError
    from iaa_lib.cgiaa.model import create_cgiaa

    with pytest.raises(WeightsUnavailableError, match="open_clip_pytorch_model.bin"):
        create_cgiaa("full")


@pytest.mark.slow
def test_gpt2_loader_matches_transformers_gpt2_on_random_weights():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=4)
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(config).eval()
    ours = load_gpt2(reference.state_dict(), n_heads=4).eval()
    tokens = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        assert torch.allclose(ours(tokens)[0], reference(tokens).logits, atol=1e-4)


def test_experts_load_gpt2_weights_from_a_local_folder_and_freeze_them(tmp_path):
    from safetensors.torch import save_file

    from iaa_lib.cgiaa.model import build_experts

    cfg = GPTConfig(vocab_size=11, n_positions=16, d_model=8, n_layers=1, n_heads=2)
    state = {k: v.contiguous() for k, v in _hf_layout_state(cfg).items() if k != "lm_head.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    experts = build_experts(get_config("smoke", gpt2_path=str(tmp_path), prefix_length=3), vocab_size=11)
    assert torch.equal(experts.lm.wte.weight, state["transformer.wte.weight"])
    assert not any(p.requires_grad for p in experts.lm.parameters())
    assert all(p.requires_grad for p in experts.mappers.parameters())
    with pytest.raises(ValueError, match="LocalGPT2Tokenizer"):
        build_experts(get_config("smoke", gpt2_path=str(tmp_path)), vocab_size=12)
