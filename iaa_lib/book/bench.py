"""Speed, size and memory of every model of the book at its paper configuration (random init: speed does not
depend on the weights).

Per (model, device, precision, compiled, mode) one row: parameters, forward GFLOPs per image
(`torch.utils.flop_counter.FlopCounterMode`: matmul, convolution and attention kernels, 2 FLOPs per
multiply-add; elementwise ops, normalisation and grid_sample are not counted), images per second and peak memory.

* ``infer``: eval mode under ``torch.no_grad``.
* ``train``: train mode, forward + stand-in loss mean(pred²) (+ the model's own auxiliary loss) + backward
  + AdamW step over the trainable parameters. The stand-in costs next to nothing beside the network.

Warm-up steps are not timed; img/s = batch_size / median time of the timed steps (CUDA synchronised).
Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after a reset before the model is built
(``mem_kind="cuda_allocated"``: weights, activations, gradients, optimiser state); on CPU the peak resident set
size of a fresh Python process (``mem_kind="cpu_rss"``, includes the Python/torch runtime, reported alone as
``runtime_mem_mib``).
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from iaa_lib.models import PAPERS, paper_spec
from iaa_lib.spec import BenchSpec
from iaa_lib.files import atomic_write_text
from iaa_lib.training.evaluation import split_output

MODES = ("infer", "train")
PRECISIONS = ("fp32", "bf16")
ISOLATION = ("mode", "model")
CONFIGS = ("full", "smoke")
BENCHMARKED = PAPERS
COLUMNS = (
    "model", "label", "config", "input", "mode", "device", "device_name", "precision", "compiled", "batch_size",
    "steps", "warmup", "threads", "params", "trainable_params", "params_m", "gflops_per_image", "img_per_s",
    "step_ms_median", "peak_mem_mib", "mem_kind", "runtime_mem_mib", "torch_version", "note",
)


def bench_spec(model: str) -> BenchSpec:
    """How to benchmark `model`: its paper spec's BenchSpec."""
    return paper_spec(model).bench




def check_models(models: Sequence[str]) -> list[str]:
    """The requested model names, validated against BENCHMARKED (ValueError listing the known ones)."""
    models = list(models)
    unknown = [m for m in models if m not in BENCHMARKED]
    if unknown or not models:
        what = f"unknown model(s) {unknown}" if unknown else "no model given"
        raise ValueError(f"{what}; benchmarked models: {', '.join(BENCHMARKED)}")
    return models


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda when available else cpu; "cuda" without CUDA -> ValueError naming the fix."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from error
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; use cpu, cuda, cuda:N or auto")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch.cuda.is_available() is False (torch "
                         f"{torch.__version__}); use --device cpu or auto, or run on a machine with a CUDA GPU "
                         "and a CUDA build of torch")
    return resolved


def default_variants(device: torch.device) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """(precisions, compiled) benchmarked by default: CUDA fp32 + bf16, eager + compiled; CPU fp32 eager."""
    return (PRECISIONS, (False, True)) if device.type == "cuda" else (("fp32",), (False,))


# ------------------------------------------------------------------------------------------------ measurements
def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) number of parameters of `model`."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def forward_flops(model: nn.Module, inputs: dict[str, Tensor]) -> int:
    """FLOPs of one eval-mode forward pass on `inputs` (whole batch), as counted by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    model.eval()
    # Grad stays enabled: FlopCounterMode's module tracker fails on no-grad views of parameters (SSMR).
    with counter:
        model(**inputs)
    return counter.get_total_flops()


def meta_flops_per_image(model: nn.Module, spec: BenchSpec) -> int:
    """Forward FLOPs of one image, counted on the meta device (shapes only: no compute, no memory).

    On the meta device attention decomposes into counted matmuls; the CPU's fused attention kernel is not
    counted by FlopCounterMode, so counting a real CPU forward would leave attention out. Moves `model` to
    the meta device in place, so call it after the timed measurements.
    """
    meta = torch.device("meta")
    model.to(meta)
    return forward_flops(model, spec.make_inputs(model, 1, meta))


def stand_in_loss(output: Tensor | dict[str, Tensor]) -> Tensor:
    """mean(pred²) plus the model's auxiliary loss when it returns one (CDCM-Net): a scalar to backpropagate."""
    pred, aux_loss = split_output(output)
    loss = pred.float().square().mean()
    return loss if aux_loss is None else loss + aux_loss.float()


def _autocast(device: torch.device, precision: str):
    """bf16 autocast context for precision "bf16", no-op for "fp32"."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def inference_step(model: nn.Module, inputs: dict[str, Tensor], device: torch.device,
                   precision: str) -> Callable[[], None]:
    """One eval-mode, no-grad forward pass of the batch."""
    model.eval()

    def step() -> None:
        with torch.no_grad(), _autocast(device, precision):
            model(**inputs)
    return step


def training_step(model: nn.Module, inputs: dict[str, Tensor], device: torch.device,
                  precision: str, optimizer: str = "adamw") -> Callable[[], None]:
    """One train-mode forward, stand-in loss, backward and optimiser step ("adamw" or "sgd") over the trainable
    parameters."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to benchmark a training step")
    if optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    optimizer = torch.optim.AdamW(trainable, lr=1e-5) if optimizer == "adamw" else torch.optim.SGD(trainable, lr=1e-5)
    model.train()

    def step() -> None:
        with _autocast(device, precision):
            output = model(**inputs)
        loss = stand_in_loss(output)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def time_steps(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds of each of `steps` timed calls of `step`, after `warmup` untimed ones (CUDA synchronised)."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    synchronize()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def process_peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def device_name(device: torch.device) -> str:
    """GPU name, or the CPU model name with the number of logical cores."""
    from iaa_lib.book.provenance import cpu_name

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} logical cores)"


@dataclass(frozen=True)
class Job:
    """One model's measurements on one device/variant: the modes run in this order in the same process."""

    model: str
    config: str
    modes: tuple[str, ...]
    device: str
    precision: str
    compiled: bool
    batch_size: int
    steps: int
    warmup: int
    count_flops: bool


def measure(job: Job) -> list[dict[str, Any]]:
    """Run `job` in this process: per mode img/s, median step ms and peak memory (MiB), plus size and FLOPs."""
    device = torch.device(job.device)
    spec = bench_spec(job.model)
    runtime_mib = process_peak_rss_mib() if device.type == "cpu" else float("nan")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    if job.compiled:
        torch.compiler.reset()  # a fresh compilation cache per measurement: no recompile limits across models
    torch.manual_seed(0)
    model = spec.build(job.config).to(device)
    total, trainable = count_parameters(model)
    inputs = spec.make_inputs(model, job.batch_size, device)
    runner = torch.compile(model) if job.compiled else model
    results = []
    for mode in job.modes:
        make_step = inference_step if mode == "infer" else training_step
        seconds = time_steps(make_step(runner, inputs, device, job.precision), job.steps, job.warmup, device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else process_peak_rss_mib()
        median = statistics.median(seconds)  # robust to a step slowed by other work on a shared machine
        results.append({"mode": mode, "params": total, "trainable_params": trainable,
                        "img_per_s": job.batch_size / median, "step_ms_median": 1000 * median, "peak_mem_mib": peak,
                        "runtime_mem_mib": runtime_mib, "threads": torch.get_num_threads()})
    del runner, inputs
    flops = meta_flops_per_image(model, spec) if job.count_flops else None
    return [{**result, "flops_per_image": flops} for result in results]


def measure_in_subprocess(job: Job, threads: int | None) -> list[dict[str, Any]]:
    """`measure(job)` in a fresh Python process, so its peak RSS belongs to this job alone."""
    payload = json.dumps({"job": job.__dict__, "threads": threads})
    result = subprocess.run([sys.executable, "-m", "iaa_lib.book.bench", payload], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark of {job.model} ({', '.join(job.modes)}) failed in its subprocess:\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check_settings(batch_size: int, steps: int, warmup: int, modes: Sequence[str], precisions: Sequence[str],
                    compiled: Sequence[bool], isolate: str, threads: int | None, config: str) -> None:
    """ValueError for settings that cannot give a measurement."""
    if batch_size < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"need batch_size >= 1, steps >= 1 and warmup >= 0; got {batch_size}, {steps}, {warmup}")
    if any(compiled) and warmup < 1:
        raise ValueError("compiled variants need warmup >= 1 so that compilation is not timed")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 (or None for torch's default), got {threads}")
    for name, values, allowed in (("mode", modes, MODES), ("precision", precisions, PRECISIONS),
                                  ("isolate", [isolate], ISOLATION), ("config", [config], CONFIGS)):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ValueError(f"{name} must be among {allowed}, got {list(values)}")


def run_benchmarks(models: Sequence[str] = BENCHMARKED, device: str = "cpu", batch_size: int = 4,
                   steps: int = 3, warmup: int = 1, precisions: Sequence[str] | None = None,
                   compiled: Sequence[bool] | None = None, modes: Sequence[str] = MODES, threads: int | None = None,
                   config: str = "full", isolate: str = "mode") -> pd.DataFrame:
    """One row per (model, precision, compiled, mode) on `device` (columns: COLUMNS).

    precisions/compiled default to default_variants(device). CPU jobs run in fresh processes: isolate="mode"
    gives every (model, mode) its own process; isolate="model" runs a model's modes in one process (faster;
    the later row's RSS is then the peak over both modes, mem_kind e.g. "cpu_rss_after_infer").
    CUDA jobs run in this process (peak = max_memory_allocated after a reset).
    """
    models = check_models(models)
    resolved = resolve_device(device)
    default_precisions, default_compiled = default_variants(resolved)
    precisions = tuple(precisions or default_precisions)
    compiled = tuple(default_compiled if compiled is None else compiled)
    _check_settings(batch_size, steps, warmup, modes, precisions, compiled, isolate, threads, config)
    if threads is not None and resolved.type == "cuda":  # CPU jobs set it in their own processes
        torch.set_num_threads(threads)
    rows = []
    for name in models:
        flops = None
        for precision in precisions:
            for compile_model in compiled:
                groups = [(m,) for m in modes] if isolate == "mode" or resolved.type == "cuda" else [tuple(modes)]
                for group in groups:
                    job = Job(name, config, group, str(resolved), precision, compile_model, batch_size, steps,
                              warmup, count_flops=flops is None)
                    results = measure(job) if resolved.type == "cuda" else measure_in_subprocess(job, threads)
                    flops = flops if flops is not None else results[0]["flops_per_image"]
                    for index, result in enumerate(results):
                        earlier_mode = group[0] if resolved.type == "cpu" and index > 0 else None
                        rows.append(_row(job, result, resolved, flops, earlier_mode))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _row(job: Job, result: dict[str, Any], device: torch.device, flops: float, earlier_mode: str | None) -> dict:
    """A result row in COLUMNS order; earlier_mode: the mode that ran before it in the same CPU process."""
    spec = bench_spec(job.model)
    mem_kind = "cuda_allocated" if device.type == "cuda" else "cpu_rss"
    if earlier_mode is not None:
        mem_kind += f"_after_{earlier_mode}"
    return {"model": job.model, "label": spec.label, "config": job.config, "input": spec.input,
            "mode": result["mode"], "device": device.type, "device_name": device_name(device),
            "precision": job.precision, "compiled": job.compiled, "batch_size": job.batch_size, "steps": job.steps,
            "warmup": job.warmup, "threads": result["threads"], "params": result["params"],
            "trainable_params": result["trainable_params"], "params_m": result["params"] / 1e6,
            "gflops_per_image": flops / 1e9, "img_per_s": result["img_per_s"],
            "step_ms_median": result["step_ms_median"], "peak_mem_mib": result["peak_mem_mib"],
            "mem_kind": mem_kind, "runtime_mem_mib": result["runtime_mem_mib"],
            "torch_version": torch.__version__, "note": spec.note}


# ------------------------------------------------------------------------------------------------ output
def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns worth reading, rounded: one row per measurement."""
    shown = frame[["model", "config", "mode", "device", "precision", "compiled", "batch_size", "params_m",
                   "gflops_per_image", "img_per_s", "step_ms_median", "peak_mem_mib", "mem_kind"]].copy()
    return shown.round({"params_m": 2, "gflops_per_image": 2, "img_per_s": 2, "step_ms_median": 0,
                        "peak_mem_mib": 0})


def metrics_by_model(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per model: size, GFLOPs, and per mode img/s and peak memory (MiB) of its first variant (fp32 eager)."""
    metrics = {}
    for model, rows in frame.groupby("model", sort=False):
        first = rows.iloc[0]
        variant = rows[(rows["precision"] == first["precision"]) & (rows["compiled"] == first["compiled"])]
        entry = {"params": int(first["params"]), "trainable_params": int(first["trainable_params"]),
                 "gflops_per_image": float(first["gflops_per_image"]), "precision": first["precision"],
                 "compiled": bool(first["compiled"])}
        for _, row in variant.iterrows():
            entry[f"{row['mode']}_img_per_s"] = float(row["img_per_s"])
            entry[f"{row['mode']}_peak_mem_mib"] = float(row["peak_mem_mib"])
        metrics[model] = entry
    return metrics


def markdown_report(frame: pd.DataFrame, command: str) -> str:
    """Markdown: header (command, date, git revision, device, torch), the summary table and a note on memory."""
    from iaa_lib.book.provenance import git_commit

    devices = ", ".join(sorted(set(frame["device_name"])))
    header = (f"Command: `{command}`  \nDate: {date.today().isoformat()}; git {git_commit()}; device: {devices}; "
              f"torch {torch.__version__}; threads {', '.join(str(t) for t in sorted(set(frame['threads'])))}.\n\n")
    note = ("\n\nGFLOPs = FlopCounterMode FLOPs of one forward pass per image (2 per multiply-add; "
            "elementwise ops and grid_sample not counted). Peak memory: cpu_rss = peak resident set size of a "
            "fresh process (includes the Python/torch runtime), cuda_allocated = torch.cuda.max_memory_allocated. "
            "On a shared machine the times are upper bounds.\n")
    return header + summary_table(frame).to_markdown(index=False) + note


def save_results(frame: pd.DataFrame, csv_path: str | Path, command: str) -> tuple[Path, Path]:
    """Write the full frame as CSV, the markdown report next to it (.md) and its provenance record
    (.provenance.json: command, commit, date, hardware); return the CSV and markdown paths."""
    from iaa_lib.book.provenance import results_record, write_results_provenance

    # before writing: overwriting a tracked CSV would mark the tree dirty
    report, record = markdown_report(frame, command), results_record(command)
    csv_path = Path(csv_path)
    atomic_write_text(csv_path, frame.to_csv(index=False))
    md_path = atomic_write_text(csv_path.with_suffix(".md"), report)
    write_results_provenance(csv_path, record)
    return csv_path, md_path


def _variant(frame: pd.DataFrame) -> pd.Series:
    """Short label per row: device, precision, "compiled" when compiled."""
    return frame["device"] + " " + frame["precision"] + frame["compiled"].map({True: " compiled", False: ""})


def plot_benchmark(frame: pd.DataFrame):
    """Figure: img/s per model and mode (log axis, one bar per variant) and forward GFLOPs vs inference img/s."""
    import matplotlib.pyplot as plt

    frame = frame.assign(variant=_variant(frame))
    fig, (bars_ax, scatter_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    table = frame.pivot_table(index="model", columns=["mode", "variant"], values="img_per_s", sort=False)
    table.plot.barh(ax=bars_ax, logx=True)
    bars_ax.set_xlabel("images per second (log)")
    bars_ax.set_title(f"Throughput, batch {', '.join(str(b) for b in sorted(set(frame['batch_size'])))}")
    bars_ax.legend(fontsize=8, title="mode, variant", title_fontsize=8)
    infer = frame[frame["mode"] == "infer"]
    for variant, rows in infer.groupby("variant", sort=False):
        scatter_ax.scatter(rows["gflops_per_image"], rows["img_per_s"], s=20 + 3 * rows["params_m"], alpha=0.7,
                           label=variant)
        for _, row in rows.iterrows():
            scatter_ax.annotate(row["model"], (row["gflops_per_image"], row["img_per_s"]), fontsize=8,
                                xytext=(4, 2), textcoords="offset points")
    scatter_ax.set(xscale="log", yscale="log", xlabel="forward GFLOPs per image (log)",
                   ylabel="inference images per second (log)", title="Cost vs speed (marker area ~ parameters)")
    scatter_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _child_main(payload: str) -> None:
    """Subprocess entry: run one Job from its JSON payload and print the results as one JSON line."""
    settings = json.loads(payload)
    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    job = Job(**{**settings["job"], "modes": tuple(settings["job"]["modes"])})
    print(json.dumps(measure(job)))


if __name__ == "__main__":
    _child_main(sys.argv[1])
