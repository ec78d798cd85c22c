"""DAT v1 backbone: layout, parameter counts, attention maths against naive re-computations, offsets, checkpoints."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from iaa_lib.eat.dat import (
    DAT,
    DeformableAttention,
    LocalAttention,
    ShiftWindowAttention,
    load_official_checkpoint,
    make_dat_config,
    normalised_to_pixels,
    offset_kept,
    record_attention,
    resize_position_table,
    set_offset_mask_progress,
    uniform_grid,
)
from iaa_lib.eat.model import EAT


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_dat_base_imagenet_parameter_count_matches_official():
    with torch.device("meta"):
        model = DAT("base", head="logits", num_classes=1000)
    assert n_params(model) == 87_881_632


@pytest.mark.parametrize("config, paper_millions", [("tiny", 29), ("small", 50), ("base", 88)])
def test_dat_configs_match_the_paper_sizes(config, paper_millions):
    with torch.device("meta"):
        model = DAT(config, head="logits", num_classes=1000)
    assert abs(n_params(model) / 1e6 - paper_millions) / paper_millions < 0.03


def test_dat_base_block_layout():
    with torch.device("meta"):
        model = DAT("base", head="logits")
    names = [name for name, _ in model.deformable_blocks()]
    assert names == [f"stages.2.attns.{j}" for j in range(1, 18, 2)] + ["stages.3.attns.1"]
    assert [type(a).__name__ for a in model.stages[0].attns] == ["LocalAttention", "ShiftWindowAttention"]
    assert model.stages[0].attns[1].shift_size == 4
    d3, d4 = model.stages[2].attns[1], model.stages[3].attns[1]
    assert (d3.groups, d3.heads, d3.group_channels, d3.conv_offset[0].kernel_size) == (4, 16, 128, (5, 5))
    assert (d4.groups, d4.heads, d4.group_channels, d4.conv_offset[0].kernel_size) == (8, 32, 128, (3, 3))
    assert tuple(d3.rpe_table.shape) == (16, 27, 27) and tuple(d4.rpe_table.shape) == (32, 13, 13)
    assert d3.ref_point14 is None  # plain DAT has no learned references


def test_smoke_forward_shapes_and_positions():
    torch.manual_seed(0)
    model = DAT("smoke", head="softmax10").eval()
    out = model(torch.randn(3, 3, 64, 64))
    assert out["pred"].shape == (3, 10)
    assert torch.allclose(out["pred"].sum(-1), torch.ones(3), atol=1e-5)
    assert [tuple(p.shape) for p in out["positions"]] == [(3, 2, 8, 8, 2), (3, 4, 4, 4, 2)]
    assert [tuple(r.shape) for r in out["references"]] == [(3, 2, 8, 8, 2), (3, 4, 4, 4, 2)]


def test_grid_reference_and_offset_bound():
    torch.manual_seed(0)
    model = DAT("smoke").eval()
    out = model(torch.randn(2, 3, 64, 64))
    for pos, ref in zip(out["positions"], out["references"]):
        size = ref.shape[2]
        centres = (torch.arange(size) + 0.5) / size * 2 - 1
        assert torch.allclose(ref[0, 0, :, 0, 0], centres) and torch.allclose(ref[0, 0, 0, :, 1], centres)
        # offset_range_factor 2: at most one cell (2/size in normalised units) per coordinate
        assert (pos - ref).abs().max() < 2 / size


def test_uniform_grid_hand_values():
    grid = uniform_grid(2, 4)
    assert torch.allclose(grid[:, 0, 0], torch.tensor([-0.5, 0.5]))
    assert torch.allclose(grid[0, :, 1], torch.tensor([-0.75, -0.25, 0.25, 0.75]))


def naive_deformable(module: DeformableAttention, x_nchw: torch.Tensor) -> torch.Tensor:
    """The official DAT algorithm, written with per-head einsums in NCHW (grid reference, no mask)."""
    B, C, H, W = x_nchw.shape
    G, M, c, d = module.groups, module.heads, module.group_channels, module.head_dim
    q = module.proj_q(x_nchw)
    offset = module.conv_offset(q.reshape(B * G, c, H, W))
    offset = offset.tanh() * torch.tensor([1 / H, 1 / W]).view(1, 2, 1, 1) * module.offset_range_factor
    ref = uniform_grid(H, W).expand(B * G, H, W, 2)
    pos = offset.permute(0, 2, 3, 1) + ref
    sampled = F.grid_sample(x_nchw.reshape(B * G, c, H, W), pos[..., (1, 0)], align_corners=True).reshape(B, C, 1, H * W)
    qh = q.reshape(B * M, d, H * W)
    k = module.proj_k(sampled).reshape(B * M, d, H * W)
    v = module.proj_v(sampled).reshape(B * M, d, H * W)
    attn = torch.einsum("bcm,bcn->bmn", qh, k) / math.sqrt(d)
    table = module.rpe_table[None].expand(B, -1, -1, -1).reshape(B * G, M // G, 2 * H - 1, 2 * W - 1)
    disp = (ref.reshape(B * G, H * W, 1, 2) - pos.reshape(B * G, 1, H * W, 2)) * 0.5
    attn = attn + F.grid_sample(table, disp[..., (1, 0)], align_corners=True).reshape(B * M, H * W, H * W)
    out = torch.einsum("bmn,bcn->bcm", attn.softmax(-1), v).reshape(B, C, H, W)
    return module.proj_out(out)


def test_deformable_attention_matches_naive_official_algorithm():
    torch.manual_seed(0)
    module = DeformableAttention(dim=32, heads=4, groups=2, fmap_size=5, offset_kernel=3, offset_range_factor=2)
    with torch.no_grad():
        module.conv_offset[3].weight.normal_(0, 2.0)  # visible offsets
        module.rpe_table.normal_(0, 1.0)
    x = torch.randn(2, 5, 5, 32)
    out, pos, ref = module(x)
    expected = naive_deformable(module, x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(out, expected, atol=1e-5)
    assert (pos - ref).abs().max() > 0.05
    with record_attention(module):
        out_explicit, _, _ = module(x)
    assert torch.allclose(out_explicit, out, atol=1e-5)
    assert module.last_attention.shape == (2, 4, 5, 5, 5, 5)
    assert torch.allclose(module.last_attention.sum(dim=(-1, -2)), torch.ones(2, 4, 5, 5), atol=1e-5)


def naive_window_attention(module: LocalAttention, x: torch.Tensor, shift: int) -> torch.Tensor:
    """Window attention with explicit loops over windows and heads; region labels built independently."""
    B, H, W, C = x.shape
    w, M = module.window_size, module.heads
    d = C // M
    xs = torch.roll(x, (-shift, -shift), (1, 2))
    labels = torch.zeros(H, W)
    if shift:
        edges = [0, H - w, H - shift, H]
        for a in range(3):
            for b in range(3):
                labels[edges[a]:edges[a + 1], edges[b]:edges[b + 1]] = 3 * a + b
    out = torch.zeros_like(xs)
    for r in range(0, H, w):
        for s in range(0, W, w):
            tokens = xs[:, r:r + w, s:s + w].reshape(B, w * w, C)
            lab = labels[r:r + w, s:s + w].reshape(-1)
            q, k, v = module.proj_qkv(tokens).chunk(3, dim=-1)
            heads_out = []
            for h in range(M):
                qh, kh, vh = (t[..., h * d:(h + 1) * d] for t in (q, k, v))
                logits = qh @ kh.transpose(1, 2) / math.sqrt(d)
                for i in range(w * w):
                    for j in range(w * w):
                        di, dj = divmod(i, w), divmod(j, w)
                        idx = (di[0] - dj[0] + w - 1) * (2 * w - 1) + (di[1] - dj[1] + w - 1)
                        logits[:, i, j] += module.relative_position_bias_table[idx, h] + (-100.0 if lab[i] != lab[j] else 0.0)
                heads_out.append(logits.softmax(-1) @ vh)
            out[:, r:r + w, s:s + w] = module.proj_out(torch.cat(heads_out, -1)).reshape(B, w, w, C)
    return torch.roll(out, (shift, shift), (1, 2))


@pytest.mark.parametrize("shifted", [False, True])
def test_window_attention_matches_naive_loops(shifted):
    torch.manual_seed(0)
    module = ShiftWindowAttention(8, 2, 2, 1, 4) if shifted else LocalAttention(8, 2, 2)
    with torch.no_grad():
        module.relative_position_bias_table.normal_(0, 1.0)
    x = torch.randn(2, 4, 4, 8)
    out, pos, ref = module(x)
    assert pos is None and ref is None
    assert torch.allclose(out, naive_window_attention(module, x, 1 if shifted else 0), atol=1e-5)


def test_shift_is_ceil_half_window_and_mask_is_minus_100():
    module = ShiftWindowAttention(8, 2, 7, math.ceil(7 / 2), 14)
    assert module.shift_size == 4
    assert set(module.attn_mask.unique().tolist()) == {-100.0, 0.0}
    assert module.attn_mask.shape == (4, 49, 49)
    assert module.attn_mask[0].abs().sum() == 0  # the top-left window holds one region only


def _offsets_and_refs():
    offset = torch.tensor([[0.1, 0.2], [-0.1, 0.2], [0.1, -0.2], [-0.3, -0.1]]).view(1, 4, 1, 2)
    ref = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [-0.5, -0.5]]).view(1, 4, 1, 2)
    return offset, ref


@pytest.mark.parametrize(
    "offset_mask, direction, progress, expected_scale",
    [
        ("none", "outward", 0.0, [1, 1, 1, 1]),
        ("sign_agree", "outward", 0.0, [1, 0.25, 0.25, 1]),
        ("sign_agree", "inward", 0.0, [0.25, 1, 1, 0.25]),
        ("schedule", "outward", 0.5, [1, 0.625, 0.625, 1]),
        ("schedule", "outward", 1.0, [1, 1, 1, 1]),
    ],
)
def test_offset_mask_hand_values(offset_mask, direction, progress, expected_scale):
    module = DeformableAttention(16, 2, 1, 4, 3, 2, reference="learned_per_sample", offset_mask=offset_mask, mask_direction=direction)
    set_offset_mask_progress(module, progress)
    offset, ref = _offsets_and_refs()
    offset.requires_grad_(True)
    masked = module.mask_offsets(offset, ref)
    scale = torch.tensor(expected_scale, dtype=torch.float32).view(1, 4, 1, 1)
    assert torch.allclose(masked, offset.detach() * scale)
    masked.sum().backward()  # the mask is a constant: d masked / d offset = the scale
    assert torch.allclose(offset.grad, scale.expand_as(offset))


def test_gradients_reach_offset_network_and_rpe():
    torch.manual_seed(0)
    model = DAT("smoke", head="raw10", reference="learned_per_sample", offset_mask="sign_agree")
    out = model(torch.randn(2, 3, 64, 64))
    (out["pred"].sum() + sum(p.sum() for p in out["positions"])).backward()
    for _, block in model.deformable_blocks():
        for param in (block.conv_offset[0].weight, block.conv_offset[3].weight, block.rpe_table, block.ref_point14.weight):
            assert param.grad is not None and param.grad.abs().sum() > 0


def test_bad_inputs_raise_clear_errors():
    model = DAT("smoke")
    with pytest.raises(ValueError, match="img_size=64"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="reference"):
        DAT("smoke", reference="random")
    with pytest.raises(ValueError, match="head"):
        DAT("smoke", head="softmax5")
    with pytest.raises(ValueError, match="window_sizes"):
        make_dat_config("smoke", img_size=72)
    with pytest.raises(ValueError, match="config"):
        DAT("huge")


def test_bf16_autocast_forward_is_finite():
    torch.manual_seed(0)
    model = DAT("smoke", head="raw10", reference="learned_per_sample", offset_mask="sign_agree").eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 64, 64))
    assert torch.isfinite(out["pred"].float()).all()


@pytest.mark.slow
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    model = DAT("smoke", head="softmax10", reference="learned_per_sample", offset_mask="sign_agree").eval()
    x = torch.randn(2, 3, 64, 64)
    compiled = torch.compile(model)
    assert torch.allclose(compiled(x)["pred"], model(x)["pred"], atol=1e-4)


# --- official checkpoint layout -----------------------------------------------------------------------------

def official_key_shapes(cfg, num_outputs: int, learned_reference: bool) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of an official DAT v1 / EAT state dict, written out from the official layout."""
    keys = {
        "patch_proj.0.weight": (cfg.dim_stem, 3, cfg.patch_size, cfg.patch_size), "patch_proj.0.bias": (cfg.dim_stem,),
        "patch_proj.1.norm.weight": (cfg.dim_stem,), "patch_proj.1.norm.bias": (cfg.dim_stem,),
    }
    size = cfg.img_size // cfg.patch_size
    for i, (dim, spec) in enumerate(zip(cfg.dims, cfg.stage_spec)):
        heads, w = cfg.heads[i], cfg.window_sizes[i]
        for j, kind in enumerate(spec):
            p = f"stages.{i}."
            for n in (2 * j, 2 * j + 1):
                keys[f"{p}layer_norms.{n}.norm.weight"] = keys[f"{p}layer_norms.{n}.norm.bias"] = (dim,)
            keys[f"{p}mlps.{j}.chunk.linear1.weight"] = (4 * dim, dim)
            keys[f"{p}mlps.{j}.chunk.linear1.bias"] = (4 * dim,)
            keys[f"{p}mlps.{j}.chunk.linear2.weight"] = (dim, 4 * dim)
            keys[f"{p}mlps.{j}.chunk.linear2.bias"] = (dim,)
            a = f"{p}attns.{j}."
            if kind in "LS":
                keys.update({a + "proj_qkv.weight": (3 * dim, dim), a + "proj_qkv.bias": (3 * dim,), a + "proj_out.weight": (dim, dim),
                             a + "proj_out.bias": (dim,), a + "relative_position_bias_table": ((2 * w - 1) ** 2, heads),
                             a + "relative_position_index": (w * w, w * w)})
                if kind == "S":
                    keys[a + "attn_mask"] = ((size // w) ** 2, w * w, w * w)
            else:
                cg, k = dim // cfg.groups[i], cfg.offset_kernel_sizes[i]
                keys.update({a + "conv_offset.0.weight": (cg, 1, k, k), a + "conv_offset.0.bias": (cg,),
                             a + "conv_offset.1.norm.weight": (cg,), a + "conv_offset.1.norm.bias": (cg,),
                             a + "conv_offset.3.weight": (2, cg, 1, 1), a + "rpe_table": (heads, 2 * size - 1, 2 * size - 1)})
                for proj in ("q", "k", "v", "out"):
                    keys[a + f"proj_{proj}.weight"], keys[a + f"proj_{proj}.bias"] = (dim, dim, 1, 1), (dim,)
                if learned_reference:
                    keys[a + "ref_point14.weight"], keys[a + "ref_point14.bias"] = (2, dim, 1, 1), (2,)
        if i < len(cfg.dims) - 1:
            keys[f"down_projs.{i}.0.weight"] = (cfg.dims[i + 1], dim, 2, 2)
            keys[f"down_projs.{i}.1.norm.weight"] = keys[f"down_projs.{i}.1.norm.bias"] = (cfg.dims[i + 1],)
            size //= 2
    keys.update({"cls_norm.norm.weight": (cfg.dims[-1],), "cls_norm.norm.bias": (cfg.dims[-1],),
                 "cls_head.weight": (num_outputs, cfg.dims[-1]), "cls_head.bias": (num_outputs,)})
    return keys


def test_official_layout_of_eat_base_has_455_keys_and_matches_the_model():
    keys = official_key_shapes(make_dat_config("base"), 10, learned_reference=True)
    assert len(keys) == 455
    with torch.device("meta"):
        model = DAT("base", head="raw10", reference="learned_batch_mean")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == keys


def generated_state_dict(model: DAT, num_outputs: int, learned_reference: bool) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    state = {k: torch.randn(shape, generator=gen) for k, shape in official_key_shapes(model.cfg, num_outputs, learned_reference).items()}
    own = model.state_dict()  # buffers are fixed functions of the layout: the official file holds the same values
    for k in state:
        if k.endswith(("relative_position_index", "attn_mask")):
            state[k] = own[k].clone()
    return state


def published_dat(**overrides) -> DAT:
    """A DAT with the official EAT switches (the only model an EAT checkpoint loads into)."""
    return DAT("smoke", head="raw10", reference="learned_batch_mean", offset_mask="sign_agree", **overrides)


def test_load_eat_checkpoint_with_dataparallel_prefix():
    model = published_dat()
    state = generated_state_dict(model, 10, learned_reference=True)
    report = load_official_checkpoint(model, {"module." + k: v for k, v in state.items()})
    assert report["missing"] == [] and report["dropped"] == []
    assert torch.equal(model.stages[1].attns[1].proj_q.weight, state["stages.1.attns.1.proj_q.weight"])
    assert torch.equal(model.stages[2].attns[1].ref_point14.bias, state["stages.2.attns.1.ref_point14.bias"])
    assert torch.equal(model.cls_norm.norm.weight, state["cls_norm.norm.weight"])


def test_load_dat_imagenet_checkpoint_drops_head_and_keeps_fresh_references(tmp_path):
    model = DAT("smoke", head="raw10", reference="learned_batch_mean")
    fresh_ref = model.stages[1].attns[1].ref_point14.weight.detach().clone()
    state = generated_state_dict(model, 1000, learned_reference=False)
    torch.save({"model": state, "epoch": 300}, tmp_path / "dat_imagenet.pth")
    report = load_official_checkpoint(model, tmp_path / "dat_imagenet.pth")
    assert set(report["dropped"]) == {"cls_head.weight", "cls_head.bias"}
    assert set(report["missing"]) == {k for k in model.state_dict() if "ref_point14" in k or k.startswith("cls_head")}
    assert torch.equal(model.stages[1].attns[1].ref_point14.weight, fresh_ref)
    assert torch.equal(model.patch_proj[0].weight, state["patch_proj.0.weight"])


def test_load_rejects_eat_checkpoints_of_another_resolution_and_missing_files(tmp_path):
    model = published_dat()
    other = published_dat(img_size=128, window_sizes=(8, 4, 4))
    with pytest.raises(ValueError, match="shape mismatch"):  # EAT weights are evaluated as released, never resized
        load_official_checkpoint(model, other.state_dict())
    with pytest.raises(FileNotFoundError, match="dat_base_in1k_224"):
        load_official_checkpoint(model, tmp_path / "missing.pth")
    state = generated_state_dict(model, 10, learned_reference=True)
    del state["stages.0.attns.0.proj_qkv.weight"]
    with pytest.raises(ValueError, match="missing"):
        load_official_checkpoint(model, state)


def test_normalised_to_pixels_and_offset_kept_hand_values():
    corners = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    # 4x4 map on a 64 px image: cell centres at 8, 24, 40, 56 px; the map centre at 32 px
    assert torch.allclose(normalised_to_pixels(corners, 4, 64), torch.tensor([[8.0, 8.0], [56.0, 56.0], [32.0, 32.0]]))
    refs = torch.tensor([[0.5, 0.5], [0.5, -0.5]])
    pos = torch.tensor([[0.6, 0.7], [0.6, -0.4]])
    assert offset_kept(pos, refs).tolist() == [True, False]


def meta_state(cfg, num_outputs: int, learned_reference: bool) -> dict[str, torch.Tensor]:
    """An official-layout state dict of meta tensors (keys and shapes only) for checks that never read values."""
    return {k: torch.empty(shape, device="meta") for k, shape in official_key_shapes(cfg, num_outputs, learned_reference).items()}


def test_full_eat_checkpoint_is_refused_by_the_textbook_variant_naming_eat_as_published():
    with torch.device("meta"):
        textbook = EAT("full", variant="eat_textbook")
    released = meta_state(make_dat_config("base"), 10, learned_reference=True)  # EAT's AVA .pth layout
    with pytest.raises(ValueError, match=r"official EAT checkpoint \(AVA, 10 raw outputs\).*variant 'eat_as_published'"
                                         r".*variant='eat_textbook', reference='learned_per_sample' \(needs "
                                         r"'learned_batch_mean'\), head='softmax10' \(needs 'raw10'\).*"
                                         r"EAT\(config='full', variant='eat_as_published'\)"):
        load_official_checkpoint(textbook, released)


def test_eat_checkpoints_load_only_into_the_variant_that_trained_them():
    ava = generated_state_dict(published_dat(), 10, learned_reference=True)
    report = load_official_checkpoint(EAT("smoke", variant="eat_as_published"), ava)
    assert report["missing"] == [] and report["ignored"] == [] and report["resized"] == []
    with pytest.raises(ValueError, match=r"reference='grid' \(needs 'learned_batch_mean'\), offset_mask='none'"):
        load_official_checkpoint(DAT("smoke", head="raw10"), ava)
    tad66k = generated_state_dict(EAT("smoke", variant="eat_as_published", head="scalar"), 1, learned_reference=True)
    with pytest.raises(ValueError, match=r"TAD66K, 1 scalar output.*head='raw10' \(needs 'scalar'\).*head='scalar'\)"):
        load_official_checkpoint(EAT("smoke", variant="eat_as_published"), tad66k)
    scalar = EAT("smoke", variant="eat_as_published", head="scalar")
    load_official_checkpoint(scalar, tad66k)
    assert torch.equal(scalar.cls_head.weight, tad66k["cls_head.weight"])


def ramp_tables(state: dict[str, torch.Tensor]) -> None:
    """Fill position tables with 100 * head + row coordinate (Swin tables: a of index a*(2w-1)+b; rpe: y)."""
    for key, table in state.items():
        if key.endswith("relative_position_bias_table"):
            side, heads = math.isqrt(table.shape[0]), table.shape[1]
            state[key] = torch.arange(side).repeat_interleave(side).float()[:, None] + 100.0 * torch.arange(heads)
        elif key.endswith("rpe_table"):
            heads, rows, cols = table.shape
            state[key] = (100.0 * torch.arange(heads)[:, None, None] + torch.arange(rows)[None, :, None]).expand(-1, -1, cols).clone()


def test_dat_checkpoint_of_another_resolution_loads_with_bicubic_tables():
    source = DAT("smoke", head="logits", img_size=128, window_sizes=(8, 4, 4))  # an ImageNet DAT at 128 px
    state = generated_state_dict(source, 1000, learned_reference=False)
    ramp_tables(state)
    state["unused_layer.weight"] = torch.zeros(3)  # a key the model lacks: tolerated and reported
    target = published_dat()  # 64 px, EAT switches, fresh ref_point14 layers
    report = load_official_checkpoint(target, state)
    assert report["ignored"] == ["unused_layer.weight"] and sorted(report["dropped"]) == ["cls_head.bias", "cls_head.weight"]
    assert report["resized"] == ["stages.0.attns.0.relative_position_bias_table",
                                 "stages.0.attns.1.relative_position_bias_table",
                                 "stages.1.attns.1.rpe_table", "stages.2.attns.1.rpe_table"]
    assert report["replaced"] == ["stages.0.attns.0.relative_position_index", "stages.0.attns.1.attn_mask",
                                  "stages.0.attns.1.relative_position_index"]
    table = target.stages[0].attns[0].relative_position_bias_table.detach()  # (7*7, heads=1), was (15*15, 1)
    grid = table.T.reshape(-1, 7, 7)
    assert torch.allclose(grid, grid[:, :, :1].expand(-1, -1, 7))  # still constant along the column offset
    assert torch.allclose(grid[0, 3, 0], torch.tensor(7.0))  # the centre maps onto the source centre (15-1)/2
    assert (grid[0, 1:, 0] >= grid[0, :-1, 0] - 1e-5).all()
    rpe = target.stages[2].attns[1].rpe_table.detach()  # (4 heads, 7, 7), was (4, 15, 15)
    assert torch.allclose(rpe[:, 3, 3], 100.0 * torch.arange(4) + 7.0, atol=1e-4)  # heads kept apart, centre exact
    assert torch.allclose(rpe, rpe[:, :, :1].expand(-1, -1, 7))
    own = published_dat().state_dict()
    for key in report["replaced"]:
        assert torch.equal(target.state_dict()[key], own[key])
    assert torch.equal(target.stages[1].attns[1].proj_q.weight, state["stages.1.attns.1.proj_q.weight"])
    assert target(torch.randn(1, 3, 64, 64))["pred"].shape == (1, 10)


def test_resize_position_table_keeps_constants_and_refuses_other_heads():
    constant = torch.full((15 * 15, 3), 0.37)
    assert torch.allclose(resize_position_table(constant, (7 * 7, 3)), torch.full((49, 3), 0.37))
    with pytest.raises(ValueError, match="heads must match"):
        resize_position_table(torch.zeros(4, 15, 15), (8, 7, 7))
