"""The recorded book timings (benchmarks/results/book_timings_cpu.csv, written by a real build with
`bash .ci/book --record` on an idle 2-core machine) stay within budget: a benchmark record, not a timed test.

A notebook may exceed its budget (60 s, smoke profile) by noise, not by BUDGET_MARGIN; the notebooks' total
stays under 15 minutes; and the record is of this book: the notebooks it times are exactly those of _toc.yml,
and its provenance names the commit and command that wrote it."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from iaa_lib.book.build import NOTEBOOK_BUDGET_S, RECORDED_TIMINGS, toc_notebooks
from iaa_lib.paths import REPO_ROOT

BUDGET_MARGIN = 1.5  # a recorded time over 1.5x its budget is a regression, not noise
BOOK_BUDGET_S = 15 * 60  # the notebooks' total time (the wall clock of a 2-job build is shorter)
REGENERATE = "regenerate it on an idle machine with `bash .ci/book --record` and commit benchmarks/results/"


@pytest.fixture(scope="module")
def record() -> pd.DataFrame:
    return pd.read_csv(REPO_ROOT / RECORDED_TIMINGS)


def test_the_record_times_exactly_the_books_notebooks(record):
    expected = {str(p.relative_to(REPO_ROOT).with_suffix("")) for p in toc_notebooks()}
    recorded = set(record["notebook"])
    assert recorded == expected, (f"{RECORDED_TIMINGS} is stale: not in _toc.yml {sorted(recorded - expected)}, "
                                  f"not recorded {sorted(expected - recorded)}; {REGENERATE}")
    provenance = json.loads((REPO_ROOT / RECORDED_TIMINGS).with_suffix(".provenance.json").read_text())
    assert provenance["commit"] and provenance["command"], f"the record has no commit or command; {REGENERATE}"


UNMET = ("issue 19 is open: the record of commit 7a361ad268 (the verified test run) has 00_foundations/03_baseline "
         "113 s, 99_compare/01_results 223 s and 99_compare/05_real_critiques 246 s, 1375 s in all; strict, so a record "
         "that meets the budget fails here until this marker is removed")


@pytest.mark.xfail(strict=True, reason=UNMET)
def test_every_notebook_stays_within_its_budget(record):
    assert (record["budget_s"] == NOTEBOOK_BUDGET_S).all(), f"the record's budgets are not {NOTEBOOK_BUDGET_S} s"
    over = record[record["seconds"] > BUDGET_MARGIN * record["budget_s"]]
    assert over.empty, (f"recorded over {BUDGET_MARGIN}x the {NOTEBOOK_BUDGET_S} s budget: "
                        + ", ".join(f"{r.notebook} {r.seconds:.0f} s" for r in over.itertuples()))


@pytest.mark.xfail(strict=True, reason=UNMET)
def test_the_book_stays_within_fifteen_minutes(record):
    total = record["seconds"].sum()
    assert total <= BOOK_BUDGET_S, f"the recorded notebooks take {total:.0f} s together, over {BOOK_BUDGET_S} s"
