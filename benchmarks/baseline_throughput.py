"""Throughput of the NIMA baseline: training img/s (CPU fp32, CUDA bf16) and data-loader img/s on the AVA sample.

Usage: python benchmarks/baseline_throughput.py --out runs/bench/baseline_throughput.csv [--device auto|cpu|cuda]
Writes the CSV and a markdown table next to it (same name, .md). Rows:
  loader   decode + train transform of the 77 embedded AVA photos, num_workers 0 and 2 (img/s, whole passes);
  train    NIMA optimiser steps (forward, EMD loss, backward, AdamW) on a resident batch (pure compute);
  fit      iaa_lib.training.fit for one epoch over the sample through the real loader (end to end).
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from iaa_lib.book.bench import time_steps
from iaa_lib.book.provenance import results_header, results_record, write_results_provenance
from iaa_lib.data.datasets import AestheticDataset
from iaa_lib.data.sample import load_ava_sample
from iaa_lib.data.transforms import train_transform
from iaa_lib.losses import EMDLoss
from iaa_lib.nima.model import NIMA
from iaa_lib.training.engine import FitConfig, fit, make_optimizer


def loader_throughput(image_size: int, batch_size: int, num_workers: int, passes: int) -> float:
    """Images per second decoded and transformed by a DataLoader over the AVA sample (after one warm-up pass)."""
    frame, image_dir = load_ava_sample()
    dataset = AestheticDataset(frame, image_dir, train_transform(image_size, (0.5,) * 3, (0.5,) * 3))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                        persistent_workers=num_workers > 0)

    def one_pass() -> None:
        for _ in loader:
            pass

    seconds = time_steps(one_pass, passes, 1, torch.device("cpu"))  # the untimed pass: worker start, file cache
    return len(dataset) * passes / sum(seconds)


def train_step_throughput(device: torch.device, image_size: int, batch_size: int, steps: int, amp: bool,
                          channels_last: bool) -> float:
    """Images per second of NIMA smoke training steps on one resident random batch (after 2 warm-up steps)."""
    model = NIMA(config="smoke").to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, FitConfig(lr=1e-4, backbone_lr=1e-5))
    loss_fn = EMDLoss(r=2)
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    target = torch.softmax(torch.randn(batch_size, 10, device=device), -1)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            pred = model(images)
        loss = loss_fn(pred.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return batch_size / statistics.median(time_steps(step, steps, 2, device))


def fit_throughput(device: torch.device, image_size: int, batch_size: int, num_workers: int) -> float:
    """Training img/s that fit reports for one epoch over the AVA sample through the real loader."""
    frame, image_dir = load_ava_sample()
    dataset = AestheticDataset(frame, image_dir, train_transform(image_size, (0.5,) * 3, (0.5,) * 3))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, drop_last=True,
                        pin_memory=device.type == "cuda")
    with tempfile.TemporaryDirectory() as out_dir:
        history = fit(NIMA(config="smoke"), EMDLoss(r=2), loader, None, FitConfig(
            epochs=1, lr=1e-4, backbone_lr=1e-5, device=str(device), out_dir=out_dir, progress=False,
            channels_last=device.type == "cuda",
        ))
    return history["epochs"][0]["train_img_per_s"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="CSV path; the markdown table goes next to it with suffix .md")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = CPU, plus CUDA when available")
    parser.add_argument("--image-size", type=int, default=224, help="training resolution in pixels (default 224)")
    parser.add_argument("--cpu-batch-size", type=int, default=16, help="CPU batch size (default 16)")
    parser.add_argument("--cuda-batch-size", type=int, default=128, help="CUDA batch size (default 128)")
    parser.add_argument("--cpu-steps", type=int, default=5, help="timed CPU training steps (default 5)")
    parser.add_argument("--cuda-steps", type=int, default=30, help="timed CUDA training steps (default 30)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-fit", action="store_true", help="leave out the end-to-end fit row")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    devices = []
    if args.device in ("auto", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            parser.error("--device cuda but torch.cuda.is_available() is False")
        devices.append(torch.device("cuda"))
    record = results_record(shlex.join(["python", "benchmarks/baseline_throughput.py",
                                        *(sys.argv[1:] if argv is None else argv)]))  # before writing results
    rows = []
    for workers in (0, 2):
        rows.append({"what": "loader", "device": "cpu", "precision": "-", "batch_size": args.cpu_batch_size,
                     "num_workers": workers, "img_per_s": loader_throughput(args.image_size, args.cpu_batch_size, workers, passes=2)})
        print(rows[-1], flush=True)
    for device in devices:
        cuda = device.type == "cuda"
        batch = args.cuda_batch_size if cuda else args.cpu_batch_size
        speed = train_step_throughput(device, args.image_size, batch, args.cuda_steps if cuda else args.cpu_steps,
                                      amp=cuda, channels_last=cuda)
        rows.append({"what": "train", "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
                     "precision": "bf16 autocast" if cuda else "fp32", "batch_size": batch, "num_workers": "-", "img_per_s": speed})
        print(rows[-1], flush=True)
        if not args.skip_fit:
            speed = fit_throughput(device, args.image_size, min(batch, 32), num_workers=2)
            rows.append({"what": "fit (1 epoch, real loader)", "device": rows[-1]["device"], "precision": rows[-1]["precision"],
                         "batch_size": min(batch, 32), "num_workers": 2, "img_per_s": speed})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["image_size"] = args.image_size
    table["torch_threads"] = torch.get_num_threads()
    table["cpu_count"] = os.cpu_count()
    table["img_per_s"] = table["img_per_s"].round(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    write_results_provenance(out, record)
    out.with_suffix(".md").write_text(results_header(record) + table.to_markdown(index=False) + "\n")
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
