"""MILNet benchmarks: exact top-k retrieval vs index size, and GCN-head training throughput.

Usage: python benchmarks/milnet.py [--device auto|cpu|cuda] [--sizes 1000 10000 100000] [--dim 2048]
Writes benchmarks/results/milnet_<device>.csv and .md (device = cpu or cuda). Rows:
  retrieval  build_index on N synthetic feature rows (D = --dim, ResNet-50's 2048 by default) and search
             --queries query rows for their k = 4 nearest training rows, chunked (1024 queries × 65,536 rows);
             time per search, queries/s, index memory and peak extra memory during the search (CPU: sampled
             process RSS above the level before the search; CUDA: torch.cuda.max_memory_allocated above the
             resident tensors).
  gcn_train  MILNet head training steps (forward, AdaEMD, backward, Adam) on a resident batch of graphs:
             graphs/s for the smoke head (1808-d nodes) and the paper's full head (6144-d nodes, 9.5 M
             parameters); CUDA: fp32 and bf16 autocast, each with and without torch.compile.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import torch

from iaa_lib.book.bench import time_steps
from iaa_lib.book.provenance import results_header, results_record, write_results_provenance
from iaa_lib.losses import AdaEMDLoss
from iaa_lib.milnet.model import MILNet
from iaa_lib.blocks.retrieval import build_index

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class PeakRSS:
    """Context manager sampling this process's resident memory every 5 ms; .peak_bytes above the level at entry."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak_bytes = 0

    def __enter__(self) -> PeakRSS:
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.peak_bytes = self.peak - self.start


def retrieval_row(device: torch.device, n_rows: int, dim: int, n_queries: int, repeats: int) -> dict:
    """Time and memory of build_index + search(k=4) over n_rows random training features."""
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(n_rows, dim, generator=generator)
    queries = torch.randn(n_queries, dim, generator=generator)
    ids = [str(i) for i in range(n_rows)]
    query_ids = [f"q{i}" for i in range(n_queries)]
    built = []
    build_s = time_steps(lambda: built.append(build_index(train, ids, metric="l2", device=device)), 1, 0, device)[0]
    index = built[0]
    index.search(queries[:8], 4, query_ids=query_ids[:8])  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        resident = torch.cuda.memory_allocated(device)
    with PeakRSS() as rss:
        search_s = min(time_steps(lambda: index.search(queries, 4, query_ids=query_ids), repeats, 0, device))
    peak_extra = (torch.cuda.max_memory_allocated(device) - resident) if device.type == "cuda" else rss.peak_bytes
    return {
        "what": "retrieval", "config": f"N={n_rows:,} D={dim}", "rows": n_rows, "batch": n_queries,
        "build_s": round(build_s, 4), "search_s": round(search_s, 4), "queries_per_s": round(n_queries / search_s, 1),
        "index_MiB": round(index.nbytes / 2**20, 1), "peak_extra_MiB": round(peak_extra / 2**20, 1),
    }


def gcn_train_row(device: torch.device, config: str, batch: int, steps: int, bf16: bool, compile_model: bool) -> dict:
    """Graphs per second of MILNet head training steps on one resident batch (after warm-up)."""
    torch.manual_seed(0)
    model = MILNet(config).to(device)
    loss_fn = AdaEMDLoss().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    nodes = torch.randn(batch, 5, model.in_dim, device=device)
    target = torch.softmax(torch.randn(batch, 10, device=device), -1)
    forward = torch.compile(model) if compile_model else model

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pred = forward(nodes)["pred"]
        loss = loss_fn(pred.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds = sum(time_steps(step, steps, 3 if compile_model else 2, device))
    return {
        "what": "gcn_train", "config": f"{config} head ({sum(p.numel() for p in model.parameters()):,} params)",
        "batch": batch, "precision": "bf16 autocast" if bf16 else "fp32", "compile": compile_model,
        "graphs_per_s": round(steps * batch / seconds, 1), "step_ms": round(1000 * seconds / steps, 2),
    }


def run(device: torch.device, sizes: list[int], dim: int, n_queries: int, repeats: int, steps: int) -> pd.DataFrame:
    """All rows for one device."""
    rows = []
    for n_rows in sizes:
        rows.append(retrieval_row(device, n_rows, dim, n_queries, repeats))
        print(rows[-1], flush=True)
    cuda = device.type == "cuda"
    variants = [(bf16, comp) for bf16 in (False, True) for comp in (False, True)] if cuda else [(False, False)]
    for config, batch in (("smoke", 32), ("full", 128)):
        for bf16, compile_model in variants:
            rows.append(gcn_train_row(device, config, batch, steps, bf16, compile_model))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["device"] = torch.cuda.get_device_name(device) if cuda else (platform.processor() or "cpu")
    table["torch_threads"] = torch.get_num_threads()
    table["cpu_count"] = os.cpu_count()
    return table


def markdown_tables(table: pd.DataFrame) -> str:
    """Two markdown tables (retrieval, GCN training), each with only its own columns."""
    parts = []
    for what, title in (("retrieval", "Retrieval (k = 4, exact L2)"), ("gcn_train", "GCN head training")):
        rows = table[table["what"] == what].dropna(axis=1, how="all").drop(columns="what")
        parts.append(f"**{title}**\n\n{rows.to_markdown(index=False)}\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = CPU, plus CUDA when available")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="indexed rows")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension (ResNet-50: 2048)")
    parser.add_argument("--queries", type=int, default=1000, help="query rows per search")
    parser.add_argument("--repeats", type=int, default=2, help="timed searches (the fastest is kept)")
    parser.add_argument("--steps", type=int, default=5, help="timed GCN training steps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out-dir", default=str(RESULTS_DIR), help="folder for milnet_<device>.csv/.md")
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
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = results_record(shlex.join(["python", "benchmarks/milnet.py", *(sys.argv[1:] if argv is None else argv)]))
    for device in devices:
        steps = args.steps * (10 if device.type == "cuda" else 1)
        table = run(device, args.sizes, args.dim, args.queries, args.repeats, steps)
        table.to_csv(out_dir / f"milnet_{device.type}.csv", index=False)
        write_results_provenance(out_dir / f"milnet_{device.type}.csv", record)
        markdown = results_header(record) + markdown_tables(table)
        (out_dir / f"milnet_{device.type}.md").write_text(markdown)
        print(markdown)


if __name__ == "__main__":
    main()
