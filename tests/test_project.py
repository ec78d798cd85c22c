"""The project's set-up files agree with each other: environment.yml, pyproject.toml, scripts, README."""
from __future__ import annotations

import re
import subprocess
import tomllib

import yaml

from iaa_lib.paths import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def readme_commands() -> list[str]:
    """The shell commands in the README's first code block (the two that do everything)."""
    block = re.search(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_environment_yml_parses_and_delegates_to_pip():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.12"
    pip_section = next(d for d in deps if isinstance(d, dict))["pip"]
    assert pip_section == ['-e ".[dev]"'] and "pip" in deps


def test_pinned_torch_and_book_versions():
    deps = PYPROJECT["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps
    assert "jupyter-book>=1.0.4,<2" in deps
    named = {re.split(r"[<>=\[]", d)[0].lower() for d in deps}
    for package in ["timm", "open_clip_torch", "jupyterlab", "jupytext", "papermill", "matplotlib",
                    "seaborn", "pandas", "scikit-learn", "captum", "ipykernel", "ipywidgets"]:
        assert package in named, package
    assert any(d.startswith("pytest") for d in PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_readme_gives_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert commands == ["bash .ci/book", "bash .ci/test"]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert 'exec bash "$(dirname "$0")/test"' in ci


def test_scripts_keep_hubs_offline_and_reuse_the_venv():
    env = (REPO_ROOT / ".ci" / "env.sh").read_text()
    assert "export HF_HUB_OFFLINE=1" in env
    assert "sha256sum pyproject.toml" in env
    for script in ("book", "test"):
        assert 'source "$(dirname "$0")/env.sh"' in (REPO_ROOT / ".ci" / script).read_text()


def test_no_notebook_json_is_tracked():
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout
    assert tracked == ""
    assert "*.ipynb" in (REPO_ROOT / ".gitignore").read_text().split()
