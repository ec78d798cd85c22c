"""Multi-process training helpers (torchrun + DistributedDataParallel): NCCL on CUDA, gloo on CPU.

`fit` calls `setup()`; when torchrun started the process (WORLD_SIZE > 1) it joins the process group, binds
one GPU per local rank, and `shard_loader` rebuilds loaders with per-rank samplers. Only rank 0 writes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size, local rank and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = torch.cuda.is_available() if device is None else str(device).startswith("cuda")
    if world_size <= 1:
        chosen = torch.device(device) if device is not None else torch.device("cuda" if want_cuda else "cpu")
        return DistInfo(0, 1, 0, chosen)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = torch.device("cuda", local_rank) if want_cuda else torch.device("cpu")
    if want_cuda:
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo", device_id=chosen if want_cuda else None)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, chosen)


def is_main_process() -> bool:
    """True on rank 0 or when not distributed."""
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for all ranks (no-op when not distributed)."""
    if dist.is_initialized():
        dist.barrier()


class ShardSampler(Sampler[int]):
    """Every world_size-th index from `rank`, in order, without padding (so gathered metrics see each item once)."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def shard_loader(loader: DataLoader, info: DistInfo, train: bool, seed: int) -> DataLoader:
    """Same loader with a per-rank sampler: DistributedSampler (shuffled iff the original was) for training,
    ShardSampler for evaluation. Batch size stays per process."""
    if not info.enabled:
        return loader
    if train:
        shuffle = isinstance(loader.sampler, RandomSampler)
        sampler = DistributedSampler(
            loader.dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed,
            drop_last=loader.drop_last,
        )
    else:
        sampler = ShardSampler(len(loader.dataset), info.rank, info.world_size)
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
        collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
        persistent_workers=loader.persistent_workers, worker_init_fn=loader.worker_init_fn,
    )


def all_gather_objects(obj):
    """List of `obj` from every rank (rank order); [obj] when not distributed."""
    if not dist.is_initialized():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of a list of floats over ranks (identity when not distributed)."""
    if not dist.is_initialized():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()
