"""Chapter profiles: a passed or edited parameter always wins over the profile's default; unknown profiles are refused."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest

from iaa_lib.book.runner import NotebookParameterError, run_notebook
from iaa_lib.profiles import PINNED_KEY, ProfileError, Profiles, check_profile


@dataclass(frozen=True)
class Recipe:
    epochs: int
    lr: float
    data_root: str = ""


PROFILES = Profiles(smoke=Recipe(epochs=3, lr=1e-3), full=Recipe(epochs=20, lr=1e-6, data_root="data/ava"))


def test_defaults_follow_the_profile():
    smoke_values = {"epochs": 3, "lr": 1e-3, "data_root": ""}
    assert PROFILES.resolve("smoke", smoke_values) == Recipe(3, 1e-3, "")
    assert PROFILES.resolve("full", smoke_values) == Recipe(20, 1e-6, "data/ava")


def test_an_edited_value_wins_over_the_full_default():
    assert PROFILES.resolve("full", {"epochs": 5, "lr": 1e-3, "data_root": ""}) == Recipe(5, 1e-6, "data/ava")


def test_a_pinned_value_wins_even_when_it_equals_the_smoke_default():
    namespace = {"epochs": 3, "lr": 1e-3, "data_root": "", PINNED_KEY: ["epochs"]}
    assert PROFILES.resolve("full", namespace) == Recipe(3, 1e-6, "data/ava")
    assert PROFILES.resolve("full", namespace, pinned=[]) == Recipe(20, 1e-6, "data/ava")


@pytest.mark.parametrize("name", ["fulll", "Full", ""])
def test_unknown_profile_is_refused(name):
    with pytest.raises(ProfileError, match="unknown profile"):
        PROFILES.resolve(name, {})
    with pytest.raises(ProfileError, match="smoke, full"):
        check_profile(name)


def test_parameters_cell_must_hold_the_smoke_values():
    PROFILES.check_parameters({"epochs": 3, "lr": 1e-3, "seed": 0})
    with pytest.raises(ProfileError, match="epochs=12"):
        PROFILES.check_parameters({"epochs": 12, "lr": 1e-3})


def test_profiles_must_share_one_dataclass():
    with pytest.raises(TypeError):
        Profiles(smoke=Recipe(1, 1.0), full={"epochs": 1})


NOTEBOOK = '''\
# %% [markdown]
# # Tiny chapter

# %% tags=["parameters"]
profile = "smoke"
epochs = 3
lr = 0.001
metrics_file = "{metrics}"

# %%
import json
from dataclasses import dataclass
from iaa_lib.profiles import Profiles

@dataclass(frozen=True)
class Recipe:
    epochs: int
    lr: float

settings = Profiles(smoke=Recipe(3, 0.001), full=Recipe(20, 1e-6)).resolve(profile, globals())
json.dump({{"epochs": settings.epochs, "lr": settings.lr}}, open(metrics_file, "w"))
'''


@pytest.mark.parametrize("passed, expected", [
    ({"profile": "full"}, {"epochs": 20, "lr": 1e-6}),
    ({"profile": "full", "epochs": 3}, {"epochs": 3, "lr": 1e-6}),  # the user's -p epochs 3 is kept
    ({"profile": "full", "lr": 0.01}, {"epochs": 20, "lr": 0.01}),
    ({}, {"epochs": 3, "lr": 0.001}),
])
def test_runner_keeps_what_the_user_passed(tmp_path, passed, expected):
    metrics = tmp_path / "m.json"
    path = tmp_path / "tiny.py"
    path.write_text(textwrap.dedent(NOTEBOOK.format(metrics=metrics)))
    result = run_notebook(path, parameters=passed)
    assert {k: result["metrics"][k] for k in expected} == expected
    assert PINNED_KEY not in result["metrics"]["provenance"]["command"]


def test_runner_refuses_an_unknown_profile_before_the_kernel_starts(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(textwrap.dedent(NOTEBOOK.format(metrics=tmp_path / "m.json")))
    with pytest.raises(NotebookParameterError, match="unknown profile 'fulll'"):
        run_notebook(path, parameters={"profile": "fulll"})
    assert not (tmp_path / "tiny.ipynb").exists()


def test_capped_epochs_keeps_the_total_within_max_steps():
    from iaa_lib.profiles import capped_epochs

    assert capped_epochs(10, 0) == (10, None)  # no cap
    assert capped_epochs(10, 2) == (2, 1)  # 2 epochs of 1 step: the schedule crosses an epoch boundary
    assert capped_epochs(1, 2) == (1, 2)
    assert capped_epochs(3, 7) == (3, 2)  # 6 <= 7
    with pytest.raises(ValueError):
        capped_epochs(10, -1)


def test_backbone_weights_is_an_explicit_switch():
    from iaa_lib.profiles import backbone_weights

    assert backbone_weights("pretrained", "imagenet") == "imagenet"
    assert backbone_weights("random", "imagenet") is None
    with pytest.raises(ValueError, match="weights must be one of"):
        backbone_weights("imagenet", "imagenet")
