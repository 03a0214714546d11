"""Recipes: one module per reproduced model, each registering itself on import.

Every module in this package other than ``registry`` and ``common`` is imported here, so a new
recipe is one new file.
"""

import importlib
import pkgutil

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

_SUPPORT_MODULES = {"registry", "common"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _SUPPORT_MODULES and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

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
