"""Shared fixtures: notebooks are executed once per session (smoke defaults) into a fresh runs folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from iaa_lib.paths import REPO_ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
_executed: dict[Path, dict] = {}


@pytest.fixture
def one_thread():
    """Run a test single-threaded: tiny tensors are fastest so, and the CI machine's 2 cores are shared."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def session_runs_dir(tmp_path_factory) -> Path:
    """A fresh IAA_RUNS_DIR, so notebook checks always train from scratch."""
    runs = tmp_path_factory.mktemp("runs")
    os.environ["IAA_RUNS_DIR"] = str(runs)
    return runs


@pytest.fixture(scope="session")
def execute_notebook(session_runs_dir):
    """Execute a notebook (repo-relative path) once per session; return run_notebook's result."""
    from iaa_lib.book.runner import run_notebook

    def execute(rel_path: str) -> dict:
        path = (REPO_ROOT / rel_path).resolve()
        if path not in _executed:
            _executed[path] = run_notebook(path)
        return _executed[path]
    return execute


@pytest.fixture(scope="session")
def notebook_metrics(execute_notebook):
    """`notebook_metrics("notebooks/x/02_train.py") -> dict`: the metrics JSON of its smoke run."""
    return lambda rel_path: execute_notebook(rel_path)["metrics"]


@pytest.fixture(scope="session")
def built_book(session_runs_dir) -> Path:
    """Every book notebook executed (chapters side by side, as `python -m iaa_lib book` does; the notebook checks
    then read these runs instead of executing again), then the HTML rendered; returns _build/html."""
    from iaa_lib.book.build import execute_and_record, render_html

    for name, run in execute_and_record(command="python -m pytest (the test suite's built_book fixture)").items():
        path = (REPO_ROOT / f"{name}.py").resolve()
        _executed.setdefault(path, {"output": path.with_suffix(".ipynb"), **run})
    return render_html()


@pytest.fixture(scope="session")
def mini_ava(tmp_path_factory):
    """A miniature AVA in the original formats (AVA.txt, images/, aesthetics_image_lists/) built from the embedded
    photos, with deliberate defects; returns iaa_lib.data.mini_ava.MiniAva (root and the defects it holds)."""
    from iaa_lib.data.mini_ava import build_mini_ava

    return build_mini_ava(tmp_path_factory.mktemp("mini_ava"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Tests that read the full-profile rehearsal are slow (about an hour of CPU on 2 cores): run them with -m slow."""
    for item in items:
        if "rehearsal_runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def rehearsal_runs(tmp_path_factory) -> dict:
    """Every notebook's full profile rehearsed once per session (iaa_lib.book.rehearsal: the miniature AVA, 2 optimiser
    steps per training run, random weights); {notebook name: {"metrics", "seconds", "peak_rss_mib", "parameters"}}.
    The time table goes to _build/rehearsal_timings.md, as `python -m iaa_lib book --rehearse` writes it."""
    import time

    from iaa_lib.book.rehearsal import rehearse, write_rehearsal_timings

    start = time.perf_counter()
    runs = rehearse(tmp_path_factory.mktemp("rehearsal"))
    write_rehearsal_timings(runs, time.perf_counter() - start, REPO_ROOT / "_build",
                            command="python -m pytest (the test suite's rehearsal_runs fixture)")
    return runs
