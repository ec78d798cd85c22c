"""The NIMA baseline's recipe: its profiles drive the baseline notebook and the comparison; its data and loaders."""
from __future__ import annotations

from dataclasses import replace

from iaa_lib.book.runner import notebook_parameters, read_notebook
from iaa_lib.nima.pipeline import NIMA_PROFILES, baseline_data
from iaa_lib.nima.spec import SPEC
from iaa_lib.paths import REPO_ROOT

BASELINE = REPO_ROOT / "notebooks" / "00_foundations" / "03_baseline.py"


def test_baseline_parameters_cell_holds_the_smoke_profile():
    parameters = notebook_parameters(read_notebook(BASELINE))
    NIMA_PROFILES.check_parameters(parameters)
    assert set(NIMA_PROFILES.field_names()) - set(parameters) == {"weight_decay", "warmup_epochs"}


def test_a_passed_parameter_wins_over_the_full_profile():
    parameters = notebook_parameters(read_notebook(BASELINE))
    assert NIMA_PROFILES.resolve("full", parameters) == NIMA_PROFILES.full
    pinned = NIMA_PROFILES.resolve("full", {**parameters, "epochs": 6, "pinned_parameters": ["epochs"]})
    assert (pinned.epochs, pinned.config, pinned.image_size, pinned.batch_size) == (6, "full", 224, 64)


def test_the_comparison_trains_with_the_baseline_profiles(tmp_path):
    assert {p: s["recipe"] for p, s in SPEC.compare_settings.items()} == {"smoke": NIMA_PROFILES.smoke,
                                                                          "full": NIMA_PROFILES.full}
    cfg = NIMA_PROFILES.smoke.fit_config(tmp_path / "run", progress=False)
    assert (cfg.epochs, cfg.lr, cfg.backbone_lr, cfg.weight_decay, cfg.schedule, cfg.warmup_epochs) == (
        6, 3e-3, 3e-4, 1e-4, "cosine", 0.5)
    assert cfg.out_dir == str(tmp_path / "run") and not cfg.progress


def test_baseline_data_splits_and_batches(tmp_path):
    settings = replace(NIMA_PROFILES.smoke, n_synthetic=40, synthetic_size=32, batch_size=8)
    parts, image_dir, loaders = baseline_data("synthetic", settings, tmp_path, (0.5,) * 3, (0.25,) * 3)
    assert image_dir is None and {n: len(p) for n, p in parts.items()} == {"train": 28, "val": 6, "test": 6}
    assert loaders["train"].batch_size == 8 and loaders["test"].dataset[0]["image"].shape == (3, 128, 128)
    assert (tmp_path / "synthetic_32_40_0" / "frame.pkl").is_file()  # the one synthetic-set cache
    sample_parts, sample_dir, _ = baseline_data("ava_sample", settings, tmp_path, (0.5,) * 3, (0.25,) * 3)
    assert sample_dir is not None and {n: len(p) for n, p in sample_parts.items()} == {"train": 46, "val": 16, "test": 15}
