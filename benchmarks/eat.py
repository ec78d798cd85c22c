"""EAT speed: forward and training-step (forward + backward + SGD) img/s of our EAT-base, and of the official code.

One run, same process, same threads, same batch: ours and (with --official PATH, a checkout of the official
EAT / DAT v1 repository) the official model, measured in alternating rounds so both see the same machine state;
with the official model present, its state dict is loaded into ours and the outputs are compared (max |diff|).
CPU default: fp32, batch 8, 224 px. The GPU path a CUDA run would use: --precision bf16 --channels-last
--compile (attention always goes through F.scaled_dot_product_attention, fused on CUDA).
Timing: iaa_lib.book.bench.time_steps (median of --steps timed steps after --warmup). Writes
benchmarks/results/eat_<device>.csv, .md and .provenance.json.

    python benchmarks/eat.py [--device cpu|cuda] [--batch 8] [--size 224] [--threads 1] [--official PATH]
"""
from __future__ import annotations

import argparse
import importlib
import json
import shlex
import statistics
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import nn

from iaa_lib.book.bench import inference_step, time_steps, training_step
from iaa_lib.book.provenance import results_header, results_record, write_results_provenance
from iaa_lib.eat.dat import load_official_checkpoint
from iaa_lib.eat.model import EAT

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("forward", "train step")
# DAT-B in the keyword names of the official DAT v1 constructor (models/dat.py, configs/dat_base.yaml), EAT's
# 10 raw outputs; written from the official config, not yet run against the official code (not present here).
OFFICIAL_KWARGS = dict(
    img_size=224, patch_size=4, num_classes=10, expansion=4, dim_stem=128, dims=[128, 256, 512, 1024],
    depths=[2, 2, 18, 2], heads=[4, 8, 16, 32], window_sizes=[7, 7, 7, 7], drop_rate=0.0, attn_drop_rate=0.0,
    drop_path_rate=0.5, strides=[-1, -1, 1, 1], offset_range_factor=[-1, -1, 2, 2],
    stage_spec=[["L", "S"], ["L", "S"], ["L", "D"] * 9, ["L", "D"]], groups=[-1, -1, 4, 8],
    use_pes=[False, False, True, True], dwc_pes=[False] * 4, sr_ratios=[-1] * 4, fixed_pes=[False] * 4,
    no_offs=[False] * 4, ns_per_pts=[4] * 4, use_dwc_mlps=[False] * 4, use_conv_patches=False)


def ours(size: int) -> nn.Module:
    """Our EAT-base as published (raw10 head, batch-mean learned references, sign-agreement offset mask)."""
    return EAT(config="full", variant="eat_as_published", img_size=size)


def official(path: str, entry: str, kwargs: dict) -> nn.Module:
    """The official model: `entry` ("module:Class") imported from the repository at `path`, built with kwargs."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"--official {path}: not a folder; pass a checkout of the official EAT/DAT code")
    sys.path.insert(0, str(root))
    module_name, _, class_name = entry.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ImportError(f"--official {root}: cannot import {entry} ({error}); pass --official-entry module:Class") from error
    return cls(**kwargs)


def prediction(output) -> torch.Tensor:
    """The score tensor of a model output: our dict's "pred", the official (logits, positions, references)[0]."""
    if isinstance(output, dict):
        return output["pred"]
    return output[0] if isinstance(output, (tuple, list)) else output


class Scored(nn.Module):
    """Wraps a model so that its forward returns its prediction tensor only (the stand-in loss needs a tensor)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return prediction(self.model(image))


def max_output_difference(our_model: nn.Module, official_model: nn.Module, images: torch.Tensor) -> float:
    """Max |ours - official| of eval-mode outputs after loading the official state dict into ours."""
    load_official_checkpoint(our_model, official_model.state_dict())
    our_model.eval(), official_model.eval()
    with torch.no_grad():
        return float((prediction(our_model(images)) - prediction(official_model(images))).abs().max())


def prepare(model: nn.Module, device: str, channels_last: bool, compiled: bool) -> nn.Module:
    """The model on `device`, channels-last weights when asked, wrapped by torch.compile when asked."""
    model = Scored(model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compiled else model


def steps_for(model: nn.Module, images: torch.Tensor, device: torch.device, precision: str) -> dict[str, Callable]:
    """{mode: one step}: eval-mode no-grad forward, and train-mode forward + stand-in loss + backward + SGD."""
    return {"forward": inference_step(model, {"image": images}, device, precision),
            "train step": training_step(model, {"image": images}, device, precision, optimizer="sgd")}


def run(args) -> pd.DataFrame:
    """Median img/s of every (model, mode), the models measured in alternating rounds."""
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    models = {"ours": ours(args.size)}
    difference = None
    if args.official:
        models["official"] = official(args.official, args.official_entry, OFFICIAL_KWARGS)
        difference = max_output_difference(models["ours"], models["official"], images[:2].contiguous())
        print(f"max |ours - official| output difference: {difference:.2e}", flush=True)
    seconds: dict[tuple[str, str], list[float]] = {}
    for mode in MODES:
        runners = {name: prepare(model, args.device, args.channels_last, args.compile) for name, model in models.items()}
        steps = {name: steps_for(runner, images, device, args.precision)[mode] for name, runner in runners.items()}
        for _ in range(args.rounds):
            for name, step in steps.items():
                seconds.setdefault((name, mode), []).extend(time_steps(step, args.steps, args.warmup, device))
    rows = []
    for (name, mode), times in seconds.items():
        median = statistics.median(times)
        rows.append({"model": name, "mode": mode, "device": args.device, "precision": args.precision,
                     "channels_last": args.channels_last, "compile": args.compile, "batch": args.batch,
                     "size": args.size, "threads": torch.get_num_threads(), "img_per_s": args.batch / median,
                     "step_ms_median": 1000 * median, "timed_steps": len(times),
                     "max_output_diff": difference})
    frame = pd.DataFrame(rows)
    if args.official:
        frame["ours_over_official"] = [
            row.img_per_s / frame[(frame.model == "official") & (frame["mode"] == row.mode)].img_per_s.iloc[0]
            for row in frame.itertuples()]
    return frame


def write(frame: pd.DataFrame, device: str, record: dict) -> Path:
    """benchmarks/results/eat_<device>.csv, .md and .provenance.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    csv_path = RESULTS / f"eat_{device}.csv"
    frame.to_csv(csv_path, index=False)
    write_results_provenance(csv_path, record)
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    (RESULTS / f"eat_{device}.md").write_text(results_header(record) + f"Device: {where}; torch {torch.__version__}.\n\n"
                                              + frame.round(3).to_markdown(index=False) + "\n")
    return csv_path


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for both models")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of ours / official")
    parser.add_argument("--official", help="a checkout of the official EAT / DAT v1 repository (imported)")
    parser.add_argument("--official-entry", default="models.dat:DAT", help="module:Class of the official model")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast (GPU path)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last images and weights (GPU path)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models (GPU path)")
    parser.add_argument("--out", choices=("results", "none"), default="results",
                        help="write benchmarks/results/eat_<device>.* (results) or only print (none)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    record = results_record(shlex.join(["python", "benchmarks/eat.py", *(argv or sys.argv[1:])]))
    frame = run(args)
    print(frame.round(3).to_string(index=False))
    if args.out == "results":
        print(f"wrote {write(frame, args.device, record)}")
    print(json.dumps({f"{r.model} {r.mode}": round(r.img_per_s, 3) for r in frame.itertuples()}))


if __name__ == "__main__":
    main()
