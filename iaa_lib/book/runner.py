"""Run the book's py:percent notebooks with papermill, checking parameters and collecting metrics."""
from __future__ import annotations

import ast
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from iaa_lib.book.provenance import notebook_command, provenance
from iaa_lib.files import atomic_write, atomic_write_json
from iaa_lib.paths import resolve
from iaa_lib.profiles import PINNED_KEY, PROFILE_NAMES

DEFAULT_CELL_TIMEOUT_S = 600
PROVENANCE_KEY = "provenance"


class NotebookParameterError(ValueError):
    """A parameter passed to a notebook is unknown or has the wrong type."""


def read_notebook(path: str | os.PathLike) -> nbformat.NotebookNode:
    """Read a jupytext py:percent file (or an .ipynb) as a notebook."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    return jupytext.read(path)


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The one code cell tagged `parameters` (papermill's convention)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise NotebookParameterError(f"expected exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def notebook_parameters(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """Name -> default value of the parameters cell, which may hold only `name = <literal>` lines."""
    tree = ast.parse(parameters_cell(nb).source)
    defaults: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise NotebookParameterError(
                f"parameters cell line {node.lineno}: only `name = literal` assignments are allowed")
        try:
            defaults[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError as err:
            raise NotebookParameterError(
                f"parameters cell line {node.lineno}: {node.targets[0].id} is not a literal") from err
    return defaults


def _type_ok(default: Any, value: Any) -> bool:
    if default is None:
        return value is None or isinstance(value, (str, int, float, bool))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def check_parameters(defaults: dict[str, Any], passed: dict[str, Any]) -> None:
    """Raise NotebookParameterError listing every unknown name and every type mismatch."""
    problems = []
    for name, value in passed.items():
        if name not in defaults:
            problems.append(f"unknown parameter {name!r}")
        elif not _type_ok(defaults[name], value):
            problems.append(f"parameter {name!r} must be {type(defaults[name]).__name__} "
                            f"(default {defaults[name]!r}), got {type(value).__name__} {value!r}")
    if "profile" in passed and "profile" in defaults and passed["profile"] not in PROFILE_NAMES:
        problems.append(f"unknown profile {passed['profile']!r} (known: {', '.join(PROFILE_NAMES)})")
    if problems:
        known = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        raise NotebookParameterError("; ".join(problems) + f". Known parameters: {known}")


def parse_cli_value(text: str) -> Any:
    """A `-p name value` string as a Python literal when it is one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_notebook(path: str | os.PathLike, output: str | os.PathLike | None = None,
                 parameters: dict[str, Any] | None = None,
                 cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S, kernel: str = "python3") -> dict[str, Any]:
    """Execute a notebook with papermill in its own folder; return {output, seconds, metrics}.

    The executed notebook goes to `output` (default: the same name with .ipynb beside the source);
    `metrics` is the JSON the notebook wrote to its `metrics_file` parameter (or {} if it has none), stamped here
    with a "provenance" record: the command that re-runs it, the commit, the hardware, the seed, the time taken.
    A previous metrics file stays in place until the new run has succeeded (a failed run puts it back).
    """
    import papermill

    source = Path(path).resolve()
    nb = read_notebook(source)
    parameters = dict(parameters or {})
    defaults = notebook_parameters(nb)
    check_parameters(defaults, parameters)
    output = Path(output) if output else source.with_suffix(".ipynb")
    output.parent.mkdir(parents=True, exist_ok=True)
    metrics_path = resolve(parameters.get("metrics_file", defaults.get("metrics_file")) or "")
    previous = _file_state(metrics_path) if "metrics_file" in defaults else None

    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / (source.stem + ".ipynb")
            nb.metadata.setdefault("kernelspec", {"name": kernel, "display_name": "Python 3", "language": "python"})
            nbformat.write(nb, staged)
            injected = {**parameters, PINNED_KEY: sorted(parameters)}
            papermill.execute_notebook(str(staged), str(output), parameters=injected, kernel_name=kernel,
                                       language="python", cwd=str(source.parent), execution_timeout=cell_timeout_s,
                                       progress_bar=False, log_output=False)
    except BaseException:
        if previous is not None and _file_state(metrics_path) != previous:
            _restore(metrics_path, previous)
        raise
    seconds = time.perf_counter() - start

    metrics: dict[str, Any] = {}
    if "metrics_file" in defaults:
        if _file_state(metrics_path) == previous or not metrics_path.is_file():
            raise RuntimeError(f"{source.name} ran but wrote no metrics to {metrics_path}"
                               + (" (the file there is from an earlier run)" if metrics_path.is_file() else ""))
        metrics = json.loads(metrics_path.read_text())
        metrics[PROVENANCE_KEY] = provenance(notebook_command(source, parameters),
                                             parameters.get("seed", defaults.get("seed")), seconds)
        atomic_write_json(metrics_path, metrics, indent=2, sort_keys=True)
    return {"output": output, "seconds": seconds, "metrics": metrics}


def _file_state(path: Path) -> tuple[int, int, bytes] | None:
    """(inode, mtime_ns, content) of a file, None when absent: tells whether a run rewrote it."""
    try:
        stat = path.stat()
        return stat.st_ino, stat.st_mtime_ns, path.read_bytes()
    except FileNotFoundError:
        return None


def _restore(path: Path, state: tuple[int, int, bytes] | None) -> None:
    """Put back the content `_file_state` saw (remove the file when there was none)."""
    if state is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, lambda handle: handle.write(state[2]))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric value {value} is not finite")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    raise TypeError(f"metric value of type {type(value).__name__} is not JSON-serialisable")


def record_metrics(metrics_file: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """Write a notebook's metrics (numbers, strings, nested dicts/lists) as JSON; return the path."""
    return atomic_write_json(resolve(metrics_file), _jsonable(metrics), indent=2, sort_keys=True)
