"""fit under torchrun with 2 CPU processes (gloo DDP) equals single-process training on the same global batches."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from iaa_lib.losses import EMDLoss
from iaa_lib.training import FitConfig, fit
from iaa_lib.training.distributed import ShardSampler

TESTS_DIR = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    sys.path.insert(0, {tests_dir!r})
    from torch.utils.data import DataLoader
    from test_engine import BrightnessSet, make_model
    from iaa_lib.losses import EMDLoss
    from iaa_lib.training import FitConfig, fit

    torch.set_num_threads(1)
    model = make_model()
    model.head[0].p = 0.0  # no dropout: DDP and one process then see identical computations
    train = DataLoader(BrightnessSet(48, seed=1), batch_size=4, shuffle=False)  # per-process batch
    val = DataLoader(BrightnessSet(21, seed=2), batch_size=4)
    cfg = FitConfig(epochs=2, lr=3e-2, warmup_epochs=1, device="cpu", out_dir={out_dir!r}, progress=True,
                    restore_best=False)
    history = fit(model, EMDLoss(r=2), train, val, cfg)
    rank = torch.distributed.get_rank()
    torch.save(model.state_dict(), {out_dir!r} + f"/params_rank{{rank}}.pt")
    """
)


def test_shard_sampler_covers_each_index_once():
    shards = [list(ShardSampler(7, rank, 2)) for rank in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5]]
    assert len(ShardSampler(7, 1, 2)) == 3


def test_torchrun_two_cpu_processes_match_single_process(tmp_path):
    script = tmp_path / "ddp_fit.py"
    out_dir = tmp_path / "ddp"
    script.write_text(SCRIPT.format(tests_dir=str(TESTS_DIR), out_dir=str(out_dir)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summaries = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(summaries) == 2  # rank 0 only prints
    history = json.loads((out_dir / "history.json").read_text())
    assert history["world_size"] == 2
    assert all(row["val_n"] == 21 for row in history["epochs"])  # gathered over both ranks, no padding
    ranks = [torch.load(out_dir / f"params_rank{r}.pt") for r in range(2)]
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name])  # replicas in sync

    # one process, global batch 8 = the two ranks' batches of 4 (DistributedSampler without shuffle interleaves)
    from test_engine import BrightnessSet, make_model

    torch.manual_seed(0)
    model = make_model()
    model.head[0].p = 0.0
    train = DataLoader(BrightnessSet(48, seed=1), batch_size=8, shuffle=False)
    val = DataLoader(BrightnessSet(21, seed=2), batch_size=4)
    single = fit(model, EMDLoss(r=2), train, val, FitConfig(
        epochs=2, lr=3e-2, warmup_epochs=1, device="cpu", out_dir=str(tmp_path / "single"), progress=False,
        restore_best=False,
    ))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-4, atol=1e-5)
    for ddp_row, single_row in zip(history["epochs"], single["epochs"]):
        assert ddp_row["val_srcc"] == pytest.approx(single_row["val_srcc"], abs=1e-4)
        assert ddp_row["val_emd2"] == pytest.approx(single_row["val_emd2"], abs=1e-5)
        assert ddp_row["train_loss"] == pytest.approx(single_row["train_loss"], abs=1e-5)
