"""Published numbers read by name from book/results/sota.csv."""
from __future__ import annotations

import math

import pytest

from iaa_lib.data.sota import published


def test_published_reads_a_row_with_accuracy_as_a_fraction():
    nima = published("NIMA (Inception-v2)", "AVA")
    assert (nima["srcc"], nima["plcc"], nima["split"], nima["status"]) == (0.612, 0.636, "ava_official", "verified")
    assert nima["acc"] == pytest.approx(0.8151)  # stored as 81.51 %
    assert math.isnan(published("TANet", "AVA")["acc"])


def test_published_needs_exactly_one_row():
    with pytest.raises(KeyError, match="TAD66K"):  # names the rows the method does have
        published("EAT", "BAID")
    with pytest.raises(KeyError, match="0 rows"):
        published("no such method", "AVA")
