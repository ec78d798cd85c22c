"""The notebooks open in JupyterLab as notebooks and run unchanged under `jupyter nbconvert --execute`."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from iaa_lib.paths import REPO_ROOT

NOTEBOOK = "notebooks/00_foundations/02_metrics_and_losses.py"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_jupyterlab_opens_py_percent_file_as_notebook(tmp_path):
    port, token = free_port(), "iaa-test-token"
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO_ROOT}",
         "--ServerApp.open_browser=False", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")})
    try:
        url = f"http://127.0.0.1:{port}/api/contents/{NOTEBOOK}?type=notebook&content=1"
        request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    model = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith("# ")
    assert sum("parameters" in c["metadata"].get("tags", []) for c in cells) == 1


@pytest.mark.notebook
def test_nbconvert_executes_a_notebook_unchanged(tmp_path):
    ipynb = tmp_path / "nb.ipynb"
    subprocess.run([str(BIN / "jupytext"), "--to", "ipynb", "-o", str(ipynb), str(REPO_ROOT / NOTEBOOK)],
                   check=True, capture_output=True)
    env = {**os.environ, "IAA_RUNS_DIR": str(tmp_path / "runs")}
    subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=300",
                    str(ipynb)], check=True, capture_output=True, env=env, cwd=tmp_path)
    executed = json.loads(ipynb.read_text())
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert outputs and not any(o["output_type"] == "error" for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs)
