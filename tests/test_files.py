"""Safe files: concurrent checkpoint writers with a reader, the run-folder lock, truncated caches, untrusted files."""
from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from iaa_lib.files import (
    UnreadableFileError,
    atomic_pickle,
    atomic_write_json,
    folder_lock,
    read_pickle_cache,
    read_torch_cache,
    safe_torch_load,
)
from iaa_lib.paths import REPO_ROOT

torch.set_num_threads(1)

WRITER = textwrap.dedent("""
    import sys, time, torch
    from iaa_lib.files import atomic_torch_save  # what save_checkpoint calls
    torch.set_num_threads(1)
    path, value, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    state = {"model": {"w": torch.full((256, 256), value)}, "epoch": int(value)}
    print("ready", flush=True)
    sys.stdin.readline()  # both writers start together
    end, saves = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        atomic_torch_save(state, path)
        saves += 1
    print(saves)
""")


def test_two_writers_and_a_reader_of_one_checkpoint_never_see_a_partial_file(tmp_path):
    from iaa_lib.training import read_checkpoint

    path = tmp_path / "last.pt"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(value), "2"], cwd=REPO_ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for value in (1, 2)]
    assert [writer.stdout.readline().strip() for writer in writers] == ["ready", "ready"]
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    loads, seen = 0, set()
    while any(writer.poll() is None for writer in writers):
        if path.exists():
            state = read_checkpoint(path)  # raises CheckpointError on a partial file
            value = float(state["model"]["w"][0, 0])
            assert torch.equal(state["model"]["w"], torch.full((256, 256), value)) and state["epoch"] == int(value)
            seen.add(value)
            loads += 1
    outputs = [writer.communicate(timeout=60) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], [err for _, err in outputs]
    assert all(int(out) > 0 for out, _ in outputs) and loads > 10, (outputs, loads)
    assert seen <= {1.0, 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    from iaa_lib.files import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(1.5)
""")


def test_folder_lock_excludes_other_processes_and_is_reentrant(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    start = time.monotonic()
    with folder_lock(tmp_path):
        waited = time.monotonic() - start
        with folder_lock(tmp_path):  # the same process may take it again
            pass
    holder.wait(timeout=30)
    assert waited > 0.5 and "waiting for another process" in capsys.readouterr().out


def test_truncated_caches_are_named_and_rebuilt(tmp_path):
    from iaa_lib.data.labelled_sets import cached_synthetic
    from iaa_lib.data.synthetic import GENERATOR_VERSION

    atomic_pickle({"a": 1}, tmp_path / "c.pkl")
    assert read_pickle_cache(tmp_path / "c.pkl") == {"a": 1} and read_pickle_cache(tmp_path / "none.pkl") is None
    first = cached_synthetic(4, tmp_path / "syn", image_size=32, seed=1)
    frame_file = tmp_path / "syn" / f"generator_v{GENERATOR_VERSION}" / "frame.pkl"
    frame_file.write_bytes(frame_file.read_bytes()[:100])
    with pytest.warns(UserWarning, match=r"cache file .*frame\.pkl is unreadable .*rebuilding"):
        again = cached_synthetic(4, tmp_path / "syn", image_size=32, seed=1)
    assert again.drop(columns="path").equals(first.drop(columns="path"))
    assert pickle.loads(frame_file.read_bytes()).equals(again)  # rewritten whole

    torch.save({"x": torch.ones(3)}, tmp_path / "f.pt")
    (tmp_path / "f.pt").write_bytes((tmp_path / "f.pt").read_bytes()[:50])
    with pytest.warns(UserWarning, match=r"f\.pt .*not a readable torch file.*rebuilding"):
        assert read_torch_cache(tmp_path / "f.pt") is None


def test_atomic_json_and_safe_torch_load_messages(tmp_path):
    atomic_write_json(tmp_path / "h.json", {"a": [1, 2]})
    assert (tmp_path / "h.json").read_text() == '{"a": [1, 2]}'
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(UnreadableFileError, match=r"empty\.pt \(0 bytes\) is not a readable torch file"):
        safe_torch_load(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        safe_torch_load(tmp_path / "nothing.pt")


def test_a_truncated_feature_store_is_named_and_extracted_again(tmp_path):
    import numpy as np
    import pandas as pd
    from PIL import Image

    from iaa_lib.blocks.retrieval import extract_features

    class MeanColour(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, images):
            return images.mean(dim=(2, 3)) * self.scale

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.jpg")
    frame = pd.DataFrame({"image_id": ["0", "1", "2"]})

    def to_tensor(image):
        return torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)

    kwargs = dict(backbone_name="mean", backbone=MeanColour(), transform=to_tensor, cache_dir=tmp_path / "cache")
    first = extract_features(frame, tmp_path, **kwargs)
    features = first.path / "features.npy"
    features.write_bytes(features.read_bytes()[:60])
    with pytest.warns(UserWarning, match=rf"feature cache {first.path} is unreadable .*rebuilding"):
        again = extract_features(frame, tmp_path, **kwargs)
    assert torch.equal(again.features, first.features)
