"""CUDA checks (run with `-m gpu` on a machine with a GPU): models give the CPU's answer under bf16 autocast
and the engine trains on the device."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float().cpu() - ref.float()).norm() / ref.float().norm())


def compare_cpu_cuda(model: torch.nn.Module, inputs: dict, tolerance: float) -> None:
    model = model.eval()
    with torch.no_grad():
        ref = model(**inputs)
        ref = ref["pred"] if isinstance(ref, dict) else ref
        model.cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(**{k: v.cuda() for k, v in inputs.items()})
        out = out["pred"] if isinstance(out, dict) else out
    assert torch.isfinite(out).all()
    assert relative_error(out, ref) < tolerance


@pytest.mark.parametrize("variant", ["eat_textbook", "eat_as_published"])
def test_eat_base_bf16_matches_cpu(variant):
    from iaa_lib.eat.model import EAT
    torch.manual_seed(0)
    compare_cpu_cuda(EAT(config="full", variant=variant), {"image": torch.randn(2, 3, 224, 224)}, 3e-2)


def test_eat_base_trains_a_step_on_cuda_without_host_sync():
    from iaa_lib.eat.model import EAT, eat_loss
    model = EAT(config="full").cuda()
    images = torch.randn(4, 3, 224, 224, device="cuda")
    target = torch.softmax(torch.randn(4, 10, device="cuda"), 1)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = eat_loss()(model(image=images)["pred"], target)
    loss.backward()
    offset_grads = [p.grad for n, p in model.named_parameters() if "conv_offset" in n]
    assert offset_grads and all(g is not None and torch.isfinite(g).all() for g in offset_grads)


def test_milnet_full_bf16_matches_cpu():
    from iaa_lib.milnet.model import milnet
    torch.manual_seed(0)
    model = milnet(config="full")
    compare_cpu_cuda(model, {"nodes": torch.randn(8, model.num_nodes, model.in_dim)}, 3e-2)


def test_nima_fit_runs_on_cuda(tmp_path):
    from iaa_lib.losses import EMDLoss
    from iaa_lib.nima.model import NIMA
    from iaa_lib.training import FitConfig, fit
    images = torch.randn(32, 3, 96, 96)
    dist = torch.softmax(torch.randn(32, 10), 1)
    rows = [{"image": images[i], "dist": dist[i], "mos": (dist[i] * torch.arange(1, 11)).sum(),
             "image_id": str(i)} for i in range(32)]
    loader = DataLoader(rows, batch_size=8)
    history = fit(NIMA(weights=None), EMDLoss(r=2), loader, loader,
                  FitConfig(epochs=2, lr=1e-3, device="cuda", channels_last=True, out_dir=str(tmp_path), progress=False))
    assert len(history["epochs"]) == 2 and history["finished"]
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in history["epochs"])
