"""The Comparison part's smoke and full settings, one dataclass per notebook (a passed parameter always wins).

The training notebooks' settings carry the rehearsal's switches (README): max_steps (> 0: at most this many
optimiser steps per model), weights ("random": every model's backbones built by name with random init) and
manifest (the AVA data check's manifest; the full profile reads AVA through it).
"""
from __future__ import annotations

from dataclasses import dataclass

from iaa_lib.profiles import Profiles


@dataclass(frozen=True)
class ResultsSettings:
    """01_results: the protocols compared (comma-separated), torch threads (0 = torch's default), the rehearsal's
    switches (module docstring)."""

    protocols: str = "synthetic,ava_sample"
    threads: int = 1
    max_steps: int = 0
    weights: str = "pretrained"
    manifest: str = ""


@dataclass(frozen=True)
class FailureSettings:
    """03_failure_cases: the protocol whose disputed test images are shown, torch threads, the rehearsal's
    switches (module docstring)."""

    protocol: str = "ava_sample"
    threads: int = 1
    max_steps: int = 0
    weights: str = "pretrained"
    manifest: str = ""


@dataclass(frozen=True)
class BenchmarkSettings:
    """02_benchmark: device, images per step, timed and warm-up steps, threads, isolation, precisions, compile."""

    device: str = "cpu"
    batch_size: int = 1
    steps: int = 1
    warmup: int = 0
    threads: int = 1
    isolate: str = "model"
    precisions: str = "default"
    compiled: str = "default"


@dataclass(frozen=True)
class CritiqueSettings:
    """05_real_critiques: epochs of the two paper heads, bootstrap resamples, torch threads."""

    cdcm_epochs: int = 6
    map_epochs: int = 15
    n_boot: int = 500
    threads: int = 1


AVA_MANIFEST = "runs/data/ava_manifest.csv"  # the data check's default output
RESULTS_PROFILES = Profiles(smoke=ResultsSettings(), full=ResultsSettings(protocols="ava", threads=0,
                                                                          manifest=AVA_MANIFEST))
FAILURE_PROFILES = Profiles(smoke=FailureSettings(), full=FailureSettings(protocol="ava", threads=0,
                                                                          manifest=AVA_MANIFEST))
# full: CUDA when there is one, fp32 + bf16 autocast, eager + torch.compile ("default" picks them per device)
BENCHMARK_PROFILES = Profiles(smoke=BenchmarkSettings(), full=BenchmarkSettings(
    device="auto", batch_size=16, steps=20, warmup=3, threads=0, isolate="mode"))
CRITIQUE_PROFILES = Profiles(smoke=CritiqueSettings(), full=CritiqueSettings(
    cdcm_epochs=20, map_epochs=40, n_boot=1000, threads=0))
