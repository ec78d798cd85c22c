"""Provenance records: commit, hardware and the command that reproduces a notebook's numbers."""
from __future__ import annotations

import shlex
import subprocess

import pytest

from iaa_lib.paths import REPO_ROOT
from iaa_lib.book.provenance import NOT_A_CHECKOUT, git_commit, hardware, notebook_command, provenance


def test_git_commit_names_head_and_dirtiness(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    assert git_commit(tmp_path) == NOT_A_CHECKOUT
    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("2")
    assert git_commit(tmp_path) == head + "+dirty"
    (tmp_path / "untracked.txt").write_text("ignored by the stamp")
    (tmp_path / "a.txt").write_text("1")
    assert git_commit(tmp_path) == head


def test_notebook_command_round_trips_through_the_shell():
    command = notebook_command(REPO_ROOT / "notebooks" / "x" / "01.py",
                               {"profile": "full", "epochs": 3, "lr": 0.001, "data_root": "/my data/ava", "flag": True})
    words = shlex.split(command)
    assert words[:5] == ["python", "-m", "iaa_lib", "run", "notebooks/x/01.py"]
    assert words[5:] == ["-p", "profile", "full", "-p", "epochs", "3", "-p", "lr", "0.001",
                         "-p", "data_root", "/my data/ava", "-p", "flag", "True"]


def test_provenance_record_has_every_field():
    record = provenance("python -m iaa_lib run nb.py", seed=3, seconds=1.234)
    assert record["seed"] == 3 and record["seconds"] == 1.2 and record["command"] == "python -m iaa_lib run nb.py"
    assert set(record) >= {"commit", "hardware", "torch", "python", "platform", "finished_utc"}
    assert record["hardware"] == hardware() and "GPU:" in record["hardware"]


@pytest.mark.parametrize("value", ["x", 1, 0.5, None])
def test_command_keeps_parameter_values_literal(value):
    words = shlex.split(notebook_command("/elsewhere/nb.py", {"v": value}))
    assert words[4] == "/elsewhere/nb.py" and words[-1] == (value if isinstance(value, str) else repr(value))
