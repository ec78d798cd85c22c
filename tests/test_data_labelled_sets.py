"""The named labelled sets fail before any work when their data is missing or a split would be empty."""
from __future__ import annotations

import pandas as pd
import pytest

from iaa_lib.data.datasets import split_loaders
from iaa_lib.data.labelled_sets import labelled_set


def test_ava_with_a_wrong_data_root_fails_naming_the_path(tmp_path):
    test_list = tmp_path / "test.jpgl"
    test_list.write_text("953619\n953958\n")
    empty = tmp_path / "not_the_images"
    empty.mkdir()
    with pytest.raises(ValueError, match=rf"none of the \d+ AVA images .*data_root {empty}"):
        labelled_set("ava", data_root=empty, test_list=test_list)
    with pytest.raises(FileNotFoundError, match=rf"data_root {tmp_path / 'missing'} is not a folder"):
        labelled_set("ava", data_root=tmp_path / "missing", test_list=test_list)


def test_a_synthetic_set_too_small_for_its_splits_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"synthetic set \(n_synthetic=2.*the test split is empty \(train 1, val 1, test 0\)"):
        labelled_set("synthetic", run_dir=tmp_path, n_synthetic=2, synthetic_size=32)


def test_split_loaders_refuse_an_empty_part():
    frame = pd.DataFrame({"image_id": ["a", "b"], "mos": [5.0, 6.0], "path": ["a.jpg", "b.jpg"]})
    with pytest.raises(ValueError, match=r"the test part\(s\) have no images \(train 2, test 0\)"):
        split_loaders({"train": frame, "test": frame.iloc[:0]}, None, 32)
