"""The book build: which notebooks run side by side, and the per-notebook timing table it writes."""
from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
from PIL import Image

from iaa_lib.book.build import (NOTEBOOK_BUDGET_S, RUN_LAST, execute_notebooks, export_figures, notebook_groups,
                                write_timings)
from iaa_lib.paths import REPO_ROOT


def test_chapters_are_groups_and_the_citation_page_runs_last():
    groups, last = notebook_groups()
    assert [str(p.relative_to(REPO_ROOT).with_suffix("")) for p in last] == list(RUN_LAST)
    for group in groups:
        folders = {p.parent for p in group}
        assert len(folders) == 1, group
        assert [p.name for p in group] == sorted(p.name for p in group)  # reading order inside a chapter
    eat = next(g for g in groups if g[0].parent.name == "eat")
    assert [p.stem for p in eat] == ["01_data", "02_train", "03_evaluate", "04_attention"]


def tiny_book(root, chapters: dict[str, list[str]], sizes: dict[str, int]) -> None:
    entries = []
    for chapter, notebooks in chapters.items():
        (root / "notebooks" / chapter).mkdir(parents=True)
        for name in notebooks:
            (root / "notebooks" / chapter / f"{name}.py").write_text(textwrap.dedent(f'''\
                # %% [markdown]
                # # {name}

                # %% tags=["parameters"]
                size = {sizes.get(name, 1000)}

                # %%
                buffer = bytearray(size * 8)
                '''))
            entries.append({"file": f"notebooks/{chapter}/{name}"})
    (root / "intro.md").write_text("# Tiny\n")
    import yaml
    (root / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro", "chapters": entries}))


def test_every_notebook_is_timed_in_its_own_process(tmp_path):
    tiny_book(tmp_path, {"a": ["01_x", "02_y"], "b": ["01_z"]}, sizes={"01_x": 50_000_000})  # 400 MB buffer
    logged = []
    runs = execute_notebooks(tmp_path, jobs=2, log=logged.append)
    assert list(runs) == ["notebooks/a/01_x", "notebooks/a/02_y", "notebooks/b/01_z"]
    assert all(run["seconds"] > 0 for run in runs.values())
    peaks = {name.rsplit("/", 1)[1]: run["peak_rss_mib"] for name, run in runs.items()}
    assert peaks["01_x"] > peaks["02_y"] + 300  # each notebook's own kernel peak, not a running maximum
    assert logged.index("executing notebooks/a/01_x ...") < logged.index("executing notebooks/a/02_y ...")


def test_timing_table_names_commit_and_budget(tmp_path):
    runs = {"notebooks/a/01_x": {"seconds": 12.34, "peak_rss_mib": 512.4},
            "notebooks/b/01_z": {"seconds": 70.0, "peak_rss_mib": 900.0}}
    csv_path = write_timings(runs, 80.0, tmp_path, "python -m iaa_lib book --jobs 2")
    table = pd.read_csv(csv_path)
    assert table["seconds"].tolist() == [12.3, 70.0] and table["budget_s"].tolist() == [NOTEBOOK_BUDGET_S] * 2
    text = (tmp_path / "book_timings.md").read_text()
    assert "`python -m iaa_lib book --jobs 2` at commit" in text and "| notebooks/b/01_z | 70.0 | 900 | 60 |" in text
    assert "82 s of notebook time, 80 s wall clock" in text
    assert json.loads((tmp_path / "book_timings.provenance.json").read_text())["command"] == "python -m iaa_lib book --jobs 2"


def test_tagged_figures_are_exported(tmp_path):
    tiny_book(tmp_path, {"a": ["01_x"]}, sizes={})
    notebook = tmp_path / "notebooks" / "a" / "01_x.py"
    notebook.write_text(notebook.read_text() + textwrap.dedent('''
        # %% tags=["figure:tiny_line"]
        import matplotlib.pyplot as plt
        plt.plot([0, 1], [1, 0])
        plt.show()
        '''))
    execute_notebooks(tmp_path, jobs=1, log=lambda _: None)
    [figure] = export_figures(tmp_path)
    assert figure == tmp_path / "figures" / "tiny_line.png"
    with Image.open(figure) as image:
        assert image.format == "PNG" and min(image.size) > 100


def test_a_tagged_cell_without_a_figure_is_an_error(tmp_path):
    tiny_book(tmp_path, {"a": ["01_x"]}, sizes={})
    notebook = tmp_path / "notebooks" / "a" / "01_x.py"
    notebook.write_text(notebook.read_text() + '\n# %% tags=["figure:nothing"]\nx = 1\n')
    execute_notebooks(tmp_path, jobs=1, log=lambda _: None)
    with pytest.raises(ValueError, match="figure:nothing drew no figure"):
        export_figures(tmp_path)


def test_the_longest_chapter_starts_first_from_the_recorded_timings(tmp_path):
    from iaa_lib.book.build import RECORDED_TIMINGS, previous_seconds

    assert previous_seconds(tmp_path) == {}
    recorded = tmp_path / RECORDED_TIMINGS
    recorded.parent.mkdir(parents=True)
    pd.DataFrame({"notebook": ["notebooks/a/01_x", "notebooks/b/01_z"], "seconds": [3.0, 90.0]}).to_csv(recorded)
    assert previous_seconds(tmp_path) == {"notebooks/a/01_x": 3.0, "notebooks/b/01_z": 90.0}
    (tmp_path / "_build").mkdir()
    (tmp_path / "_build" / "notebook_runs.json").write_text('{"notebooks/a/01_x": {"seconds": 7.5}}')
    assert previous_seconds(tmp_path) == {"notebooks/a/01_x": 7.5}  # the last build wins over the record


def test_the_comparison_waits_for_the_chapters_whose_runs_it_loads(tmp_path, monkeypatch):
    from iaa_lib.book import build

    groups, _ = notebook_groups()
    waiting = {p.stem for g in groups if build.waits_for_chapters(g) for p in g}
    assert waiting == {"01_results", "03_failure_cases"}  # 02_benchmark and 05_real_critiques need no chapter
    monkeypatch.setattr(build, "AFTER_CHAPTERS", ("notebooks/z",))
    tiny_book(tmp_path, {"z": ["01_w"], "a": ["01_x", "02_y"], "b": ["01_v"]}, sizes={})
    logged = []
    execute_notebooks(tmp_path, jobs=2, log=logged.append)
    started = logged.index("executing notebooks/z/01_w ...")
    assert all(logged.index(line) < started for line in logged if " done in " in line and "/z/" not in line)
    assert len([line for line in logged if " done in " in line]) == 4
