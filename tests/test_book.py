"""The built book, tested as a web page: pages, figures, no errors, and a real browser render."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from iaa_lib.book.build import toc_files, toc_notebooks
from iaa_lib.paths import REPO_ROOT

pytestmark = pytest.mark.notebook


class ImageSources(HTMLParser):
    """Collects the src of every <img> in a page."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


def page_images(html_path) -> list[str]:
    parser = ImageSources()
    parser.feed(html_path.read_text())
    return [src for src in parser.sources if "_images/" in src or src.startswith("data:image")]


def executed_png_count(notebook_py) -> int:
    nb = json.loads(notebook_py.with_suffix(".ipynb").read_text())
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"] if cell["cell_type"] == "code"
               for out in cell["outputs"])


def test_every_toc_document_has_a_page(built_book):
    assert (built_book / "index.html").is_file()
    for name in toc_files():
        assert (built_book / f"{name}.html").is_file(), name


@pytest.mark.parametrize("notebook", toc_notebooks(), ids=lambda p: p.stem)
def test_notebook_page_shows_its_figures_and_no_errors(built_book, notebook):
    page = built_book / notebook.relative_to(REPO_ROOT).with_suffix(".html")
    html = page.read_text()
    images = page_images(page)
    expected = executed_png_count(notebook)
    assert expected > 0, f"{notebook.name} draws no figure"
    assert len(images) >= expected, f"{page.name}: {len(images)} images shown, {expected} figures executed"
    for src in images:
        if src.startswith("data:"):
            continue
        image_file = (page.parent / src).resolve()
        assert image_file.stat().st_size > 1000, src
        with Image.open(image_file) as im:
            assert min(im.size) > 50 and np.asarray(im.convert("L")).std() > 1.0, src
    nb = json.loads(notebook.with_suffix(".ipynb").read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]
              if o["output_type"] == "error"]
    assert not errors
    assert not re.search(r"Traceback \(most recent call last\)", html)
    assert "<h1" in html


def chromium_screenshot(url: str, out) -> None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/test installs Debian's chromium as root")
        pytest.skip("chromium not installed")
    subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
                    f"--user-data-dir={out.parent / 'chrome-profile'}", "--window-size=1280,1600",
                    f"--screenshot={out}", url], check=True, capture_output=True, timeout=120)


@pytest.mark.parametrize("page", ["book/intro.html", "notebooks/00_foundations/01_data.html"])
def test_chromium_renders_the_page(built_book, page, tmp_path):
    shot = tmp_path / "page.png"
    chromium_screenshot((built_book / page).as_uri(), shot)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape[1] == 1280
    dark = (pixels < 128).mean()
    assert 0.005 < dark < 0.6, f"page looks blank or broken ({dark:.3%} dark pixels)"


def test_prose_pages_show_the_exported_key_figures(built_book):
    referenced = {}
    for name in toc_files():
        source = REPO_ROOT / f"{name}.md"
        if source.is_file():
            for figure in re.findall(r"figures/([\w-]+\.png)", source.read_text()):
                referenced[figure] = name
    assert referenced, "no prose page shows a key figure"
    for figure, page in referenced.items():
        exported = REPO_ROOT / "figures" / figure
        assert exported.is_file() and exported.stat().st_size > 1000, f"{figure} was not exported"
        shown = page_images(built_book / f"{page}.html")
        assert any(src.endswith(figure) for src in shown), f"{page}.html does not show {figure}: {shown}"
