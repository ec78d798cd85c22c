"""A chapter's smoke and full settings (one frozen dataclass per profile), and the rule that a passed value wins."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

PROFILE_NAMES = ("smoke", "full")
WEIGHTS = ("pretrained", "random")  # the settings' `weights` switch (the rehearsal's "random")
PINNED_KEY = "pinned_parameters"  # injected by the runner: the names the user passed with -p

Settings = TypeVar("Settings")


class ProfileError(ValueError):
    """An unknown profile name, or a notebook whose parameters do not match its chapter's settings."""


def check_profile(name: str) -> str:
    """Return `name` if it is a known profile, else raise ProfileError listing the known ones."""
    if name not in PROFILE_NAMES:
        raise ProfileError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILE_NAMES)}")
    return name


@dataclass(frozen=True)
class Profiles(Generic[Settings]):
    """The smoke (CPU, minutes) and full (the paper's settings) instances of one chapter's settings dataclass."""

    smoke: Settings
    full: Settings

    def __post_init__(self) -> None:
        if type(self.smoke) is not type(self.full) or not dataclasses.is_dataclass(self.smoke):
            raise TypeError("smoke and full must be instances of the same dataclass")

    def get(self, name: str) -> Settings:
        """The settings of profile `name` ('smoke' or 'full')."""
        return getattr(self, check_profile(name))

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.smoke))

    def resolve(self, name: str, namespace: Mapping[str, Any], pinned: Iterable[str] | None = None) -> Settings:
        """Settings of profile `name`, where each field the notebook set wins over the profile's default.

        A field counts as set when it is pinned (passed with `-p`: the runner injects their names as
        `pinned_parameters`) or when the notebook's value differs from the smoke default (an edit made by hand).
        Fields missing from `namespace` keep the profile's value."""
        chosen = self.get(name)
        pinned = set(namespace.get(PINNED_KEY, ()) if pinned is None else pinned)
        changes = {}
        for field in self.field_names():
            if field not in namespace:
                continue
            value = namespace[field]
            if field in pinned or value != getattr(self.smoke, field):
                changes[field] = value
        return dataclasses.replace(chosen, **changes)

    def check_parameters(self, parameters: Mapping[str, Any]) -> None:
        """Raise ProfileError unless a notebook's parameter defaults equal the smoke profile on every shared field."""
        wrong = [f"{f}={parameters[f]!r} (smoke profile: {getattr(self.smoke, f)!r})"
                 for f in self.field_names() if f in parameters and parameters[f] != getattr(self.smoke, f)]
        if wrong:
            raise ProfileError("the parameters cell must hold the smoke profile's values: " + ", ".join(wrong))


def check_weights(weights: str, owner: str = "") -> str:
    """`weights` when it is one of WEIGHTS, else ValueError naming the owner ("EATSettings") and the choices."""
    if weights not in WEIGHTS:
        raise ValueError(f"{owner + '.' if owner else ''}weights must be one of {WEIGHTS}, got {weights!r}")
    return weights


def check_rehearsal_switches(settings: Any) -> None:
    """ValueError unless a chapter's settings hold a known `weights` and a `max_steps` >= 0 (0 = no cap)."""
    owner = type(settings).__name__
    check_weights(settings.weights, owner)
    if settings.max_steps < 0:
        raise ValueError(f"{owner}.max_steps must be >= 0 (0 = no cap), got {settings.max_steps}")


def backbone_weights(weights: str, pretrained: str | None) -> str | None:
    """Weights to build a backbone with: its `pretrained` tag when weights == "pretrained", None (random init) when
    "random" (the rehearsal's explicit switch); ValueError for any other value."""
    return pretrained if check_weights(weights) == "pretrained" else None


def capped_epochs(epochs: int, max_steps: int) -> tuple[int, int | None]:
    """(epochs, optimiser steps per epoch or None) so that a stage of `epochs` takes at most `max_steps` steps.

    max_steps 0: no cap, (epochs, None). Otherwise min(epochs, max_steps) epochs (at least 1) of
    max_steps // that many steps each, e.g. (10, 2) -> (2, 1): the schedule still crosses an epoch boundary."""
    if max_steps < 0 or epochs < 1:
        raise ValueError(f"need epochs >= 1 and max_steps >= 0 (0 = no cap), got epochs={epochs}, max_steps={max_steps}")
    if max_steps == 0:
        return epochs, None
    capped = max(1, min(epochs, max_steps))
    return capped, max_steps // capped
