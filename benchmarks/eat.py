"""EAT throughput and peak memory: forward and forward+backward img/s of EAT-base and the smoke config.

CPU: fp32, each measurement in a fresh subprocess so peak RSS (ru_maxrss) belongs to it alone.
CUDA (when available): bf16 autocast, eager and torch.compile, peak = torch.cuda.max_memory_allocated.
Writes benchmarks/results/eat_<device>.csv, .md and .provenance.json (command, commit, date, hardware).

    python benchmarks/eat.py [--device cpu|cuda|all] [--batch 16] [--size 224] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from iaa_lib.book.provenance import results_header, results_record, write_results_provenance
from iaa_lib.eat.model import EAT

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {
    "EAT-base (full)": dict(config="full"),
    "EAT smoke": dict(config="smoke", window_sizes=(7, 7, 7)),  # 7x7 windows so the smoke layout fits 224 px
}


def build(name: str, size: int) -> torch.nn.Module:
    """The benchmarked model (as-published variant: raw10 head, batch-mean references) at `size` px."""
    return EAT(variant="eat_as_published", img_size=size, **MODELS[name])


def measure(name: str, mode: str, device: str, batch: int, size: int, repeats: int, compile_model: bool) -> dict:
    """img/s and peak memory (MiB) of one (model, mode) on one device."""
    torch.manual_seed(0)
    model = build(name, size).to(device)
    model.train(mode == "forward+backward")
    if compile_model:
        model = torch.compile(model)
    images = torch.randn(batch, 3, size, size, device=device)
    use_bf16 = device == "cuda"

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=use_bf16):
            if mode == "forward":
                with torch.no_grad():
                    model(images)
            else:
                pred = model(images)["pred"]
                pred.float().sum().backward()
                model.zero_grad(set_to_none=True)

    step()  # warm-up (and compilation)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repeats
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": name, "mode": mode, "device": device, "precision": "bf16 autocast" if use_bf16 else "fp32",
            "compile": compile_model, "batch": batch, "size": size, "img_per_s": batch / seconds,
            "ms_per_batch": 1000 * seconds, "peak_mib": peak,
            "params": sum(p.numel() for p in build(name, size).parameters())}


def run(device: str, batch: int, size: int, repeats: int) -> pd.DataFrame:
    rows = []
    for name in MODELS:
        for mode in ("forward", "forward+backward"):
            for compile_model in ((False, True) if device == "cuda" else (False,)):
                if device == "cpu":  # fresh process: its peak RSS is this measurement's
                    args = [sys.executable, __file__, "--child", json.dumps([name, mode, batch, size, repeats])]
                    result = subprocess.run(args, capture_output=True, text=True, check=True)
                    rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
                else:
                    rows.append(measure(name, mode, device, batch, size, repeats, compile_model))
                    torch.cuda.empty_cache()
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def write(frame: pd.DataFrame, device: str, record: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    frame.to_csv(RESULTS / f"eat_{device}.csv", index=False)
    write_results_provenance(RESULTS / f"eat_{device}.csv", record)
    shown = frame[["model", "mode", "precision", "compile", "batch", "size", "img_per_s", "ms_per_batch", "peak_mib"]].copy()
    shown["img_per_s"] = shown["img_per_s"].round(1)
    shown["ms_per_batch"] = shown["ms_per_batch"].round(0).astype(int)
    shown["peak_mib"] = shown["peak_mib"].round(0).astype(int)
    header = f"Device: {torch.cuda.get_device_name() if device == 'cuda' else 'CPU, ' + str(torch.get_num_threads()) + ' threads'}; torch {torch.__version__}.\n\n"
    peak_note = "peak = torch.cuda.max_memory_allocated" if device == "cuda" else "peak = process peak RSS (includes the Python/torch runtime)"
    table = shown.to_markdown(index=False)
    (RESULTS / f"eat_{device}.md").write_text(results_header(record) + header + table + f"\n\n({peak_note}.)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, mode, batch, size, repeats = json.loads(args.child)
        print(json.dumps(measure(name, mode, "cpu", batch, size, repeats, False)))
        return
    record = results_record(shlex.join(["python", "benchmarks/eat.py", *sys.argv[1:]]))  # before writing results
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("CUDA not available: skipping the GPU benchmark")
            continue
        write(run(device, args.batch, args.size, args.repeats), device, record)


if __name__ == "__main__":
    main()
