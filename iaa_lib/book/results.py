"""The numbers the book's notebooks recorded, each with where it came from, as one citable table.

A notebook's numbers carry the provenance the runner stamped on its metrics file. Numbers a notebook copies
from a recorded file (a committed benchmark table) sit in a nested dict with its own "provenance" record
(results_provenance of that file) and keep it: they are cited with that file's commit, date and command.
"""
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


def sourced_numbers(metrics: Any, stamp: dict | None, prefix: str = "") -> dict[str, tuple[float, dict | None]]:
    """{"a.b[0].c": (value, provenance)} for every numeric leaf; "provenance" records are not numbers, and a
    nested dict with its own "provenance" record gives that record to the numbers inside it."""
    if isinstance(metrics, dict):
        own = metrics.get(PROVENANCE_KEY)
        stamp = own if isinstance(own, dict) and prefix else stamp
        found: dict[str, tuple[float, dict | None]] = {}
        for key, value in metrics.items():
            if key != PROVENANCE_KEY:
                found.update(sourced_numbers(value, stamp, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if isinstance(metrics, list):
        found = {}
        for index, value in enumerate(metrics):
            found.update(sourced_numbers(value, stamp, f"{prefix}[{index}]"))
        return found
    if isinstance(metrics, (int, float)) and not isinstance(metrics, bool):
        return {prefix: (metrics, stamp)}
    return {}


def flat_numbers(metrics: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts/lists as {"a.b[0].c": value}; booleans, strings, None and provenance
    records are left out."""
    return {name: value for name, (value, _) in sourced_numbers(metrics, None, prefix).items()}


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
    seed, finished_utc, copied_from (the recorded file a copied number comes from, with that file's provenance;
    None for the notebook's own numbers)."""
    rows = []
    for notebook, metrics in recorded.items():
        if metrics is None:
            continue
        own = metrics.get(PROVENANCE_KEY)
        for number, (value, stamp) in sourced_numbers(metrics, own).items():
            copied_from = stamp.get("source", "a recorded file") if stamp is not None and stamp is not own else None
            rows.append({"notebook": _name(notebook), "number": number, "value": value,
                         **{f: (stamp or {}).get(f) for f in PROVENANCE_FIELDS}, "copied_from": copied_from})
    return pd.DataFrame(rows, columns=["notebook", "number", "value", *PROVENANCE_FIELDS, "copied_from"])


def metric_like(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a citation_table that are SRCC, PLCC, KRCC, accuracy, EMD, speed, size or memory numbers."""
    return table[table["number"].str.contains(CITED)]
