"""Published numbers, read from book/results/sota.csv: one row per method, dataset and split, each with its source."""
from __future__ import annotations

from typing import Any

import pandas as pd

from iaa_lib.paths import REPO_ROOT

SOTA_FILE = REPO_ROOT / "book" / "results" / "sota.csv"


def sota_table() -> pd.DataFrame:
    """The whole table as sota.csv stores it (srcc, plcc in [0, 1]; acc in percent; NaN where not published)."""
    if not SOTA_FILE.is_file():
        raise FileNotFoundError(f"table of published numbers not found: {SOTA_FILE}; restore it with "
                                "`git checkout -- book/results/sota.csv`")
    return pd.read_csv(SOTA_FILE)


def published(method: str, dataset: str, split: str | None = None) -> dict[str, Any]:
    """The row of `method` on `dataset` (and `split`, needed when the pair has several rows) as a dict; its acc
    is a fraction in [0, 1] like the book's own metrics (sota.csv stores percent), NaN where not published.
    KeyError listing what the table holds for `method` when no single row matches."""
    table = sota_table()
    chosen = (table["method"] == method) & (table["dataset"] == dataset)
    if split is not None:
        chosen &= table["split"] == split
    found = table[chosen]
    if len(found) != 1:
        held = table.loc[table["method"] == method, ["dataset", "split"]].to_dict("records")
        raise KeyError(f"{SOTA_FILE.name} has {len(found)} rows for method={method!r}, dataset={dataset!r}"
                       f"{f', split={split!r}' if split is not None else ''}; rows of this method: {held}")
    row = found.iloc[0].to_dict()
    row["acc"] = row["acc"] / 100  # NaN stays NaN
    return row
