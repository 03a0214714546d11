"""Recipes: one module per reproduced model, registered by id on import."""

from deepspike.recipes import surrogate_mlp  # noqa: F401  (registers its recipe)
from deepspike.recipes.registry import (
    RECIPES,
    Context,
    Outcome,
    Paper,
    Recipe,
    get_recipe,
    parse_overrides,
    register,
)

__all__ = [
    "RECIPES",
    "Context",
    "Outcome",
    "Paper",
    "Recipe",
    "get_recipe",
    "parse_overrides",
    "register",
]
