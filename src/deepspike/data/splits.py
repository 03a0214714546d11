"""Split names shared by the loaders."""

from __future__ import annotations

from typing import Final, Literal

from deepspike.errors import ConfigError

Split = Literal["train", "test"]
SPLITS: Final[tuple[str, ...]] = ("train", "test")


def check_split(split: str) -> Split:
    """Return ``split`` if it is ``'train'`` or ``'test'``; raise ConfigError otherwise."""
    if split not in SPLITS:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    return split  # type: ignore[return-value]
