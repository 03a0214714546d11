"""The recipe registry: the one global registry deepspike keeps.

A :class:`Recipe` reproduces one model of the review (one Table I row where there is one). It
declares its paper and the paper's accuracy, its default configuration, a fast ``smoke`` setting
for tests and a ``quick`` setting for ``deepspike bench`` on the embedded digits data, and two
functions: ``train(ctx) -> Outcome`` and ``evaluate(ctx, tensors) -> Outcome``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from deepspike.errors import ConfigError
from deepspike.metrics import CostReport

GROUPS = ("fully connected", "spiking CNN", "RBM/DBN", "recurrent")


@dataclass(frozen=True)
class Paper:
    """The paper a recipe reproduces and what it reported."""

    cite: str
    row: str
    accuracy: Mapping[str, float] = field(default_factory=dict)  # dataset -> percent
    url: str = ""


@dataclass(frozen=True)
class Context:
    """Everything a recipe needs for one run."""

    config: Mapping[str, Any]
    dataset: str
    data_dir: Path | None
    seed: int
    generator: torch.Generator
    progress: bool = True
    out_dir: Path | None = None  # where the run writes; recipes may keep resumable state here
    resume: bool = False  # continue from the state a previous, interrupted run left in out_dir
    # hold out the last ``validation`` training samples and evaluate on them, not the test split
    validation: int = 0


@dataclass(frozen=True)
class Outcome:
    """What a recipe's train or evaluate returns; the runner turns it into ``result.json``."""

    accuracy: float
    cost: CostReport
    timesteps: int
    n_train: int
    n_test: int
    tensors: Mapping[str, torch.Tensor]
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    id: str
    title: str
    paper: Paper
    method: str
    local_learning: bool
    group: str
    datasets: tuple[str, ...]
    defaults: Mapping[str, Any]
    train: Callable[[Context], Outcome]
    evaluate: Callable[[Context, Mapping[str, torch.Tensor]], Outcome]
    smoke: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)
    #: settings that name a variant in tables (``diehl2015-stdp (n_neurons=400)``)
    label_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ConfigError(f"recipe {self.id}: group {self.group!r} is not one of {GROUPS}")
        for name, overrides in (("smoke", self.smoke), ("quick", self.quick)):
            unknown = set(overrides) - set(self.defaults)
            if unknown:
                raise ConfigError(f"recipe {self.id}: {name} sets unknown keys {sorted(unknown)}")

    def paper_accuracy(self, dataset: str) -> float | None:
        return self.paper.accuracy.get(dataset)

    def config(
        self, overrides: Mapping[str, Any] | None = None, profile: str = "full"
    ) -> dict[str, Any]:
        """Defaults, then the profile's settings (``smoke``/``quick``), then ``overrides``."""
        config = dict(self.defaults)
        if profile == "smoke":
            config.update(self.smoke)
        elif profile == "quick":
            config.update(self.quick)
        elif profile != "full":
            raise ConfigError(f"profile {profile!r} is unknown; choose full, quick or smoke")
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                raise ConfigError(
                    f"recipe {self.id} has no setting {key!r}; "
                    f"its settings are {', '.join(sorted(self.defaults))}"
                )
            config[key] = value
        return config


_RECIPES: dict[str, Recipe] = {}
RECIPES: Mapping[str, Recipe] = MappingProxyType(_RECIPES)


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the registry; an id may be registered once."""
    if recipe.id in _RECIPES:
        raise ConfigError(f"recipe id {recipe.id!r} is already registered")
    _RECIPES[recipe.id] = recipe
    return recipe


def get_recipe(recipe_id: str) -> Recipe:
    """Look a recipe up by id; an unknown id raises :class:`ConfigError` listing the known ones."""
    try:
        return RECIPES[recipe_id]
    except KeyError:
        known = ", ".join(sorted(RECIPES)) or "(none)"
        raise ConfigError(
            f"unknown recipe {recipe_id!r}; known recipes: {known} (see `deepspike recipes`)"
        ) from None


def parse_value(text: str, default: Any, key: str) -> Any:
    """Convert a ``--set key=value`` string to the type of the setting's default."""
    kind = type(default)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if value != value:
                raise ValueError(text)
            return value
        if kind is tuple:
            items = [s for s in text.replace(" ", "").split(",") if s]
            inner = type(default[0]) if default else int
            return tuple(inner(s) for s in items)
        return text
    except ValueError:
        raise ConfigError(
            f"--set {key}={text}: {text!r} is not a valid {kind.__name__} "
            f"(the default is {default!r})"
        ) from None


def parse_overrides(pairs: list[str], recipe: Recipe) -> dict[str, Any]:
    """Parse ``["key=value", ...]`` against ``recipe``'s defaults."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {pair!r} is not of the form key=value")
        if key not in recipe.defaults:
            raise ConfigError(
                f"recipe {recipe.id} has no setting {key!r}; "
                f"its settings are {', '.join(sorted(recipe.defaults))}"
            )
        overrides[key] = parse_value(value, recipe.defaults[key], key)
    return overrides
