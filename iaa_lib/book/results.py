"""The numbers the book's notebooks recorded, each with where it came from, as one citable table."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from iaa_lib.book.runner import PROVENANCE_KEY, notebook_parameters, read_notebook
from iaa_lib.paths import REPO_ROOT, resolve
from iaa_lib.book.provenance import notebook_command

PROVENANCE_FIELDS = ("command", "commit", "hardware", "seed", "finished_utc")
CITED = re.compile(r"srcc|plcc|krcc|acc|emd|img_per_s|params|gflops|peak_mem")


def flat_numbers(metrics: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts/lists as {"a.b[0].c": value}; booleans, strings and None are left out."""
    if isinstance(metrics, dict):
        found: dict[str, float] = {}
        for key, value in metrics.items():
            found.update(flat_numbers(value, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if isinstance(metrics, list):
        found = {}
        for index, value in enumerate(metrics):
            found.update(flat_numbers(value, f"{prefix}[{index}]"))
        return found
    if isinstance(metrics, (int, float)) and not isinstance(metrics, bool):
        return {prefix: metrics}
    return {}


def recorded_metrics(notebook: str | os.PathLike) -> dict[str, Any] | None:
    """The metrics JSON a notebook's default run writes (its `metrics_file` parameter), or None before it ran."""
    defaults = notebook_parameters(read_notebook(notebook))
    if "metrics_file" not in defaults:
        return None
    path = resolve(defaults["metrics_file"])
    return json.loads(path.read_text()) if path.is_file() else None


def _name(notebook: Path) -> str:
    notebook = notebook.resolve()
    return str(notebook.relative_to(REPO_ROOT).with_suffix("")) if notebook.is_relative_to(REPO_ROOT) else notebook.stem


def recorded_by_notebook(notebooks: list[Path]) -> dict[Path, dict[str, Any] | None]:
    """recorded_metrics of each notebook, read once, in the given order."""
    return {notebook: recorded_metrics(notebook) for notebook in notebooks}


def provenance_table(recorded: dict[Path, dict[str, Any] | None]) -> pd.DataFrame:
    """One row per notebook of recorded_by_notebook(): status ("recorded" | "interactive run, no provenance" |
    "not run"), the provenance fields and seconds; a notebook that has not run shows the command that would
    record its numbers."""
    rows = []
    for notebook, metrics in recorded.items():
        stamp = (metrics or {}).get(PROVENANCE_KEY)
        if metrics is None:
            row = {"status": "not run", "command": notebook_command(notebook, {})}
        elif stamp is None:
            row = {"status": "interactive run, no provenance"}
        else:
            row = {"status": "recorded", **{f: stamp.get(f) for f in PROVENANCE_FIELDS}, "seconds": stamp.get("seconds")}
        rows.append({"notebook": _name(notebook), **row})
    return pd.DataFrame(rows, columns=["notebook", "status", *PROVENANCE_FIELDS, "seconds"])


def citation_table(recorded: dict[Path, dict[str, Any] | None]) -> pd.DataFrame:
    """Every recorded number with its notebook and provenance: notebook, number, value, command, commit, hardware,
    seed, finished_utc."""
    rows = []
    for notebook, metrics in recorded.items():
        if metrics is None:
            continue
        stamp = metrics.get(PROVENANCE_KEY) or {}
        numbers = flat_numbers({k: v for k, v in metrics.items() if k != PROVENANCE_KEY})
        rows += [{"notebook": _name(notebook), "number": number, "value": value,
                  **{f: stamp.get(f) for f in PROVENANCE_FIELDS}} for number, value in numbers.items()]
    return pd.DataFrame(rows, columns=["notebook", "number", "value", *PROVENANCE_FIELDS])


def metric_like(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a citation_table that are SRCC, PLCC, KRCC, accuracy, EMD, speed, size or memory numbers."""
    return table[table["number"].str.contains(CITED)]
