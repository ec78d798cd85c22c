"""The registry: every paper's spec by name, and `create_model(name, **cfg)`, the one way to build any model."""
from __future__ import annotations

import importlib
from functools import cache

from torch import nn

from iaa_lib.spec import PaperSpec

PAPERS = ("nima", "eat", "milnet", "ssmr", "cdcm", "cgiaa")  # the baseline first, then the papers in book order


@cache
def paper_spec(name: str) -> PaperSpec:
    """The spec of paper `name` (imported on first use: `iaa_lib.<name>.spec.SPEC`)."""
    if name not in PAPERS:
        raise KeyError(f"unknown paper {name!r}; papers: {', '.join(PAPERS)}")
    return importlib.import_module(f"iaa_lib.{name}.spec").SPEC


def paper_specs() -> dict[str, PaperSpec]:
    """Every paper's spec, in book order."""
    return {name: paper_spec(name) for name in PAPERS}


@cache
def registered_models() -> dict[str, str]:
    """Registry name -> "module:factory", from every paper's spec (EAT also registers its DAT backbone)."""
    return {model: target for spec in paper_specs().values() for model, target in spec.models.items()}


def model_factory(name: str):
    """The factory registered as `name` (see `registered_models`)."""
    models = registered_models()
    if name not in models:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(sorted(models))}")
    module_name, _, attr = models[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create_model(name: str, **cfg) -> nn.Module:
    """Instantiate the registered model `name` with its keyword configuration."""
    return model_factory(name)(**cfg)
