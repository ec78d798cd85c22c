"""The Comparison's full-profile rehearsal: every model trained under the AVA protocol read through the manifest."""
from __future__ import annotations

import pytest

from iaa_lib.models import PAPERS


@pytest.fixture(scope="module")
def results(rehearsal_runs):
    return rehearsal_runs["notebooks/99_compare/01_results"]["metrics"]


def test_the_comparison_trained_every_model_on_ava_from_the_manifest(results, mini_ava):
    assert list(results["protocols"]) == ["ava"]
    readable_test = set(mini_ava.test_ids) - set(mini_ava.missing) - set(mini_ava.corrupt)
    assert results["protocols"]["ava"].endswith(f"/ {len(readable_test)} (train / val / test)")
    for model in PAPERS:
        assert results[f"ava.{model}"]["n"] == len(readable_test)
        assert results["n_parameters"][model] > 0


def test_the_failure_cases_read_the_same_runs(rehearsal_runs):
    failures = rehearsal_runs["notebooks/99_compare/03_failure_cases"]["metrics"]
    assert failures["protocol"].startswith("ava,") and failures["weights"] == "random"
