"""Model registry: `create_model(name, **cfg)` builds any model of the book by name."""
from __future__ import annotations

import importlib

from torch import nn

MODELS: dict[str, str] = {
    "nima": "iaa_lib.nima.model:NIMA",
    "dat": "iaa_lib.eat.dat:DAT",
    "eat": "iaa_lib.eat.model:EAT",
    "milnet": "iaa_lib.milnet.model:milnet",
    "ssmr": "iaa_lib.ssmr.model:SSMR",
    "cdcm": "iaa_lib.cdcm.model:cdcm",
    "cgiaa": "iaa_lib.cgiaa.model:create_cgiaa",
}


def create_model(name: str, **cfg) -> nn.Module:
    """Instantiate the registered model `name` with its keyword configuration."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}")
    module_name, _, attr = MODELS[name].partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(**cfg)
