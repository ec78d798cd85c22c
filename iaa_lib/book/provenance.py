"""Where a number came from: the command, the commit, the hardware, the seed and the software versions."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any

import torch

from iaa_lib.files import atomic_write_json
from iaa_lib.paths import REPO_ROOT

NOT_A_CHECKOUT = "unknown (not a git checkout)"


def git_commit(repo: str | os.PathLike = REPO_ROOT) -> str:
    """Short commit hash of `repo`, with "+dirty" when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=10", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return NOT_A_CHECKOUT
    return commit + ("+dirty" if dirty else "")


def cpu_name() -> str:
    """The CPU model as the OS reports it (Linux /proc/cpuinfo, else platform.processor())."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware() -> str:
    """E.g. "AMD EPYC 7B13, 2 cores; GPU: none" or "...; GPU: NVIDIA H100 80GB HBM3 x1"."""
    gpu = "none"
    if torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"{cpu_name()}, {os.cpu_count()} cores; GPU: {gpu}"


def notebook_command(notebook: str | os.PathLike, parameters: dict[str, Any]) -> str:
    """The shell command that re-runs `notebook` (repo-relative when inside the repo) with these parameters."""
    path = Path(notebook).resolve()
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    words = ["python", "-m", "iaa_lib", "run", str(shown)]
    for name, value in parameters.items():
        words += ["-p", name, value if isinstance(value, str) else repr(value)]
    return shlex.join(words)


def provenance(command: str, seed: int | None, seconds: float | None = None) -> dict[str, Any]:
    """Provenance record: command, commit, hardware, seed, versions, UTC time (and wall-clock seconds)."""
    record = {
        "command": command,
        "commit": git_commit(),
        "hardware": hardware(),
        "seed": seed,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()}",
        "finished_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if seconds is not None:
        record["seconds"] = round(seconds, 1)
    return record



def results_provenance_path(results: str | os.PathLike) -> Path:
    """Where the provenance of a recorded results file lives: models_cpu.csv -> models_cpu.provenance.json."""
    results = Path(results)
    return results.with_name(results.stem + ".provenance.json")


def results_record(command: str) -> dict[str, Any]:
    """Provenance of a benchmark results file (take it before writing the results, so the commit is not dirty)."""
    return {key: value for key, value in provenance(command, seed=None).items() if key != "seed"}


def write_results_provenance(results: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write `record` (results_record) beside the results file; returns the provenance file."""
    return atomic_write_json(results_provenance_path(results), record, indent=1, sort_keys=True)


def results_provenance(results: str | os.PathLike) -> dict[str, Any]:
    """The recorded provenance (command, commit, hardware, finished_utc, ...) of a results file; FileNotFoundError
    naming the missing provenance file otherwise (numbers without one cannot be cited)."""
    path = results_provenance_path(results)
    if not path.is_file():
        raise FileNotFoundError(f"{results} has no provenance record {path}; re-run the command that writes it "
                                "(it records the commit, date and command next to the results)")
    record = json.loads(path.read_text())
    missing = [key for key in ("command", "commit", "finished_utc") if not record.get(key)]
    if missing:
        raise ValueError(f"{path}: provenance record lacks {missing}")
    return record


def results_header(record: dict[str, Any]) -> str:
    """Markdown header line of a results table: command, date, commit, hardware, torch (and the record's note)."""
    note = f" {record['note'][0].upper()}{record['note'][1:]}." if record.get("note") else ""
    return (f"Command: `{record['command']}`  \nDate: {record['finished_utc']}; git {record['commit']}; "
            f"{record.get('hardware', 'hardware not recorded')}; torch {record.get('torch', 'not recorded')}.{note}\n\n")
