"""The Comparison part's smoke and full settings, one dataclass per notebook (a passed parameter always wins).

The training notebooks' settings carry the rehearsal's switches (README): max_steps (> 0: at most this many
optimiser steps per model), weights ("random": every model's backbones built by name with random init) and
manifest (the AVA data check's manifest; the full profile reads AVA through it).
"""
from __future__ import annotations

from dataclasses import dataclass

from iaa_lib.profiles import Profiles


def _names(listing: str) -> list[str]:
    """The non-empty names of a comma-separated list, stripped ("nima, eat," -> ["nima", "eat"])."""
    return [name.strip() for name in listing.split(",") if name.strip()]


@dataclass(frozen=True)
class ComparisonSettings:
    """What 01_results and 03_failure_cases share: the profile, the compared models (comma-separated registry
    names), the synthetic set (n_synthetic images of synthetic_size px), a full AVA copy (data_root, test_list;
    "" = none), CG-IAA's local GPT-2 folder ("" = none), torch threads (0 = torch's default), seed, run_dir."""

    profile: str = "smoke"
    models: str = "nima,eat,milnet,ssmr,cdcm,cgiaa"
    n_synthetic: int = 300
    synthetic_size: int = 96
    data_root: str = ""
    test_list: str = ""
    cgiaa_gpt2_path: str = ""
    threads: int = 1
    seed: int = 0
    run_dir: str = "runs/99_compare"
    max_steps: int = 0
    weights: str = "pretrained"
    manifest: str = ""

    def model_names(self) -> list[str]:
        """The compared models, in the listed order."""
        return _names(self.models)

    def overrides(self) -> dict[str, dict[str, str]]:
        """Per model, the settings that replace its compare_settings (CG-IAA's GPT-2 folder when one is given)."""
        return {"cgiaa": {"gpt2_path": self.cgiaa_gpt2_path}} if self.cgiaa_gpt2_path else {}


@dataclass(frozen=True)
class ResultsSettings(ComparisonSettings):
    """01_results: the shared settings and the protocols compared (comma-separated)."""

    protocols: str = "synthetic,ava_sample"

    def protocol_names(self) -> list[str]:
        """The compared protocols, in the listed order."""
        return _names(self.protocols)


@dataclass(frozen=True)
class FailureSettings(ComparisonSettings):
    """03_failure_cases: the shared settings and the protocol whose disputed test images are shown."""

    protocol: str = "ava_sample"


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
    """05_real_critiques: the two paper heads' size (cdcm_config: a CDCM-Net config name; map_hidden: the MAP head's
    hidden width) and epochs, bootstrap resamples, torch threads."""

    cdcm_config: str = "smoke"
    cdcm_epochs: int = 6
    map_hidden: int = 128
    map_epochs: int = 15
    n_boot: int = 500
    threads: int = 1


AVA_MANIFEST = "runs/data/ava_manifest.csv"  # the data check's default output
RESULTS_PROFILES = Profiles(smoke=ResultsSettings(), full=ResultsSettings(profile="full", protocols="ava", threads=0,
                                                                          manifest=AVA_MANIFEST))
FAILURE_PROFILES = Profiles(smoke=FailureSettings(), full=FailureSettings(profile="full", protocol="ava", threads=0,
                                                                          manifest=AVA_MANIFEST))
# full: CUDA when there is one, fp32 + bf16 autocast, eager + torch.compile ("default" picks them per device)
BENCHMARK_PROFILES = Profiles(smoke=BenchmarkSettings(), full=BenchmarkSettings(
    device="auto", batch_size=16, steps=20, warmup=3, threads=0, isolate="mode"))
CRITIQUE_PROFILES = Profiles(smoke=CritiqueSettings(), full=CritiqueSettings(
    cdcm_config="full", cdcm_epochs=20, map_hidden=512, map_epochs=40, n_boot=1000, threads=0))
