"""Where a number came from: the command, the commit, the hardware, the seed and the software versions."""
from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any

import torch

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

