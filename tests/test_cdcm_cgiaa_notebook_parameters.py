"""The parameters cells of the CDCM-Net and CG-IAA notebooks hold their chapter's smoke profile."""
from __future__ import annotations

from pathlib import Path

import pytest

from iaa_lib.book.runner import notebook_parameters, read_notebook
from iaa_lib.cdcm.chapter import PROFILES as CDCM_PROFILES
from iaa_lib.cgiaa.chapter import PROFILES as CGIAA_PROFILES
from iaa_lib.paths import REPO_ROOT
from iaa_lib.profiles import ProfileError

CHAPTERS = {"cdcm": CDCM_PROFILES, "cgiaa": CGIAA_PROFILES}
NOTEBOOKS = [(name, path) for name in CHAPTERS for path in sorted((REPO_ROOT / "notebooks" / name).glob("0*.py"))]


def test_each_chapter_has_four_notebooks():
    assert [name for name, _ in NOTEBOOKS] == ["cdcm"] * 4 + ["cgiaa"] * 4


@pytest.mark.parametrize("chapter, path", NOTEBOOKS, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_parameters_cell_holds_the_smoke_profile(chapter: str, path: Path):
    profiles = CHAPTERS[chapter]
    parameters = notebook_parameters(read_notebook(path))
    profiles.check_parameters(parameters)
    assert parameters["profile"] == "smoke" and {"profile", "seed"} <= set(parameters) & set(profiles.field_names())


@pytest.mark.parametrize("chapter, field", [("cdcm", "epochs"), ("cgiaa", "map_epochs")])
def test_a_cell_that_is_not_the_smoke_profile_is_refused(chapter: str, field: str):
    with pytest.raises(ProfileError, match=f"{field}=9"):
        CHAPTERS[chapter].check_parameters({"profile": "smoke", field: 9})
