"""What the book knows of one paper, in one place: read by the registry, the comparison, the benchmark and the CLI."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

# (data, settings, out_dir, seed) -> (model, history, test predictions frame, what the figures need)
CompareRunner = Callable[[Any, dict, Any, int], tuple[nn.Module, dict, Any, dict]]


@dataclass(frozen=True)
class BenchSpec:
    """How to benchmark a paper's model: build (config -> random-init model) and its example batch."""

    label: str
    input: str
    note: str
    build: Callable[[str], nn.Module]
    make_inputs: Callable[[nn.Module, int, torch.device], dict[str, Tensor]]


@dataclass(frozen=True)
class PaperSpec:
    """One paper (or the baseline): registry entries, title, benchmark, comparison recipe, published-number rows."""

    name: str
    title: str
    models: Mapping[str, str]  # registry name -> "module:factory", imported when built
    bench: BenchSpec
    compare_settings: Mapping[str, dict[str, Any]]  # profile -> the comparison's settings for this model
    compare: CompareRunner
    sota_methods: tuple[str, ...] = field(default=())  # `method` values of book/results/sota.csv for this paper
