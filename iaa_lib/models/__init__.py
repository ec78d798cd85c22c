"""Model registry: `create_model(name, **cfg)` builds any model of the book by name."""
from __future__ import annotations

import importlib

from torch import nn

MODELS: dict[str, str] = {
    "nima": "iaa_lib.models.nima:NIMA",
    "dat": "iaa_lib.models.dat:DAT",
    "eat": "iaa_lib.models.eat:EAT",
    "milnet": "iaa_lib.models.milnet:milnet",
    "ssmr": "iaa_lib.models.ssmr:SSMR",
    "cdcm": "iaa_lib.models.cdcm:cdcm",
    "cgiaa": "iaa_lib.models.cgiaa:create_cgiaa",
}


def create_model(name: str, **cfg) -> nn.Module:
    """Instantiate the registered model `name` with its keyword configuration."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}")
    module_name, _, attr = MODELS[name].partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(**cfg)
