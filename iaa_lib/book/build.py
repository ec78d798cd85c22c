"""Build the Jupyter Book: execute every notebook in _toc.yml with papermill, then render the HTML."""
from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import yaml

from iaa_lib.book.provenance import provenance, write_results_provenance
from iaa_lib.book.runner import DEFAULT_CELL_TIMEOUT_S, run_notebook
from iaa_lib.paths import REPO_ROOT

NOTEBOOK_BUDGET_S = 60  # smoke profile, 2-core CPU
RECORDED_TIMINGS = "benchmarks/results/book_timings_cpu.csv"  # the last clean build's table, kept in the repo
FIGURES_DIR = "figures"  # the book's key figures, exported from the executed notebooks
FIGURE_TAG = "figure:"  # cell tag naming a key figure: figure:<name> -> figures/<name>.png
KERNEL_START_CLASHES = ("Address already in use", "Kernel died before replying to kernel_info")


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


# Notebooks that read what every other notebook recorded: executed after all the others.
RUN_LAST = ("notebooks/99_compare/04_results_to_cite",)
# Notebooks that need nothing from the notebooks before them in their chapter: a group of their own.
INDEPENDENT = ("notebooks/99_compare/02_benchmark", "notebooks/99_compare/05_real_critiques")
# Groups that start only once every chapter group has finished: the comparison loads the chapters' finished
# runs wherever recipe, data and seed agree (training.run_index) instead of training them again.
AFTER_CHAPTERS = ("notebooks/99_compare",)


def notebook_groups(root: Path = REPO_ROOT) -> tuple[list[list[Path]], list[Path]]:
    """(groups that may run side by side, each a chapter's notebooks in reading order; the notebooks run last)."""
    groups: dict[str, list[Path]] = {}
    last = []
    for path in toc_notebooks(root):
        name = str(path.relative_to(root).with_suffix(""))
        if name in RUN_LAST:
            last.append(path)
        else:
            groups.setdefault(name if name in INDEPENDENT else str(path.parent), []).append(path)
    return list(groups.values()), last


def waits_for_chapters(group: list[Path], root: Path = REPO_ROOT) -> bool:
    """Whether a group of notebook_groups starts only after every other group (AFTER_CHAPTERS, not INDEPENDENT)."""
    name = str(group[0].relative_to(root).with_suffix(""))
    return name not in INDEPENDENT and str(Path(name).parent) in AFTER_CHAPTERS


def previous_seconds(root: Path = REPO_ROOT) -> dict[str, float]:
    """Each notebook's time in the last build (_build/notebook_runs.json), else in the recorded table
    (benchmarks/results/book_timings_cpu.csv), to start the longest chapters first; {} when neither exists."""
    runs = root / "_build" / "notebook_runs.json"
    if runs.is_file():
        return {name: r["seconds"] for name, r in json.loads(runs.read_text()).items()}
    recorded = root / RECORDED_TIMINGS
    if recorded.is_file():
        table = pd.read_csv(recorded)
        return dict(zip(table["notebook"], table["seconds"]))
    return {}


def _execute_in_child(path: Path, attempts: int = 3, parameters: dict[str, Any] | None = None,
                      output: Path | None = None, env: dict[str, str] | None = None,
                      cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S) -> dict[str, Any]:
    """Run one notebook in a fresh process (with `parameters`, its executed copy at `output`, default beside the
    source, under the environment `env`, default this one's, each cell given cell_timeout_s seconds);
    {seconds, peak_rss_mib (its kernel's), metrics}.

    Kernels started at the same moment can draw the same free TCP port (jupyter_client picks, releases, then
    binds it); such a start fails before any cell runs and is retried, any other failure is raised at once."""
    for attempt in range(1, attempts + 1):
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            proc = subprocess.run([sys.executable, "-m", "iaa_lib.book.build", str(path), str(report),
                                   json.dumps(parameters or {}), str(output or ""), str(cell_timeout_s)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode == 0:
                return json.loads(report.read_text())
        port_clash = any(m in proc.stderr for m in KERNEL_START_CLASHES)
        if not port_clash or attempt == attempts:
            raise RuntimeError(f"{path} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        time.sleep(random.uniform(0.5, 2.0))
    raise AssertionError("unreachable")


def execute_notebooks(root: Path = REPO_ROOT, jobs: int = 2, log=print,
                      parameters: Callable[[str], dict[str, Any] | None] | None = None,
                      output_dir: Path | None = None, env: dict[str, str] | None = None,
                      cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """Execute every book notebook, `jobs` chapters side by side (longest first; the
    AFTER_CHAPTERS groups once all others are done), each notebook in its own process; return
    name -> {seconds, peak_rss_mib, metrics}, in reading order.

    Default: the smoke defaults, executed copies beside the sources. `parameters(name)` gives a notebook's
    parameters (None: the notebook is left out); `output_dir` holds the executed copies (<name>.ipynb), `env` the
    children's environment (the rehearsal's), cell_timeout_s the seconds one cell may run."""
    groups, last = notebook_groups(root)
    before = previous_seconds(root)
    groups.sort(key=lambda group: -sum(before.get(str(p.relative_to(root).with_suffix("")), 0) for p in group))
    results: dict[str, dict[str, Any]] = {}

    def run(path: Path) -> None:
        name = str(path.relative_to(root).with_suffix(""))
        passed = {} if parameters is None else parameters(name)
        if passed is None:
            return
        output = None if output_dir is None else output_dir / f"{name}.ipynb"
        log(f"executing {name} ...")
        results[name] = _execute_in_child(path, parameters=passed, output=output, env=env,
                                          cell_timeout_s=cell_timeout_s)
        log(f"  {name} done in {results[name]['seconds']:.1f} s, peak {results[name]['peak_rss_mib']:.0f} MiB")

    def run_group(group: list[Path]) -> None:
        for path in group:
            run(path)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        chapters = [pool.submit(run_group, g) for g in groups if not waits_for_chapters(g, root)]

        def after_chapters(group: list[Path]) -> None:
            for chapter in chapters:
                chapter.result()  # a chapter's failure stops the groups that would reuse its runs
            run_group(group)

        later = [pool.submit(after_chapters, g) for g in groups if waits_for_chapters(g, root)]
        for future in chapters + later:
            future.result()
    for path in last:
        run(path)
    order = [str(p.relative_to(root).with_suffix("")) for p in toc_notebooks(root)]
    return {name: results[name] for name in order if name in results}


def timing_table(runs: dict[str, dict[str, Any]], budget_s: float = NOTEBOOK_BUDGET_S) -> pd.DataFrame:
    """One row per notebook: seconds, peak memory of its kernel (MiB), and its time budget."""
    return pd.DataFrame([{"notebook": name, "seconds": round(r["seconds"], 1), "peak_rss_mib": round(r["peak_rss_mib"]),
                          "budget_s": budget_s} for name, r in runs.items()])


def write_timings(runs: dict[str, dict[str, Any]], wall_seconds: float, out_dir: Path, command: str,
                  stem: str = "book_timings", budget_s: float = NOTEBOOK_BUDGET_S) -> Path:
    """Write a run's timing table as <out_dir>/<stem>.csv and .md (with commit, date and command)."""
    table = timing_table(runs, budget_s)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{stem}.csv"
    table.to_csv(csv_path, index=False)
    stamp = provenance(command, seed=None, seconds=wall_seconds)
    write_results_provenance(csv_path, {k: v for k, v in stamp.items() if k != "seed"})
    lines = [f"Recorded by `{command}` at commit `{stamp['commit']}` on {stamp['finished_utc']} "
             f"({stamp['hardware']}): {len(table)} notebooks, {table['seconds'].sum():.0f} s of notebook "
             f"time, {wall_seconds:.0f} s wall clock.", "",
             "| notebook | seconds | peak memory (MiB) | budget (s) |", "|---|---:|---:|---:|"]
    lines += [f"| {r.notebook} | {r.seconds:.1f} | {r.peak_rss_mib} | {r.budget_s} |" for r in table.itertuples()]
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return csv_path


def record_timings(root: Path = REPO_ROOT) -> Path:
    """Copy the last build's timing table (_build/book_timings.{csv,md,provenance.json}) to the recorded one
    (RECORDED_TIMINGS and its .md / .provenance.json); the recorded csv's path."""
    recorded = root / RECORDED_TIMINGS
    for suffix in (".csv", ".md", ".provenance.json"):
        built = root / "_build" / f"book_timings{suffix}"
        if not built.is_file():
            raise FileNotFoundError(f"{built} is missing: run `python -m iaa_lib book` first")
        shutil.copyfile(built, recorded.parent / f"{recorded.stem}{suffix}")
    return recorded


def export_figures(root: Path = REPO_ROOT) -> list[Path]:
    """Write the figure of every executed notebook cell tagged `figure:<name>` to <root>/figures/<name>.png.

    The prose pages show these files, so a tagged cell without a PNG output, or a name used twice, is an error."""
    out_dir = root / FIGURES_DIR
    out_dir.mkdir(exist_ok=True)
    written: dict[str, Path] = {}
    for notebook in toc_notebooks(root):
        executed = notebook.with_suffix(".ipynb")
        if not executed.is_file():
            raise FileNotFoundError(f"{executed} is missing: execute the notebooks first (python -m iaa_lib book)")
        for cell in json.loads(executed.read_text())["cells"]:
            names = [t.removeprefix(FIGURE_TAG) for t in cell.get("metadata", {}).get("tags", []) if t.startswith(FIGURE_TAG)]
            if not names:
                continue
            pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            for name in names:
                if not pngs:
                    raise ValueError(f"{notebook}: the cell tagged {FIGURE_TAG}{name} drew no figure")
                if name in written:
                    raise ValueError(f"figure name {name!r} is used by two cells ({notebook} and an earlier one)")
                written[name] = out_dir / f"{name}.png"
                written[name].write_bytes(base64.b64decode(pngs[-1]))
    return list(written.values())


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


def execute_and_record(root: Path = REPO_ROOT, jobs: int = 2, log=print, command: str | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Execute every notebook, then write _build/notebook_runs.json, the timing table _build/book_timings.md (the
    Foundations benchmark page includes it; `command` names what ran it) and the key figures; return the runs."""
    start = time.perf_counter()
    runs = execute_notebooks(root, jobs=jobs, log=log)
    build_dir = root / "_build"
    build_dir.mkdir(exist_ok=True)
    (build_dir / "notebook_runs.json").write_text(json.dumps(runs, indent=2))
    write_timings(runs, time.perf_counter() - start, build_dir, command or f"python -m iaa_lib book --jobs {jobs}")
    log(f"exported {len(export_figures(root))} key figures to {root / FIGURES_DIR}")
    return runs


def build_book(root: Path = REPO_ROOT, jobs: int = 2, log=print) -> Path:
    """Execute and record all notebooks, then render the HTML; return the HTML dir."""
    start = time.perf_counter()
    execute_and_record(root, jobs=jobs, log=log)
    log("rendering HTML ...")
    html = render_html(root)
    log(f"book built in {time.perf_counter() - start:.0f} s: {html / 'index.html'}")
    return html


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), children first."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def _peak_rss_kib(pid: int) -> int:
    """The high-water resident set size (VmHWM) of a live process, in KiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


class KernelMemory:
    """Polls this process's descendants (the notebook's kernel) and keeps the largest peak RSS seen, in MiB.

    getrusage(RUSAGE_CHILDREN) cannot serve: Linux carries the parent's peak across fork + exec into the child."""

    def __init__(self, interval_s: float = 0.25):
        self.interval_s, self.peak_kib = interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            for pid in _descendants(os.getpid()):
                self.peak_kib = max(self.peak_kib, _peak_rss_kib(pid))

    def __enter__(self) -> "KernelMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def _child_main(notebook: str, report: str, parameters: str = "{}", output: str = "",
                cell_timeout_s: str = str(DEFAULT_CELL_TIMEOUT_S)) -> None:
    """Worker of execute_notebooks: run one notebook (parameters as JSON, its executed copy at `output` or beside
    it, seconds a cell may run), report its time, its kernel's peak memory and metrics."""
    with KernelMemory() as memory:
        run = run_notebook(notebook, output or None, json.loads(parameters), cell_timeout_s=int(cell_timeout_s))
    Path(report).write_text(json.dumps({"seconds": run["seconds"], "peak_rss_mib": memory.peak_mib,
                                        "metrics": run["metrics"]}))


if __name__ == "__main__":
    _child_main(*sys.argv[1:6])
