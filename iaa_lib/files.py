"""Safe files: atomic writes (unique temporary name, fsync, rename), a lock per run folder, caches that survive
truncation, and torch files read without running their code.

A reader of a file written here sees either the old or the new content, never a mix, even with several
writers at once; a crash while writing leaves the old file (or none) and at most a stray `.<name>.*.tmp`.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pickle
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

_held_locks: set[Path] = set()  # folders this process has locked
_held_guard = threading.Lock()
_UMASK = os.umask(0)
os.umask(_UMASK)


class UnreadableFileError(ValueError):
    """A file exists but cannot be read as what it should be (truncated, another format, untrusted content)."""


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where folders cannot be opened, e.g. some network mounts)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], binary: bool = True) -> Path:
    """Call write(handle) on a fresh temporary file beside `path`, fsync it, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle_fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle_fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(handle_fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_folder(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text (UTF-8) atomically."""
    return atomic_write(path, lambda handle: handle.write(text), binary=False)


def atomic_write_json(path: str | os.PathLike, value: Any, **dumps_kwargs: Any) -> Path:
    """Write json.dumps(value, **dumps_kwargs) atomically."""
    return atomic_write_text(path, json.dumps(value, **dumps_kwargs))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save atomically (safe against crashes and concurrent writers of the same path)."""
    import torch  # here, not at the top: the other helpers (locks, JSON, pickles) do not need torch

    return atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_pickle(obj: Any, path: str | os.PathLike) -> Path:
    """pickle.dump atomically (for caches the book writes and reads itself)."""
    return atomic_write(path, lambda handle: pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL))


def read_pickle_cache(path: str | os.PathLike) -> Any | None:
    """A cache pickle written by atomic_pickle, or None when it is absent or unreadable (then a warning names
    the file, so the caller rebuilds it)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError, ValueError) as error:
        warnings.warn(f"cache file {path} is unreadable ({type(error).__name__}: {error}); rebuilding it", stacklevel=2)
        return None


def read_torch_cache(path: str | os.PathLike) -> Any | None:
    """A cache torch file (tensors and plain types), or None when absent or unreadable (with a warning naming it)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return safe_torch_load(path)
    except UnreadableFileError as error:
        warnings.warn(f"{error}; rebuilding it", stacklevel=2)
        return None


def safe_torch_load(path: str | os.PathLike, trust: bool = False) -> Any:
    """torch.load on CPU with weights_only=True (tensors and plain Python types only, no code runs).

    trust=True allows arbitrary pickled objects: only for a known official format that needs it, from a source
    you trust. UnreadableFileError names the file for a truncated file, a non-torch file or refused content."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as error:  # torch raises many types here (RuntimeError, EOFError, KeyError, UnpicklingError)
        unsafe = [] if trust else _unsafe_globals(path)
        if unsafe:
            raise UnreadableFileError(
                f"{path} holds pickled objects a weights-only load refuses ({', '.join(unsafe[:5])}); they could run "
                "code when loaded, so the file is not read. Re-save it as plain tensors, or, for an official "
                "checkpoint from a source you trust, load it with trust=True"
            ) from error
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise UnreadableFileError(
            f"{path} ({path.stat().st_size} bytes) is not a readable torch file: truncated, empty or another format "
            f"({type(error).__name__}: {first_line[:200]})"
        ) from error


def _unsafe_globals(path: Path) -> list[str]:
    """The pickled globals a weights-only load would refuse (best effort: [] when they cannot be listed)."""
    import torch

    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # the listing is only a hint in an error message
        return []


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "writing") -> Iterator[None]:
    """Exclusive lock on `folder` (an fcntl lock on folder/.lock) against other processes; re-entrant in one
    process. Waits, with a message, while another process holds it; released when the holder exits or dies.
    In a folder where the lock file cannot be created (read-only), it warns and goes on without a lock."""
    folder = Path(folder).resolve()
    with _held_guard:
        reentered = folder in _held_locks
    if reentered:  # the outer holder releases it
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / ".lock").open("a")
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        warnings.warn(f"cannot create the lock file {folder / '.lock'} ({error.strerror}): read-only folder? "
                      "Going on without a lock, so only reading there is safe", stacklevel=3)
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process {what} {folder} (lock {folder / '.lock'})", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        with _held_guard:
            _held_locks.add(folder)
        try:
            yield
        finally:
            with _held_guard:
                _held_locks.discard(folder)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
