"""The table of published numbers: every row has a source, a locator and a known verification status."""
from __future__ import annotations

import pandas as pd

from iaa_lib.paths import REPO_ROOT

STATUSES = {"verified", "secondary", "to-verify"}


def test_every_published_number_has_source_and_status():
    table = pd.read_csv(REPO_ROOT / "book" / "results" / "sota.csv")
    assert list(table.columns) == ["method", "venue", "year", "dataset", "split", "srcc", "plcc", "acc",
                                   "source", "locator", "status"]
    assert len(table) > 0
    assert table["source"].notna().all() and table["locator"].notna().all()
    assert set(table["status"]) <= STATUSES
    assert table["split"].notna().all()
    for column in ("srcc", "plcc"):
        values = table[column].dropna()
        assert ((values > 0) & (values < 1)).all(), column
    accuracy = table["acc"].dropna()
    assert ((accuracy > 50) & (accuracy < 100)).all()
