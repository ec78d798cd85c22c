"""Build the Jupyter Book: execute every notebook in _toc.yml with papermill, then render the HTML."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

from iaa_lib.book.runner import run_notebook
from iaa_lib.paths import REPO_ROOT


def _toc_files(entries: list[dict[str, Any]]) -> Iterator[str]:
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        for key in ("parts", "chapters", "sections"):
            yield from _toc_files(entry.get(key, []))


def toc_files(root: Path = REPO_ROOT) -> list[str]:
    """Every document of _toc.yml (root first), as written there: repo-relative, no suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return [toc["root"], *_toc_files(toc.get("parts", []) + toc.get("chapters", []))]


def toc_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """The py:percent notebooks the book shows, in reading order."""
    return [root / f"{name}.py" for name in toc_files(root) if (root / f"{name}.py").is_file()]


def execute_notebooks(root: Path = REPO_ROOT, log=print) -> dict[str, dict[str, Any]]:
    """Execute each book notebook in smoke mode (its defaults); return name -> {seconds, metrics}."""
    results = {}
    for path in toc_notebooks(root):
        name = str(path.relative_to(root).with_suffix(""))
        log(f"executing {name} ...")
        run = run_notebook(path)
        log(f"  done in {run['seconds']:.1f} s")
        results[name] = {"seconds": round(run["seconds"], 2), "metrics": run["metrics"]}
    return results


def render_html(root: Path = REPO_ROOT) -> Path:
    """Run `jupyter-book build` with warnings as errors; return the HTML folder."""
    build_dir = root / "_build"
    shutil.rmtree(build_dir / ".doctrees", ignore_errors=True)
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(root), "-W", "-n", "--keep-going"]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n"
                           f"{proc.stderr[-6000:]}")
    return build_dir / "html"


def build_book(root: Path = REPO_ROOT, log=print) -> Path:
    """Execute all notebooks, render the HTML and write _build/notebook_runs.json; return the HTML dir."""
    start = time.perf_counter()
    runs = execute_notebooks(root, log=log)
    log("rendering HTML ...")
    html = render_html(root)
    (root / "_build" / "notebook_runs.json").write_text(json.dumps(runs, indent=2))
    log(f"book built in {time.perf_counter() - start:.0f} s: {html / 'index.html'}")
    return html
