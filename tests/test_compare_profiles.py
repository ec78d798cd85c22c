"""The Comparison notebooks' parameters cells hold their smoke profile, and a passed value survives profile full."""
from __future__ import annotations

import pytest

from iaa_lib.book.profiles import BENCHMARK_PROFILES, CRITIQUE_PROFILES, FAILURE_PROFILES, RESULTS_PROFILES
from iaa_lib.book.runner import notebook_parameters, read_notebook
from iaa_lib.paths import REPO_ROOT
from iaa_lib.profiles import PINNED_KEY

NOTEBOOKS = {
    "01_results": RESULTS_PROFILES,
    "02_benchmark": BENCHMARK_PROFILES,
    "03_failure_cases": FAILURE_PROFILES,
    "05_real_critiques": CRITIQUE_PROFILES,
}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_holds_the_smoke_profile(name):
    defaults = notebook_parameters(read_notebook(REPO_ROOT / "notebooks" / "99_compare" / f"{name}.py"))
    profiles = NOTEBOOKS[name]
    assert set(profiles.field_names()) <= set(defaults)
    profiles.check_parameters(defaults)


def test_a_passed_protocol_survives_profile_full():
    defaults = notebook_parameters(read_notebook(REPO_ROOT / "notebooks" / "99_compare" / "01_results.py"))
    assert RESULTS_PROFILES.resolve("full", defaults).protocols == "ava"
    passed = {**defaults, "protocols": "synthetic", PINNED_KEY: ["protocols"]}
    assert RESULTS_PROFILES.resolve("full", passed).protocols == "synthetic"
    assert RESULTS_PROFILES.resolve("full", passed).threads == 0


def test_shared_settings_name_the_models_protocols_and_overrides():
    defaults = notebook_parameters(read_notebook(REPO_ROOT / "notebooks" / "99_compare" / "03_failure_cases.py"))
    failure = FAILURE_PROFILES.resolve("full", {**defaults, "models": " nima, cgiaa,", "cgiaa_gpt2_path": "/m/gpt2",
                                                PINNED_KEY: ["models"]})
    assert failure.profile == "full" and failure.protocol == "ava" and failure.threads == 0
    assert failure.model_names() == ["nima", "cgiaa"]
    assert failure.overrides() == {"cgiaa": {"gpt2_path": "/m/gpt2"}}
    results = RESULTS_PROFILES.resolve("smoke", {"protocols": "ava_sample , synthetic"})
    assert results.protocol_names() == ["ava_sample", "synthetic"] and results.overrides() == {}
    assert results.model_names() == ["nima", "eat", "milnet", "ssmr", "cdcm", "cgiaa"]
