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
