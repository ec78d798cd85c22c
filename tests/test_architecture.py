"""The package tree is the architecture: core <- papers <- registry <- book tooling, never the other way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "iaa_lib"
PAPERS = ("nima", "eat", "milnet", "ssmr", "cdcm", "cgiaa")
CORE = ("data", "training", "blocks", "paths", "files", "seed", "metrics", "losses", "viz", "profiles", "spec")


def layer(module: str) -> str:
    """'core', 'paper:<name>', 'registry' or 'book' for a dotted module name inside iaa_lib."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in PAPERS:
        return f"paper:{top}"
    if top == "models":
        return "registry"
    if top in ("book", "__main__"):
        return "book"
    if top in CORE or top == "":
        return "core"
    raise AssertionError(f"{module}: not placed in any layer; add it to CORE, PAPERS or the book tooling")


def allowed(importer: str, imported: str) -> bool:
    """Whether a module of layer `importer` may import one of layer `imported`."""
    if imported == "core" or importer == "book":
        return True
    if importer == "registry":
        return imported.startswith("paper:")
    return importer == imported


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import of iaa_lib in a file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "iaa_lib" else [f"iaa_lib.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names if n == "iaa_lib" or n.startswith("iaa_lib.")]
    return found


def all_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer():
    for path in all_modules():
        layer(module_name(path))


@pytest.mark.parametrize("path", all_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_inwards(path):
    importer = layer(module_name(path))
    bad = [f"line {line}: {name} ({layer(name)})" for line, name in imports_of(path) if not allowed(importer, layer(name))]
    assert not bad, f"{path.relative_to(PACKAGE.parent)} ({importer}) imports against the layering: {bad}"


def test_the_rule_catches_a_wrong_import(tmp_path):
    wrong = tmp_path / "iaa_lib" / "eat" / "bad.py"
    wrong.parent.mkdir(parents=True)
    wrong.write_text("from iaa_lib.milnet.model import milnet\nfrom iaa_lib.book.compare import x\nimport iaa_lib.metrics\n")
    names = [name for _, name in imports_of(wrong)]
    assert names == ["iaa_lib.milnet.model", "iaa_lib.book.compare", "iaa_lib.metrics"]
    verdicts = [allowed("paper:eat", layer(n)) for n in names]
    assert verdicts == [False, False, True]
    assert not allowed("core", "paper:eat") and not allowed("registry", "book") and not allowed("paper:eat", "registry")
