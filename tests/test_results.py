"""The citable results table: numeric leaves of recorded metrics, per-notebook provenance and status."""
from __future__ import annotations

import json

import pandas as pd

from iaa_lib.book.results import citation_table, flat_numbers, metric_like, provenance_table, recorded_by_notebook

STAMP = {"command": "python -m iaa_lib run a.py", "commit": "abc", "hardware": "cpu", "seed": 0,
         "finished_utc": "now", "seconds": 1.5}


def notebook(tmp_path, name: str, metrics: dict | None):
    """A py:percent notebook whose metrics_file holds `metrics` (or does not exist when None)."""
    metrics_path = tmp_path / f"{name}.json"
    if metrics is not None:
        metrics_path.write_text(json.dumps(metrics))
    path = tmp_path / f"{name}.py"
    path.write_text(f'# %% tags=["parameters"]\nmetrics_file = "{metrics_path}"\n')
    return path


def test_flat_numbers_keeps_numeric_leaves_only():
    metrics = {"a": 1, "b": {"srcc": 0.5, "ok": True, "name": "x"}, "c": [2.0, {"d": 3}], "e": None}
    assert flat_numbers(metrics) == {"a": 1, "b.srcc": 0.5, "c[0]": 2.0, "c[1].d": 3}


def test_tables_report_status_provenance_and_every_number(tmp_path):
    recorded = recorded_by_notebook([notebook(tmp_path, "stamped", {"test": {"srcc": 0.7, "n": 15}, "provenance": STAMP}),
                                     notebook(tmp_path, "by_hand", {"loss": 0.1}),
                                     notebook(tmp_path, "never", None)])
    status = provenance_table(recorded).set_index("notebook")
    assert status["status"].tolist() == ["recorded", "interactive run, no provenance", "not run"]
    assert status.iloc[0]["commit"] == "abc" and status.iloc[0]["seconds"] == 1.5
    assert status.iloc[2]["command"].startswith("python -m iaa_lib run ") and status.iloc[2]["command"].endswith("never.py")
    table = citation_table(recorded)
    assert table[["number", "value"]].values.tolist() == [["test.srcc", 0.7], ["test.n", 15], ["loss", 0.1]]
    assert table.iloc[0]["command"] == STAMP["command"] and pd.isna(table.iloc[2]["commit"])
    assert metric_like(table)["number"].tolist() == ["test.srcc"]


def test_numbers_copied_from_a_recorded_file_keep_that_files_provenance(tmp_path):
    recorded_file = {"command": "python -m iaa_lib bench --batch-size 4", "commit": "cef5d79b1e", "hardware": "other cpu",
                     "finished_utc": "2026-11-23", "source": "benchmarks/results/models_cpu.csv"}
    metrics = {"models": {"nima": {"infer_img_per_s": 3.0}},
               "recorded": {"models": {"nima": {"infer_img_per_s": 10.0}}, "provenance": recorded_file},
               "provenance": STAMP}
    table = citation_table(recorded_by_notebook([notebook(tmp_path, "bench", metrics)])).set_index("number")
    assert list(table.index) == ["models.nima.infer_img_per_s", "recorded.models.nima.infer_img_per_s"]
    own, copied = table.loc["models.nima.infer_img_per_s"], table.loc["recorded.models.nima.infer_img_per_s"]
    assert (own["commit"], own["command"], own["hardware"]) == ("abc", STAMP["command"], "cpu") and pd.isna(own["copied_from"])
    assert (copied["commit"], copied["command"], copied["hardware"], copied["finished_utc"]) == (
        "cef5d79b1e", recorded_file["command"], "other cpu", "2026-11-23")
    assert copied["copied_from"] == "benchmarks/results/models_cpu.csv"
    assert flat_numbers(metrics) == {"models.nima.infer_img_per_s": 3.0, "recorded.models.nima.infer_img_per_s": 10.0}


def test_every_committed_benchmark_file_records_commit_date_and_command():
    from iaa_lib.book.provenance import results_provenance
    from iaa_lib.paths import REPO_ROOT

    files = sorted((REPO_ROOT / "benchmarks" / "results").glob("*.csv"))
    assert len(files) >= 4
    for csv in files:
        record = results_provenance(csv)
        assert record["commit"] and record["finished_utc"] and record["command"].startswith("python ")
        assert record["command"] in csv.with_suffix(".md").read_text()  # the page shows it too
