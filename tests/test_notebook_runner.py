"""The papermill runner: parameter checking, execution, timeouts and metrics."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch

from iaa_lib.book.runner import (NotebookParameterError, check_parameters, notebook_parameters,
                              parse_cli_value, read_notebook, record_metrics, run_notebook)

HEADER = "# %% [markdown]\n# # Tiny\n\n"


def write_nb(tmp_path, params: str, body: str, name: str = "tiny.py"):
    path = tmp_path / name
    path.write_text(HEADER + '# %% tags=["parameters"]\n' + textwrap.dedent(params) + "\n# %%\n"
                    + textwrap.dedent(body))
    return path


def test_parameters_are_read_as_literals(tmp_path):
    path = write_nb(tmp_path, 'epochs = 3\nlr = 1e-3\nname = "x"\nflag = True\nroot = None\n', "pass\n")
    assert notebook_parameters(read_notebook(path)) == {
        "epochs": 3, "lr": 1e-3, "name": "x", "flag": True, "root": None}


def test_non_literal_parameters_cell_is_rejected(tmp_path):
    path = write_nb(tmp_path, "import os\nepochs = 3\n", "pass\n")
    with pytest.raises(NotebookParameterError, match="line 1"):
        notebook_parameters(read_notebook(path))
    path = write_nb(tmp_path, "epochs = 1 + n\n", "pass\n")
    with pytest.raises(NotebookParameterError, match="not a literal"):
        notebook_parameters(read_notebook(path))


def test_notebook_without_parameters_cell_is_rejected(tmp_path):
    path = tmp_path / "none.py"
    path.write_text("# %%\nx = 1\n")
    with pytest.raises(NotebookParameterError, match="exactly one"):
        notebook_parameters(read_notebook(path))


@pytest.mark.parametrize("passed, message", [
    ({"epoch": 3}, "unknown parameter 'epoch'"),
    ({"epochs": "3"}, "'epochs' must be int"),
    ({"epochs": 2.5}, "'epochs' must be int"),
    ({"flag": 1}, "'flag' must be bool"),
    ({"epochs": True}, "'epochs' must be int"),
    ({"name": 3}, "'name' must be str"),
])
def test_bad_parameters_are_named(passed, message):
    defaults = {"epochs": 3, "lr": 1e-3, "name": "x", "flag": False, "root": None}
    with pytest.raises(NotebookParameterError, match=message):
        check_parameters(defaults, passed)


def test_good_parameters_pass():
    defaults = {"epochs": 3, "lr": 1e-3, "name": "x", "flag": False, "root": None}
    check_parameters(defaults, {"epochs": 5, "lr": 1, "name": "y", "flag": True, "root": "/data"})


def test_cli_values_parse_as_literals():
    assert parse_cli_value("3") == 3 and parse_cli_value("0.5") == 0.5
    assert parse_cli_value("True") is True and parse_cli_value("full") == "full"


def test_run_writes_notebook_and_metrics(tmp_path):
    metrics = tmp_path / "m.json"
    path = write_nb(tmp_path, f'n = 2\nmetrics_file = "{metrics}"\n', """\
        from iaa_lib.book.runner import record_metrics
        record_metrics(metrics_file, {"double": 2 * n})
        """)
    result = run_notebook(path, parameters={"n": 21})
    stamp = result["metrics"].pop("provenance")
    assert result["metrics"] == {"double": 42}
    assert stamp["command"].endswith("tiny.py -p n 21") and stamp["command"].startswith("python -m iaa_lib run ")
    assert stamp["seed"] is None and stamp["seconds"] > 0 and stamp["torch"] == torch.__version__
    assert "cores; GPU:" in stamp["hardware"] and stamp["commit"]
    assert json.loads(metrics.read_text())["provenance"] == stamp
    executed = json.loads((tmp_path / "tiny.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])


def test_run_rejects_unknown_parameter_before_executing(tmp_path):
    path = write_nb(tmp_path, "n = 2\n", "pass\n")
    with pytest.raises(NotebookParameterError, match="unknown parameter 'm'"):
        run_notebook(path, parameters={"m": 1})
    assert not (tmp_path / "tiny.ipynb").exists()


def test_cell_error_and_missing_metrics_are_reported(tmp_path):
    import papermill
    path = write_nb(tmp_path, "n = 2\n", "raise RuntimeError('boom')\n")
    with pytest.raises(papermill.PapermillExecutionError, match="boom"):
        run_notebook(path)
    path = write_nb(tmp_path, f'metrics_file = "{tmp_path / "never.json"}"\n', "pass\n", name="nometrics.py")
    with pytest.raises(RuntimeError, match="wrote no metrics"):
        run_notebook(path)


def test_cell_timeout_stops_a_hanging_cell(tmp_path):
    path = write_nb(tmp_path, "n = 2\n", "import time\ntime.sleep(30)\n")
    with pytest.raises(Exception, match="(?i)timed? ?out"):
        run_notebook(path, cell_timeout_s=2)


def test_record_metrics_rejects_non_finite(tmp_path):
    with pytest.raises(ValueError, match="not finite"):
        record_metrics(tmp_path / "m.json", {"srcc": float("nan")})
    path = record_metrics(tmp_path / "m.json", {"srcc": 0.5, "nested": {"a": [1, 2]}})
    assert json.loads(path.read_text()) == {"srcc": 0.5, "nested": {"a": [1, 2]}}


def test_cli_run_refuses_unknown_parameter_and_runs_good_ones(tmp_path):
    import subprocess
    import sys
    metrics = tmp_path / "m.json"
    path = write_nb(tmp_path, f'n = 2\nmetrics_file = "{metrics}"\n', """\
        from iaa_lib.book.runner import record_metrics
        record_metrics(metrics_file, {"n": n})
        """)
    bad = subprocess.run([sys.executable, "-m", "iaa_lib", "run", str(path), "-p", "m", "1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown parameter 'm'" in bad.stderr
    good = subprocess.run([sys.executable, "-m", "iaa_lib", "run", str(path), "-p", "n", "5"],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    recorded = json.loads(metrics.read_text())
    assert recorded["n"] == 5 and recorded["provenance"]["command"].endswith("-p n 5")


def test_a_failed_run_keeps_the_previous_metrics_and_a_stale_file_is_not_taken_as_new(tmp_path):
    import papermill
    metrics = tmp_path / "m.json"
    path = write_nb(tmp_path, f'n = 2\nfail_after_recording = False\nmetrics_file = "{metrics}"\n', """\
        from iaa_lib.book.runner import record_metrics
        if n > 2:
            raise RuntimeError("crashed before recording")
        record_metrics(metrics_file, {"n": n})
        if fail_after_recording:
            raise RuntimeError("crashed after recording")
        """)
    run_notebook(path)
    good = metrics.read_bytes()
    with pytest.raises(papermill.PapermillExecutionError, match="crashed before recording"):
        run_notebook(path, parameters={"n": 3})
    assert metrics.read_bytes() == good
    with pytest.raises(papermill.PapermillExecutionError, match="crashed after recording"):
        run_notebook(path, parameters={"fail_after_recording": True})
    assert metrics.read_bytes() == good  # the failed run's numbers do not replace the good ones
    silent = write_nb(tmp_path, f'metrics_file = "{metrics}"\n', "pass\n", name="silent.py")
    with pytest.raises(RuntimeError, match="wrote no metrics .*from an earlier run"):
        run_notebook(silent)
    assert metrics.read_bytes() == good
